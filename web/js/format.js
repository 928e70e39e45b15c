// How things read on screen: labels of statuses, money, clocks and times.

export const STATUS_LABEL = { scheduled: "Upcoming", live: "Live", sold_out: "Sold out", ended: "Ended", cancelled: "Cancelled" };
export const ORDER_LABEL = {
  pending_payment: "Payment pending…",
  confirmed: "Confirmed",
  payment_failed: "Payment failed",
  expired: "Expired",
  cancelled: "Cancelled",
};
export const ORDER_NOTE = {
  pending_payment: "We're charging your card. This usually takes a second or two.",
  // Not a status: a pending order whose charge the card provider could not process yet (see orderNote).
  payment_retrying: "Your card provider didn't answer yet. We're retrying for you; your item stays reserved.",
  confirmed: "Paid. It's yours!",
  payment_failed: "The card was declined. You weren't charged and the item went back on sale.",
  expired: "Payment didn't complete in time. You weren't charged and the item went back on sale.",
  cancelled: "Cancelled: you weren't charged and the item went back on sale.",
};
/** What a buyer reads under an order: its status's note, or that a failed charge is being retried. */
export const orderNote = (order) =>
  (order.status === "pending_payment" && order.payment_retrying ? ORDER_NOTE.payment_retrying : ORDER_NOTE[order.status]) || "";
export const TERMINAL = new Set(["confirmed", "payment_failed", "expired", "cancelled"]);

/** A product's image URLs, whether the API lists them as strings or as {image_url} objects. */
export const imageUrls = (product) => (product?.images || []).map((img) => (typeof img === "string" ? img : img.image_url || img.url)).filter(Boolean);

export function money(cents, currency = "USD") {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

export function countdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(total / 86400);
  const hh = String(Math.floor((total % 86400) / 3600)).padStart(2, "0");
  const mm = String(Math.floor((total % 3600) / 60)).padStart(2, "0");
  const ss = String(total % 60).padStart(2, "0");
  return d ? `${d}d ${hh}:${mm}:${ss}` : `${hh}:${mm}:${ss}`;
}

export const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

/** An order's time: the time alone when it is today, else with its date. */
export function orderTime(iso) {
  const at = new Date(iso);
  const today = at.toDateString() === new Date().toDateString();
  return at.toLocaleString(undefined, today ? { timeStyle: "medium" } : { dateStyle: "medium", timeStyle: "medium" });
}

/** A datetime-local input's value for `ms` (the user's own time zone). */
export function localInput(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
