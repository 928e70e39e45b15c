// Orders: pending -> confirmed / payment_failed / expired, followed by frame and, as a fallback, by poll.
import { $, h } from "./dom.js";
import { api } from "./api.js";
import { ORDER_LABEL, TERMINAL, money, orderNote, when } from "./format.js";
import { refreshDropViews } from "./refresh.js";
import { orders, state } from "./state.js";
import { fetchDrop } from "./store.js";

const polls = new Map(); // order_id -> the timer of its next poll

export function trackOrder(order) {
  orders.set(order.order_id, order);
  renderOrders();
  if (!TERMINAL.has(order.status)) schedulePoll(order.order_id, 1500);
}

/** Fallback for a lost frame: poll GET /orders/{id} with back-off until the order settles. */
function schedulePoll(orderId, delay) {
  if (polls.has(orderId)) return;
  polls.set(orderId, setTimeout(async () => {
    polls.delete(orderId);
    const order = await refreshOrder(orderId);
    if (order && !TERMINAL.has(order.status)) schedulePoll(orderId, Math.min(delay * 1.5, 10000));
  }, delay));
}

export async function refreshOrder(orderId) {
  try {
    const { data } = await api("GET", `/orders/${encodeURIComponent(orderId)}`);
    const before = orders.get(orderId);
    orders.set(orderId, data);
    if (before && before.status !== data.status) fetchDrop(data.drop_id).then(() => refreshDropViews(data.drop_id), () => {});
    renderOrders();
    return data;
  } catch {
    return orders.get(orderId) || null;
  }
}

export function orderRow(order) {
  return h(
    "li.order",
    { testid: "order", "data-order-id": order.order_id, "data-status": order.status },
    h("div.order-head",
      h("span.order-id", { text: `Order ${order.order_id.slice(-8)}` }),
      h(`span.pill.order-${order.status}`, { testid: "order-status", "data-status": order.status, text: ORDER_LABEL[order.status] || order.status }),
    ),
    h("p.muted", { text: `${order.quantity} × · ${money(order.amount_cents, order.currency)} · ${when(order.created_at)}` }),
    h("p.order-note", { text: orderNote(order) }),
  );
}

export function renderOrders() {
  const list = $('[data-testid="drop-orders"]');
  if (!list || !state.route.id) return;
  const mine = [...orders.values()].filter((o) => o.drop_id === state.route.id).sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  list.replaceChildren(...mine.map(orderRow));
  list.closest("section").hidden = mine.length === 0;
}
