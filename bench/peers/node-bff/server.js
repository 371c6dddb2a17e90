// A Node BFF peer for the benchmark: GET /user-dashboard and POST /graphql
// over the same three upstreams as bff-web, with the same replies.
// express + @apollo/server + dataloader + jsonwebtoken, keep-alive agents.
//
// Environment: PORT, JWT_SECRET, USERS_URL, ORDERS_URL, NOTIFICATIONS_URL.

'use strict';

const http = require('node:http');
const express = require('express');
const jwt = require('jsonwebtoken');
const DataLoader = require('dataloader');
const { ApolloServer } = require('@apollo/server');
const { expressMiddleware } = require('@as-integrations/express5');

const { PORT = '8090', JWT_SECRET, USERS_URL, ORDERS_URL, NOTIFICATIONS_URL } = process.env;
if (!JWT_SECRET || !USERS_URL || !ORDERS_URL || !NOTIFICATIONS_URL) {
  console.error('set JWT_SECRET, USERS_URL, ORDERS_URL and NOTIFICATIONS_URL');
  process.exit(1);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

class UpstreamError extends Error {
  constructor(service, status) {
    super(`${service} answered ${status}`);
    this.service = service;
    this.status = status;
  }
}

// GET a JSON document from an upstream over the keep-alive agent.
function getJson(service, url, userId, requestId) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, {
      agent,
      timeout: 800,
      headers: { 'x-user-id': userId, 'x-request-id': requestId, accept: 'application/json' },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new UpstreamError(service, res.statusCode));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (e) {
          reject(new UpstreamError(service, 502));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new UpstreamError(service, 504)));
    req.on('error', reject);
  });
}

let nextRequestId = 0;

function authenticate(req) {
  const header = req.headers.authorization || '';
  const [scheme, token] = header.split(' ');
  if (scheme !== 'Bearer' || !token) return null;
  try {
    const claims = jwt.verify(token, JWT_SECRET, { algorithms: ['HS256'] });
    return typeof claims.sub === 'string' ? claims : null;
  } catch (e) {
    return null;
  }
}

function errorBody(res, status, code, message) {
  res.status(status).json({ error: { code, message, requestId: String(nextRequestId) } });
}

const app = express();
app.disable('x-powered-by');
app.disable('etag');

app.get('/user-dashboard', async (req, res) => {
  const claims = authenticate(req);
  if (!claims) return errorBody(res, 401, 'unauthorized', 'missing or invalid token');
  const userId = claims.sub;
  const requestId = String(++nextRequestId);
  const id = encodeURIComponent(userId);
  const [profile, orders, notifications] = await Promise.allSettled([
    getJson('users', `${USERS_URL}/users/${id}`, userId, requestId),
    getJson('orders', `${ORDERS_URL}/users/${id}/orders?limit=10`, userId, requestId),
    getJson('notifications', `${NOTIFICATIONS_URL}/users/${id}/notifications?limit=10&unreadOnly=false`, userId, requestId),
  ]);
  if (profile.status === 'rejected') {
    return errorBody(res, 503, 'upstream_unavailable', 'the user service failed');
  }
  const degraded = [];
  const part = (result, source) => {
    if (result.status === 'fulfilled') return result.value;
    degraded.push({ source, code: 'upstream_unavailable' });
    return null;
  };
  const ordersPage = part(orders, 'orders');
  const notificationsPage = part(notifications, 'notifications');
  const p = profile.value;
  res.json({
    profile: { id: p.id, name: p.name, email: p.email, avatarUrl: p.avatarUrl, tier: p.tier },
    recentOrders: ordersPage && ordersPage.orders.slice(0, 10).map((o) => ({
      id: o.id,
      status: o.status,
      totalCents: o.totalCents,
      currency: o.currency,
      createdAt: o.createdAt,
      itemCount: o.items.reduce((sum, item) => sum + item.quantity, 0),
    })),
    notifications: notificationsPage && {
      unreadCount: notificationsPage.unreadCount,
      items: notificationsPage.notifications.slice(0, 10).map((n) => ({
        id: n.id, kind: n.kind, title: n.title, read: n.read, createdAt: n.createdAt,
      })),
    },
    degraded,
  });
});

const typeDefs = `#graphql
  type Query { me: User! }
  type User {
    id: ID!
    name: String!
    email: String!
    orders(first: Int = 10, after: String): OrderConnection!
  }
  type OrderConnection { nodes: [Order!]! nextCursor: String }
  type OrderItem { sku: String! name: String! quantity: Int! unitPriceCents: Int! }
  type Order {
    id: ID!
    status: String!
    totalCents: Int!
    currency: String!
    createdAt: String!
    items: [OrderItem!]!
    seller: User!
  }
`;

const resolvers = {
  Query: {
    me: (_, __, ctx) => ({ id: ctx.userId }),
  },
  User: {
    name: (user, _, ctx) => (user.name !== undefined ? user.name : ctx.users.load(user.id).then((u) => u.name)),
    email: (user, _, ctx) => (user.email !== undefined ? user.email : ctx.users.load(user.id).then((u) => u.email)),
    orders: async (user, { first, after }, ctx) => {
      const query = `limit=${Math.min(Math.max(first, 1), 100)}${after ? `&cursor=${encodeURIComponent(after)}` : ''}`;
      const page = await getJson('orders', `${ORDERS_URL}/users/${encodeURIComponent(user.id)}/orders?${query}`, ctx.userId, ctx.requestId);
      return { nodes: page.orders, nextCursor: page.nextCursor || null };
    },
  },
  Order: {
    seller: (order, _, ctx) => ctx.users.load(order.sellerId),
  },
};

// One loader per request: sellers of a page are fetched in one batch call.
function usersLoader(userId, requestId) {
  return new DataLoader(async (ids) => {
    const page = await getJson('users', `${USERS_URL}/users?ids=${ids.map(encodeURIComponent).join(',')}`, userId, requestId);
    const byId = new Map(page.users.map((u) => [u.id, u]));
    return ids.map((id) => byId.get(id) || new Error(`no user ${id}`));
  }, { maxBatchSize: 100 });
}

async function main() {
  const apollo = new ApolloServer({ typeDefs, resolvers, introspection: false });
  await apollo.start();
  app.use('/graphql', express.json({ limit: '64kb' }), expressMiddleware(apollo, {
    context: async ({ req }) => {
      const claims = authenticate(req);
      if (!claims) {
        const { GraphQLError } = require('graphql');
        throw new GraphQLError('missing or invalid token', {
          extensions: { code: 'unauthorized', http: { status: 401 } },
        });
      }
      const requestId = String(++nextRequestId);
      return { userId: claims.sub, requestId, users: usersLoader(claims.sub, requestId) };
    },
  }));
  const server = app.listen(Number(PORT), '127.0.0.1', () => {
    console.log(`node-bff listening on 127.0.0.1:${PORT}`);
  });
  server.keepAliveTimeout = 65000;
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
