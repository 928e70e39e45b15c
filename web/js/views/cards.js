// A drop's card, as the drops list, a creator's page and the studio show it.
import { $, h } from "../dom.js";
import { now } from "../api.js";
import { STATUS_LABEL, countdown, imageUrls, money, when } from "../format.js";
import { drops } from "../state.js";
import { creator, product, statusOf } from "../store.js";

export function dropCard(drop) {
  const card = h("li.drop-card", { testid: "drop-card", "data-drop-id": drop.drop_id },
    h("a.cover", { href: `#/drop/${encodeURIComponent(drop.drop_id)}` },
      h("span.thumb", { "aria-hidden": "true" }),
      h("span.drop-name", { testid: "drop-name", text: "…" }),
      h("span.creator-name.muted", { text: "" })),
    h("div.meta",
      h("span.pill", { testid: "drop-status" }),
      h("span.price", { text: money(drop.price_cents, drop.currency) })),
    h("p.when", { testid: "drop-when" }));
  product(drop.product_id).then((p) => {
    $(".drop-name", card).textContent = p.name;
    const src = imageUrls(p)[0];
    if (src) $(".thumb", card).replaceChildren(h("img", { src, alt: "" }));
  }, () => ($(".drop-name", card).textContent = "Unknown product"));
  creator(drop.creator_id).then((c) => ($(".creator-name", card).textContent = `by ${c.name}`), () => {});
  updateCard(card);
  return card;
}

export function updateCard(card) {
  const drop = drops.get(card.dataset.dropId);
  if (!drop) return;
  const status = statusOf(drop);
  const pill = $('[data-testid="drop-status"]', card);
  pill.dataset.status = status;
  pill.className = `pill status-${status}`;
  pill.textContent = STATUS_LABEL[status];
  const line = $('[data-testid="drop-when"]', card);
  if (status === "scheduled") line.textContent = `Starts in ${countdown(Date.parse(drop.start_time) - now())}`;
  else if (status === "live") line.textContent = `${drop.stock} of ${drop.initial_stock} left · ends in ${countdown(Date.parse(drop.end_time) - now())}`;
  else if (status === "sold_out") line.textContent = `All ${drop.initial_stock} gone`;
  else if (status === "cancelled") line.textContent = "Cancelled";
  else line.textContent = `Ended ${when(drop.end_time)}`;
}
