// Brings whatever shows a drop on screen (its cards, its page) up to the latest drop we know.
import { $, $$ } from "./dom.js";
import { now } from "./api.js";
import { STATUS_LABEL, countdown, when } from "./format.js";
import { live } from "./socket.js";
import { drops, state } from "./state.js";
import { fetchDrop, statusOf } from "./store.js";
import { updateCard } from "./views/cards.js";

/** Whether the drop page on screen gets its stock live (the server confirmed the subscription). */
export function markSubscribed() {
  const detail = $('[data-testid="drop-detail"]');
  if (!detail) return;
  const on = live.confirmed.has(detail.dataset.dropId);
  detail.dataset.subscribed = String(on);
  const note = $('[data-testid="drop-live-note"]', detail);
  if (note) note.textContent = on ? "Stock updates live." : state.session ? "Connecting to live updates…" : "";
}

export function refreshDropViews(dropId) {
  for (const card of $$(`[data-testid="drop-card"][data-drop-id="${CSS.escape(dropId)}"]`)) updateCard(card);
  const detail = $(`[data-testid="drop-detail"][data-drop-id="${CSS.escape(dropId)}"]`);
  const drop = drops.get(dropId);
  if (!detail || !drop) return;
  const status = statusOf(drop);
  const pill = $('[data-testid="drop-status"]', detail);
  if (pill.dataset.status !== status) {
    const previous = pill.dataset.status;
    pill.dataset.status = status;
    pill.className = `pill status-${status}`;
    pill.textContent = STATUS_LABEL[status];
    // The clock just crossed a boundary: confirm it with the server (it derives the same status).
    if (previous) setTimeout(() => fetchDrop(dropId).then(() => refreshDropViews(dropId), () => {}), 300);
  }
  $('[data-testid="drop-stock-count"]', detail).textContent = String(Math.max(0, drop.stock));
  const meter = $('[data-testid="drop-meter"]', detail);
  meter.setAttribute("aria-valuenow", String(Math.max(0, drop.stock)));
  $("span", meter).style.width = `${(100 * Math.max(0, drop.stock)) / drop.initial_stock}%`;
  const label = $('[data-testid="drop-clock-label"]', detail);
  const clock = $('[data-testid="drop-countdown"]', detail);
  if (status === "scheduled") {
    label.textContent = "Starts in";
    clock.textContent = countdown(Date.parse(drop.start_time) - now());
  } else if (status === "live" || status === "sold_out") {
    label.textContent = "Ends in";
    clock.textContent = countdown(Date.parse(drop.end_time) - now());
  } else {
    label.textContent = "Ended";
    clock.textContent = when(drop.end_time);
  }
  const low = drop.low_stock_threshold != null && drop.stock > 0 && drop.stock <= drop.low_stock_threshold;
  $('[data-testid="drop-low"]', detail).hidden = !(low && status === "live");
  const buy = $('[data-testid="buy-button"]', detail);
  if (buy) {
    const open = status === "live";
    buy.setAttribute("aria-disabled", String(!open));
    buy.textContent = { scheduled: "Not started yet", live: "Buy now", sold_out: "Sold out", ended: "Drop ended" }[status];
    buy.classList.toggle("inactive", !open);
  }
}
