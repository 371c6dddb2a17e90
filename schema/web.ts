// Generated from schema/web.graphql by `npm --prefix tests/openapi run generate`; do not edit.
export type Maybe<T> = T | null;
export type InputMaybe<T> = Maybe<T>;
export type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
export type MakeOptional<T, K extends keyof T> = Omit<T, K> & { [SubKey in K]?: Maybe<T[SubKey]> };
export type MakeMaybe<T, K extends keyof T> = Omit<T, K> & { [SubKey in K]: Maybe<T[SubKey]> };
export type MakeEmpty<T extends { [key: string]: unknown }, K extends keyof T> = { [_ in K]?: never };
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
/** All built-in and custom scalars, mapped to their actual values */
export type Scalars = {
  ID: { input: string; output: string; }
  String: { input: string; output: string; }
  Boolean: { input: boolean; output: boolean; }
  Int: { input: number; output: number; }
  Float: { input: number; output: number; }
};

/** Everything the web app can change. */
export type Mutation = {
  __typename?: 'Mutation';
  /**
   * Places an order for the caller (scope `orders:write`). Sent once with
   * `idempotencyKey`, never retried: repeat with the same key to get the
   * same order after a lost reply.
   */
  placeOrder: Order;
  /**
   * Marks one of the caller's notifications read; idempotent. Another
   * user's notification is `not_found`, like one that does not exist.
   */
  markNotificationRead: Notification;
};


/** Everything the web app can change. */
export type MutationPlaceOrderArgs = {
  items: Array<OrderItemInput>;
  idempotencyKey: Scalars['String']['input'];
};


/** Everything the web app can change. */
export type MutationMarkNotificationReadArgs = {
  id: Scalars['ID']['input'];
};

export type Notification = {
  __typename?: 'Notification';
  id: Scalars['ID']['output'];
  /** `order_update`, `message` or `promo`. */
  kind: Scalars['String']['output'];
  title: Scalars['String']['output'];
  body: Scalars['String']['output'];
  read: Scalars['Boolean']['output'];
  /** RFC 3339 timestamp. */
  createdAt: Scalars['String']['output'];
  /** Who caused it; null for system notifications. Batched like `seller`. */
  actor?: Maybe<User>;
};

export type NotificationConnection = {
  __typename?: 'NotificationConnection';
  nodes: Array<Notification>;
  /** All unread notifications, not only those in `nodes`. */
  unreadCount: Scalars['Int']['output'];
};

export type Order = {
  __typename?: 'Order';
  id: Scalars['ID']['output'];
  /** `pending`, `paid`, `shipped`, `delivered` or `cancelled`. */
  status: Scalars['String']['output'];
  /** The order's total in the currency's minor unit. */
  totalCents: Scalars['Int']['output'];
  /** ISO 4217 code, e.g. `USD`. */
  currency: Scalars['String']['output'];
  /** RFC 3339 timestamp. */
  createdAt: Scalars['String']['output'];
  items: Array<OrderItem>;
  /** The seller, fetched in one batch with the page's other sellers. */
  seller: User;
};

export type OrderConnection = {
  __typename?: 'OrderConnection';
  nodes: Array<Order>;
  /** Pass as `after` for the next page; null on the last page. */
  nextCursor?: Maybe<Scalars['String']['output']>;
};

/** One line of an order. */
export type OrderItem = {
  __typename?: 'OrderItem';
  sku: Scalars['String']['output'];
  name: Scalars['String']['output'];
  quantity: Scalars['Int']['output'];
  /** Price of one unit in the currency's minor unit. */
  unitPriceCents: Scalars['Int']['output'];
};

/** One line of a new order. */
export type OrderItemInput = {
  sku: Scalars['String']['input'];
  quantity: Scalars['Int']['input'];
};

/** Everything the web app can ask for. */
export type Query = {
  __typename?: 'Query';
  /**
   * The caller. Fields that need the profile fetch it; `orders` and
   * `notifications` need only the caller's id.
   */
  me: User;
  /** A user by id; null when there is none. */
  user?: Maybe<User>;
  /** One of the caller's orders; null when it does not exist or is not theirs. */
  order?: Maybe<Order>;
};


/** Everything the web app can ask for. */
export type QueryUserArgs = {
  id: Scalars['ID']['input'];
};


/** Everything the web app can ask for. */
export type QueryOrderArgs = {
  id: Scalars['ID']['input'];
};

export type User = {
  __typename?: 'User';
  id: Scalars['ID']['output'];
  name: Scalars['String']['output'];
  /** The caller's own e-mail address; null for every other user. */
  email?: Maybe<Scalars['String']['output']>;
  avatarUrl: Scalars['String']['output'];
  /** `free`, `plus` or `pro`. */
  tier: Scalars['String']['output'];
  /** The user's orders, newest first. Only the caller's own are visible. */
  orders: OrderConnection;
  /** The user's notifications, newest first. Only the caller's own are visible. */
  notifications: NotificationConnection;
};


export type UserOrdersArgs = {
  first?: InputMaybe<Scalars['Int']['input']>;
  after?: InputMaybe<Scalars['String']['input']>;
};


export type UserNotificationsArgs = {
  first?: InputMaybe<Scalars['Int']['input']>;
  unreadOnly?: InputMaybe<Scalars['Boolean']['input']>;
};
