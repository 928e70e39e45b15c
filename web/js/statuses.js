// Generated from chalicelib/core/statuses.py by `python -m chalicelib.core.statuses --js`: do not edit.
export const DropStatus = Object.freeze({
  "SCHEDULED": "scheduled",
  "LIVE": "live",
  "SOLD_OUT": "sold_out",
  "ENDED": "ended",
  "CANCELLED": "cancelled",
});
export const OrderStatus = Object.freeze({
  "PENDING_PAYMENT": "pending_payment",
  "CONFIRMED": "confirmed",
  "PAYMENT_FAILED": "payment_failed",
  "EXPIRED": "expired",
  "CANCELLED": "cancelled",
  "REFUNDED": "refunded",
});
/** A drop's status at time `t` (ms) as the API derives it: from the clock and the stock. */
export function dropStatusAt(drop, t) {
  if (drop.status === DropStatus.CANCELLED) return DropStatus.CANCELLED;
  if (drop.status === DropStatus.ENDED || t >= Date.parse(drop.end_time)) return DropStatus.ENDED;
  if (t < Date.parse(drop.start_time)) return DropStatus.SCHEDULED;
  if (drop.stock <= 0) return DropStatus.SOLD_OUT;
  return DropStatus.LIVE;
}
