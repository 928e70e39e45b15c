// The creator's view of their own drop: how it sells, refreshed as orders come in.
import { $, h } from "../dom.js";
import { api, now } from "../api.js";
import { PUSHED_STOCK_KEPT_MS } from "../coalescing.js";
import { ORDER_LABEL, money, orderTime } from "../format.js";
import { clearError, errorBox, showError } from "../forms.js";
import { onLeave } from "../router.js";
import { drops, salesViews } from "../state.js";
import { lineChart } from "./chart.js";
import { LINE_FIGURES, lineSeries, salesSeries } from "./series.js";

const SALES_STATUSES = [
  ["confirmed", "Paid"],
  ["pending_payment", "Awaiting payment"],
  ["payment_failed", "Payment failed"],
  ["expired", "Expired"],
];
const SALES_REFRESH_MS = 5000;

export function creatorView(drop) {
  const stat = (label, testid) => h("div.stat", h("span.label", { text: label }), h("span.value", { testid, text: "…" }));
  const box = errorBox("sales-error");
  const view = h("section.creator-view.card", { testid: "creator-view", "aria-labelledby": "sales-title" },
    h("div.view-head",
      h("h2", { id: "sales-title", text: "Your drop's sales" }),
      h("span.muted", { testid: "sales-updated", role: "status", "aria-live": "off" })),
    box,
    h("div.stats",
      stat("Units sold", "sales-units"),
      stat("Revenue", "sales-revenue"),
      stat("Reserved, unpaid", "sales-reserved")),
    h("div.stats", { testid: "sales-line", hidden: true }),
    h("h3", { text: "Orders by status" }),
    h("ul.sales-statuses", { testid: "sales-orders" },
      SALES_STATUSES.map(([status, label]) =>
        h("li", { "data-status": status, class: `order-${status}` },
          h("span.count", { testid: `sales-orders-${status}`, text: "…" }), ` ${label}`))),
    h("h3", { text: "Over time" }),
    h("div", { testid: "sales-chart-box" }),
    h("p.muted.chart-note", { testid: "sales-chart-note" }),
    h("div", { testid: "sales-line-chart-box", hidden: true }),
    h("h3", { text: "Latest orders" }),
    h("ol.rows.recent-orders", { testid: "sales-recent" }));
  let timer = null;
  let stopped = false;
  const load = async () => {
    clearTimeout(timer);
    if (stopped) return;
    try {
      const { data } = await api("GET", `/drops/${encodeURIComponent(drop.drop_id)}/sales`);
      if (stopped) return;
      fillSales(view, data);
      const { series, note } = salesSeries(data, now());
      $('[data-testid="sales-chart-box"]', view).replaceChildren(lineChart(series, { title: "Units sold and stock over time", testid: "sales-chart" }));
      $('[data-testid="sales-chart-note"]', view).textContent = note;
      const lineBox = $('[data-testid="sales-line-chart-box"]', view);
      lineBox.hidden = !data.line;
      if (data.line) {
        const title = data.sale_mode === "draw" ? "Entries and winners over time" : "Joins and admissions over time";
        lineBox.replaceChildren(h("h3", { text: title }), lineChart(lineSeries(data, now()), { title, testid: "line-chart" }));
      }
      clearError(box);
    } catch (error) {
      showError(box, error);
    }
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(load, SALES_REFRESH_MS);
  };
  salesViews.set(drop.drop_id, () => {
    // A stock change means an order came or went: read the figures again, at most once per half second.
    clearTimeout(timer);
    timer = setTimeout(load, 500);
  });
  onLeave(() => {
    stopped = true;
    clearTimeout(timer);
    salesViews.delete(drop.drop_id);
  });
  load();
  return view;
}

function fillSales(view, data) {
  $('[data-testid="sales-units"]', view).textContent = `${data.units_sold} / ${data.initial_stock}`;
  $('[data-testid="sales-revenue"]', view).textContent = money(data.revenue_cents, data.currency);
  $('[data-testid="sales-reserved"]', view).textContent = String(data.units_reserved);
  const line = $('[data-testid="sales-line"]', view);
  line.hidden = !data.line;
  if (data.line) {
    line.replaceChildren(...(LINE_FIGURES[data.sale_mode] || []).map(([key, label]) =>
      h("div.stat", h("span.label", { text: label }), h("span.value", { testid: `sales-line-${key}`, text: String(data.line[key]) }))));
  }
  for (const [status] of SALES_STATUSES) $(`[data-testid="sales-orders-${status}"]`, view).textContent = String(data.orders[status]);
  const list = $('[data-testid="sales-recent"]', view);
  list.replaceChildren(...data.recent_orders.map((order) =>
    h("li", { testid: "sales-recent-order", "data-status": order.status },
      h("time", { datetime: order.created_at, text: orderTime(order.created_at) }),
      ` · ${order.quantity} × · `,
      h("span", { class: `order-${order.status}`, text: ORDER_LABEL[order.status] || order.status }))));
  if (!data.recent_orders.length) list.append(h("li.muted", { testid: "sales-recent-empty", text: "No orders yet." }));
  // The stock figures come with the sales: keep the live ones on screen at least as fresh.
  const known = drops.get(data.drop_id);
  if (known && !(known._stockAt && known._stockAt > now() - PUSHED_STOCK_KEPT_MS)) drops.set(data.drop_id, { ...known, stock: data.stock });
  $('[data-testid="sales-updated"]', view).textContent = `Updated ${new Date().toLocaleTimeString()}`;
}
