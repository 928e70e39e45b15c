// Orders: pending -> confirmed / payment_failed / expired, followed by frame and, as a fallback, by poll.
import { $, h } from "./dom.js";
import { ORDER_LABEL, TERMINAL, imageUrls, money, orderNote, when } from "./format.js";
import { api, describeError, unavailable } from "./api.js";
import { refreshDropViews } from "./refresh.js";
import { drops, orders, state } from "./state.js";
import { fetchDrop, product } from "./store.js";

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

/** The product an order or drop is of: its name (and first image) filled into `el` once known. */
export function nameProduct(el, dropId) {
  const known = drops.get(dropId);
  (known ? Promise.resolve(known) : fetchDrop(dropId))
    .then((drop) => product(drop.product_id))
    .then((p) => {
      $('[data-testid="order-product"]', el).textContent = p.name;
      const src = imageUrls(p)[0];
      if (src) $(".thumb", el)?.replaceChildren(h("img", { src, alt: "" }));
    }, () => ($('[data-testid="order-product"]', el).textContent = "A product"));
}

export function orderRow(order) {
  const row = h(
    "li.order",
    { testid: "order", "data-order-id": order.order_id, "data-status": order.status },
    h("div.order-head",
      h("span.thumb", { "aria-hidden": "true" }),
      h("strong.order-product", { testid: "order-product", text: "…" }),
      h("span.order-id.muted", { text: `#${order.order_id.slice(-8)}` }),
      h(`span.pill.order-${order.status}`, { testid: "order-status", "data-status": order.status, text: ORDER_LABEL[order.status] || order.status }),
    ),
    h("p.muted", { text: `${order.quantity} × · ${money(order.amount_cents, order.currency)} · ${when(order.created_at)}` }),
    order.shipping_address ? h("p.muted", { testid: "order-ship-to", text: `Ships to ${[order.shipping_address.city, order.shipping_address.country].filter(Boolean).join(", ")}` }) : null,
    h("p.order-note", { text: orderNote(order) }),
    order.status === "pending_payment" ? cancelButton(order) : null,
  );
  nameProduct(row, order.drop_id);
  return row;
}

/** Cancel an unpaid order (POST /orders/{id}/cancel): its units go back on sale at once. */
function cancelButton(order) {
  const button = h("button.link", { type: "button", testid: "order-cancel" }, "Cancel order");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const { data } = await api("POST", `/orders/${encodeURIComponent(order.order_id)}/cancel`);
      orders.set(order.order_id, { ...order, ...data });
      button.replaceWith(h("p.muted", { testid: "order-cancelled", text: "Cancelled: you weren't charged and the item is back on sale." }));
      fetchDrop(order.drop_id).then(() => refreshDropViews(order.drop_id), () => {});
    } catch (error) {
      button.replaceWith(h("p.error", { testid: "order-cancel-error", role: "alert", text: unavailable(error) ? "Cancelling orders isn't offered by this server yet." : describeError(error) }));
    }
  });
  return button;
}

export function renderOrders() {
  const list = $('[data-testid="drop-orders"]');
  if (!list || !state.route.id) return;
  const mine = [...orders.values()].filter((o) => o.drop_id === state.route.id).sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  list.replaceChildren(...mine.map(orderRow));
  list.closest("section").hidden = mine.length === 0;
}
