// Compiles only if the generated types say what a frontend relies on.
import type { components as Web, paths as WebPaths } from "../../openapi/bff-web";
import type { components as Mobile } from "../../openapi/bff-mobile";
import type { Order, User } from "../../schema/web";

type Dashboard = Web["schemas"]["UserDashboardReply"];
type History = WebPaths["/order-history"]["get"]["responses"][200]["content"]["application/json"];
type MobileDashboard = Mobile["schemas"]["UserDashboardReply"];
type ErrorBody = Web["schemas"]["Error"];

export function greeting(dashboard: Dashboard): string {
  // Optional parts may be null: the compiler makes the app handle it.
  const unread = dashboard.notifications?.unreadCount ?? 0;
  const orders = dashboard.recentOrders?.length ?? 0;
  return `${dashboard.profile.name}: ${orders} orders, ${unread} unread`;
}

export function sellers(history: History): string[] {
  return history.orders.map((order) => order.seller?.name ?? "unknown seller");
}

export function badge(dashboard: MobileDashboard): number | null {
  return dashboard.unreadCount;
}

export function failed(dashboard: Dashboard): string[] {
  return dashboard.degraded.map((part) => `${part.source}: ${part.code}`);
}

export function message(body: ErrorBody): string {
  return `${body.error.code} (${body.error.requestId}): ${body.error.message}`;
}

export function sellerName(order: Pick<Order, "seller">): User["name"] {
  return order.seller.name;
}
