// Views: the creator's studio (become a creator, add products, schedule drops, see them sell).
import { $$, h } from "../dom.js";
import { api, now } from "../api.js";
import { loadMe } from "../account.js";
import { localInput, money, when } from "../format.js";
import { errorBox, field, handle } from "../forms.js";
import { onLeave, render } from "../router.js";
import { products, state } from "../state.js";
import { creator, rememberDrop } from "../store.js";
import { toast } from "../toasts.js";
import { dropCard, updateCard } from "./cards.js";

const myProducts = new Map(); // product_id -> product, for the drop form's select
const myDrops = new Map();

export function viewStudio(main) {
  main.append(h("h1", { text: "Creator studio" }));
  const me = state.session.user;
  if (!me.creator_id) {
    const form = h("form.card", { testid: "become-creator-form" },
      h("h2", { text: "Become a creator" }),
      h("p.muted", { text: "A creator profile lets you add products and schedule drops. Your followers hear the second a drop goes live." }),
      field("Studio name", h("input", { name: "name", required: true, testid: "creator-name-input" })),
      field("About", h("textarea", { name: "profile", rows: "2", testid: "creator-profile-input" })),
      errorBox(), h("button.primary", { type: "submit", testid: "become-creator" }, "Become a creator"));
    handle(form, async (values) => {
      await api("POST", "/creators", { body: { name: String(values.get("name")).trim(), profile: String(values.get("profile")).trim() } });
      await loadMe();
      toast("info", "You're a creator now", "Add a product, then schedule its drop.");
      render();
    });
    main.append(form);
    return;
  }
  const head = h("p.muted", { testid: "studio-creator" });
  creator(me.creator_id, true).then((c) => head.replaceChildren(
    h("a", { href: `#/creator/${encodeURIComponent(c.creator_id)}`, text: c.name }), ` · ${c.follower_count} followers · id `,
    h("code", { testid: "studio-creator-id", text: c.creator_id })), () => {});
  main.append(head);

  const productForm = h("form.card", { testid: "product-form" },
    h("h2", { text: "New product" }),
    field("Name", h("input", { name: "name", required: true, testid: "product-name" })),
    field("Description", h("textarea", { name: "description", rows: "2", testid: "product-description" })),
    h("div.row",
      field("Price", h("input", { name: "price", type: "number", min: "0", step: "0.01", required: true, inputmode: "decimal", testid: "product-price" })),
      field("Currency", h("select", { name: "currency", testid: "product-currency" }, ["USD", "EUR", "GBP"].map((c) => h("option", { value: c }, c))))),
    errorBox(), h("button.primary", { type: "submit", testid: "product-submit" }, "Add product"));
  handle(productForm, async (values) => {
    const price = Math.round(Number(values.get("price")) * 100);
    const { data } = await api("POST", `/creators/${encodeURIComponent(me.creator_id)}/products`, {
      body: { name: String(values.get("name")).trim(), description: String(values.get("description")).trim(), price_cents: price, currency: values.get("currency") },
    });
    myProducts.set(data.product_id, data);
    products.set(data.product_id, Promise.resolve(data));
    productForm.reset();
    fillProducts();
    select.value = data.product_id;
    toast("info", "Product added", `${data.name} is ready for a drop.`);
  });

  const select = h("select", { name: "product_id", required: true, testid: "drop-product" });
  const start = h("input", { name: "start", type: "datetime-local", step: "1", required: true, testid: "drop-start", value: localInput(now() + 60000) });
  const end = h("input", { name: "end", type: "datetime-local", step: "1", required: true, testid: "drop-end", value: localInput(now() + 3660000) });
  const dropForm = h("form.card", { testid: "drop-form" },
    h("h2", { text: "Schedule a drop" }),
    field("Product", select),
    h("div.row", field("Starts (your time)", start), field("Ends (your time)", end)),
    h("div.row",
      field("Stock", h("input", { name: "stock", type: "number", min: "1", max: "1000000", value: "50", required: true, testid: "drop-stock-input" })),
      field("Per-person limit", h("input", { name: "per_user_limit", type: "number", min: "1", value: "2", testid: "drop-limit-input" })),
      field("Low-stock alert at", h("input", { name: "low_stock_threshold", type: "number", min: "0", placeholder: "optional", testid: "drop-low-input" }))),
    errorBox(), h("button.primary", { type: "submit", testid: "drop-submit" }, "Schedule drop"));
  handle(dropForm, async (values) => {
    if (!values.get("product_id")) throw "Add a product first, then pick it here.";
    const body = {
      product_id: values.get("product_id"),
      start_time: new Date(String(values.get("start"))).toISOString(),
      end_time: new Date(String(values.get("end"))).toISOString(),
      stock: Number(values.get("stock")),
    };
    if (values.get("per_user_limit")) body.per_user_limit = Number(values.get("per_user_limit"));
    if (values.get("low_stock_threshold")) body.low_stock_threshold = Number(values.get("low_stock_threshold"));
    const { data } = await api("POST", `/creators/${encodeURIComponent(me.creator_id)}/drops`, { body });
    myDrops.set(data.drop_id, rememberDrop(data));
    scheduled.prepend(dropCard(data));
    toast("info", "Drop scheduled", `Starts ${when(data.start_time)}.`, { href: `#/drop/${encodeURIComponent(data.drop_id)}`, text: "Open drop" });
  });

  const scheduled = h("ul.drops", { testid: "studio-drops" });
  main.append(h("div.studio", productForm, dropForm), h("h2", { text: "Your drops" }), scheduled);

  function fillProducts() {
    const chosen = select.value;
    select.replaceChildren(h("option", { value: "" }, "Choose a product…"),
      ...[...myProducts.values()].map((p) => h("option", { value: p.product_id }, `${p.name} (${money(p.price_cents, p.currency)})`)));
    if (chosen) select.value = chosen;
  }
  fillProducts();
  // The API has no "my products" listing: read a few pages of the catalog and keep ours.
  (async () => {
    let page = null;
    for (let i = 0; i < 5; i += 1) {
      const params = new URLSearchParams({ limit: "100" });
      if (page) params.set("page", page);
      const { data } = await api("GET", `/products?${params}`, { auth: false });
      for (const p of data.items) if (p.creator_id === me.creator_id) myProducts.set(p.product_id, p);
      fillProducts();
      page = data.next_page;
      if (!page) break;
    }
  })().catch(() => {});
  // Every drop of this creator with its sales (owner-only listing), latest start first.
  api("GET", `/creators/${encodeURIComponent(me.creator_id)}/drops?limit=100`).then(({ data }) => {
    const shown = new Set($$('[data-testid="drop-card"]', scheduled).map((c) => c.dataset.dropId));
    for (const drop of data.items) {
      myDrops.set(drop.drop_id, rememberDrop(drop));
      if (shown.has(drop.drop_id)) continue;
      const card = dropCard(drop);
      card.append(h("p.when", { testid: "drop-sales" },
        `${drop.units_sold} sold · ${money(drop.revenue_cents, drop.currency)} · ${drop.orders.pending_payment} awaiting payment`));
      scheduled.append(card);
    }
  }, () => {});
  const ticker = setInterval(() => $$('[data-testid="drop-card"]', scheduled).forEach(updateCard), 1000);
  onLeave(() => clearInterval(ticker));
}
