// Views: the creator's studio (become a creator, add products, schedule drops, see them sell).
import { $$, h } from "../dom.js";
import { api } from "../api.js";
import { loadMe } from "../account.js";
import { watchOwn, watchOwnDrops } from "../ownwatch.js";
import { money, when } from "../format.js";
import { errorBox, field, handle } from "../forms.js";
import { onLeave, render } from "../router.js";
import { products, state } from "../state.js";
import { creator, rememberDrop } from "../store.js";
import { toast } from "../toasts.js";
import { dropCard, updateCard } from "./cards.js";
import { dropBody, dropFields } from "./dropform.js";
import { dropTools, productRow } from "./manage.js";

export function viewStudio(main) {
  main.append(h("h1", { text: "Creator studio" }));
  const me = state.session.user;
  // Per visit, never module-wide: another creator logging in on this tab must not see these.
  const myProducts = new Map(); // product_id -> product, for the drop form's select
  const myDrops = new Map();
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
      watchOwnDrops();
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
    productList.append(productRow(data));
    select.value = data.product_id;
    toast("info", "Product added", `${data.name} is ready for a drop.`);
  });

  const select = h("select", { name: "product_id", required: true, testid: "drop-product" });
  const dropForm = h("form.card", { testid: "drop-form" },
    h("h2", { text: "Schedule a drop" }),
    field("Product", select),
    dropFields(),
    errorBox(), h("button.primary", { type: "submit", testid: "drop-submit" }, "Schedule drop"));
  handle(dropForm, async (values) => {
    if (!values.get("product_id")) throw "Add a product first, then pick it here.";
    const body = { product_id: values.get("product_id"), ...dropBody(values) };
    const { data } = await api("POST", `/creators/${encodeURIComponent(me.creator_id)}/drops`, { body });
    myDrops.set(data.drop_id, rememberDrop(data));
    watchOwn(data.drop_id);
    const card = dropCard(data);
    card.append(dropTools(card, data));
    scheduled.prepend(card);
    toast("info", "Drop scheduled", `Starts ${when(data.start_time)}.`, { href: `#/drop/${encodeURIComponent(data.drop_id)}`, text: "Open drop" });
  });

  const scheduled = h("ul.drops", { testid: "studio-drops" });
  const productList = h("ul.rows.products", { testid: "studio-products" });
  main.append(h("div.studio", productForm, dropForm), h("h2", { text: "Your drops" }), scheduled, h("h2", { text: "Your products" }), productList);

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
      for (const p of data.items) {
        if (p.creator_id !== me.creator_id || myProducts.has(p.product_id)) continue;
        myProducts.set(p.product_id, p);
        productList.append(productRow(p));
      }
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
        `${drop.units_sold} sold · ${money(drop.revenue_cents, drop.currency)} · ${drop.orders.pending_payment} awaiting payment`), dropTools(card, drop));
      scheduled.append(card);
    }
  }, () => {});
  const ticker = setInterval(() => $$('[data-testid="drop-card"]', scheduled).forEach(updateCard), 1000);
  onLeave(() => clearInterval(ticker));
}
