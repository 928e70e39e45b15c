// Views: one drop, live (its stock, its clock, the Buy box, the buyer's orders for it).
import { $, h } from "../dom.js";
import { api } from "../api.js";
import { imageUrls, money, newKey } from "../format.js";
import { clearError, errorBox, field, showError } from "../forms.js";
import { renderOrders, trackOrder } from "../orders.js";
import { markSubscribed, refreshDropViews } from "../refresh.js";
import { go, onLeave } from "../router.js";
import { AFTER_LOGIN_KEY, isMine } from "../session.js";
import { live } from "../socket.js";
import { drops, orders, state } from "../state.js";
import { creator, fetchDrop, product } from "../store.js";
import { followToggle } from "./creators.js";
import { creatorView } from "./sales.js";
import { admissionFor, lineBox, needsAdmission } from "./line.js";
import { watchAnonymously } from "../poll.js";
import { ownWatched } from "../ownwatch.js";

export function viewDrop(main) {
  const dropId = state.route.id;
  const box = errorBox("drop-error");
  main.append(h("p.muted", { testid: "drop-loading", text: "Loading drop…" }), box);
  if (state.session) live.subscribe(dropId);
  else watchAnonymously(dropId); // the WebSocket needs a login: poll the drop with its ETag instead
  onLeave(() => ownWatched.has(dropId) || live.unsubscribe(dropId));
  const stillHere = () => state.route.name === "drop" && state.route.id === dropId;
  fetchDrop(dropId).then(
    async (drop) => {
      if (!stillHere()) return;
      let item = null;
      let maker = null;
      try {
        [item, maker] = await Promise.all([product(drop.product_id), creator(drop.creator_id)]);
      } catch {
        item = item || { name: "Unknown product", description: "" };
      }
      if (!stillHere()) return;
      $('[data-testid="drop-loading"]', main)?.remove();
      main.append(dropDetail(drops.get(dropId), item, maker));
      refreshDropViews(dropId);
      markSubscribed();
      renderOrders();
      if (state.session) loadMyOrdersFor(dropId);
    },
    (error) => {
      $('[data-testid="drop-loading"]', main)?.remove();
      showError(box, error);
    },
  );
  const ticker = setInterval(() => refreshDropViews(dropId), 1000);
  onLeave(() => clearInterval(ticker));
}

async function loadMyOrdersFor(dropId) {
  try {
    const { data } = await api("GET", `/users/${encodeURIComponent(state.session.user.user_id)}/orders?limit=50`);
    for (const order of data.items) if (order.drop_id === dropId && !orders.has(order.order_id)) trackOrder(order);
  } catch {
    // the list is a convenience; the buy box works without it
  }
}

const ADDRESS = [["name", "Full name"], ["line1", "Address"], ["line2", "Address line 2 (optional)"], ["city", "City"], ["region", "Region (optional)"], ["postal_code", "Postal code"], ["country", "Country (2 letters, e.g. US)"]];

/** "Ship to": optional; sent as shipping_address only when filled in. */
function shippingFields() {
  return h("details.ship-to", { testid: "ship-to" },
    h("summary", { text: "Ship to (optional)" }),
    h("div.row", ADDRESS.map(([name, label]) => field(label, h("input", { name: `ship_${name}`, testid: `ship-${name}`, autocomplete: name === "name" ? "name" : "off", maxlength: name === "country" ? "2" : "200" })))));
}

function shippingAddress(values) {
  const address = {};
  for (const [name] of ADDRESS) {
    const value = String(values.get(`ship_${name}`) || "").trim();
    if (value) address[name] = name === "country" ? value.toUpperCase() : value;
  }
  return Object.keys(address).length ? address : null;
}

function dropDetail(drop, item, maker) {
  const mine = isMine(drop.creator_id);
  const limit = drop.per_user_limit || (drop.sale_mode && drop.sale_mode !== "first_come" ? 1 : 10); // an admission buys one order
  const quantity = h("select", { name: "quantity", testid: "buy-quantity" },
    Array.from({ length: Math.min(limit, 10) }, (_, i) => h("option", { value: i + 1 }, String(i + 1))));
  const cards = h("fieldset.cards", { testid: "buy-card" },
    h("legend", { text: "Test card" }),
    [
      ["tok_visa", "Visa (succeeds)"],
      ["tok_chargeDeclined", "Declined card"],
      ["tok_processingError", "Processing error (fails twice, then succeeds)"],
      ["tok_threeDSecureRequired", "Needs 3-D Secure (stays unpaid: you can cancel it)"],
    ].map(([value, label], i) =>
      h("label.radio", {}, h("input", { type: "radio", name: "card", value, checked: i === 0, testid: `card-${value}` }), ` ${label}`)));
  const box = errorBox("buy-error");
  const retry = h("button.secondary", { type: "button", testid: "buy-retry", hidden: true }, "Retry the same purchase");
  const buy = h("button.primary.buy", { type: "submit", testid: "buy-button", "data-keep-clear": true }, "Buy now");
  const form = h("form.buy-box", { testid: "buy-form", "aria-labelledby": "buy-title" },
    h("h2", { id: "buy-title", text: "Buy" }),
    field("Quantity", quantity, drop.per_user_limit ? `Up to ${drop.per_user_limit} per person.` : null),
    cards, shippingFields(), box,
    h("div.actions", buy, retry),
    h("p.muted", { testid: "buy-progress", role: "status", "aria-live": "polite" }));

  // A purchase attempt keeps its Idempotency-Key for every retry of that same click.
  let attempt = null;
  const progress = $('[data-testid="buy-progress"]', form);
  const send = async (autoRetries = 2) => {
    buy.disabled = true;
    retry.hidden = true;
    clearError(box);
    progress.textContent = "Placing your order…";
    try {
      const { data } = await api("POST", "/orders", { body: attempt.body, headers: { "Idempotency-Key": attempt.key } });
      progress.textContent = "";
      attempt = null;
      trackOrder(data);
    } catch (error) {
      progress.textContent = "";
      const retriable = error.code === "network" || error.code === "try_again" || error.status >= 500;
      if (retriable && autoRetries > 0) {
        const wait = (Number(error.retryAfter) || 1) * 1000 * (0.75 + Math.random() / 2);
        progress.textContent = "Busy, retrying…";
        await new Promise((resolve) => setTimeout(resolve, wait));
        return await send(autoRetries - 1);
      }
      showError(box, error.code === "invalid_request" && /shipping_address/.test(error.apiMessage) && /unknown|not allowed|unexpected/i.test(error.apiMessage) ? "This server doesn't take shipping addresses yet: leave them empty." : error);
      if (retriable) retry.hidden = false;
      else attempt = null;
      if (["sold_out", "drop_ended", "insufficient_stock"].includes(error.code)) fetchDrop(drop.drop_id).then(() => refreshDropViews(drop.drop_id), () => {});
    } finally {
      buy.disabled = false;
      refreshDropViews(drop.drop_id);
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!state.session) return go("#/login");
    const values = new FormData(form);
    attempt = { key: newKey(), body: { drop_id: drop.drop_id, quantity: Number(quantity.value), payment_token: values.get("card") } };
    const address = shippingAddress(values);
    if (address) attempt.body.shipping_address = address;
    const latest = drops.get(drop.drop_id) || drop;
    if (needsAdmission(latest)) {
      const token = admissionFor(drop.drop_id);
      if (!token) return showError(box, "Your turn hasn't come yet (or your time to buy ran out).");
      attempt.body.admission_token = token;
    }
    send();
  });
  retry.addEventListener("click", () => attempt && send(0));

  // On their own drop a creator sees how it sells, not Buy and Follow.
  const followButton = maker && !mine ? followToggle(maker) : null;
  const line = !mine && drop.sale_mode && drop.sale_mode !== "first_come" ? lineBox(drop, state.session ? form : null) : null;
  const action = mine
    ? creatorView(drop)
    : state.session
      ? form
      : line ? null : h("p.card", h("a", { href: "#/login", testid: "login-to-buy", onclick: () => sessionStorage.setItem(AFTER_LOGIN_KEY, location.hash) }, "Log in"), " to buy and to watch the stock live.");
  return h("article.drop-detail", { testid: "drop-detail", "data-drop-id": drop.drop_id, "data-subscribed": "false" },
    h("div.view-head",
      h("h1", { testid: "drop-title", text: item.name }),
      h("span.pill", { testid: "drop-status" })),
    h("p.byline",
      maker ? h("a", { href: `#/creator/${encodeURIComponent(maker.creator_id)}`, testid: "drop-creator", text: `by ${maker.name}` }) : null,
      followButton),
    imageUrls(item).length ? h("div.gallery.drop-images", { testid: "drop-images" }, imageUrls(item).map((src) => h("img", { src, alt: item.name }))) : null,
    item.description ? h("p", { text: item.description }) : null,
    h("div.stats",
      h("div.stat", h("span.label", { text: "Price" }), h("span.value", { testid: "drop-price", text: money(drop.price_cents, drop.currency) })),
      h("div.stat", h("span.label", { text: "Left" }),
        h("span.value", { testid: "drop-stock" },
          h("span", { testid: "drop-stock-count", text: String(drop.stock) }), h("span.muted", { text: ` / ${drop.initial_stock}` }))),
      h("div.stat", h("span.label", { testid: "drop-clock-label", text: "Starts in" }), h("span.value", { testid: "drop-countdown", role: "timer", "aria-live": "off", "data-keep-clear": true }))),
    h("div.meter", { role: "progressbar", "aria-label": "Stock left", "aria-valuemin": "0", "aria-valuemax": String(drop.initial_stock), testid: "drop-meter" }, h("span")),
    h("p.low", { testid: "drop-low", hidden: true, text: "Almost gone!" }),
    h("p.muted.live-note", { testid: "drop-live-note" }),
    line,
    action,
    h("section.orders-box", { hidden: true, "aria-labelledby": "orders-title" },
      h("h2", { id: "orders-title", text: "Your orders for this drop" }),
      h("ul.orders", { testid: "drop-orders", "aria-live": "polite" })));
}
