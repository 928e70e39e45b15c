// Views: the user's orders.
import { h } from "../dom.js";
import { api } from "../api.js";
import { errorBox, showError } from "../forms.js";
import { orderRow } from "../orders.js";
import { orders, state } from "../state.js";

export function viewOrders(main) {
  const box = errorBox("orders-error");
  const list = h("ul.orders", { testid: "orders-list" });
  const more = h("button.secondary", { type: "button", hidden: true }, "Show more");
  main.append(h("h1", { text: "Your orders" }), box, list, more);
  let page = null;
  const load = async () => {
    try {
      const params = new URLSearchParams({ limit: "20" });
      if (page) params.set("page", page);
      const { data } = await api("GET", `/users/${encodeURIComponent(state.session.user.user_id)}/orders?${params}`);
      for (const order of data.items) {
        orders.set(order.order_id, orders.get(order.order_id) || order);
        const row = orderRow(order);
        row.prepend(h("a", { href: `#/drop/${encodeURIComponent(order.drop_id)}`, text: "Open drop" }));
        list.append(row);
      }
      page = data.next_page;
      more.hidden = !page;
      if (!list.children.length) list.replaceWith(h("p.muted", { text: "No orders yet." }));
    } catch (error) {
      showError(box, error);
    }
  };
  more.addEventListener("click", load);
  load();
}
