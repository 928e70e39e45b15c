// Generated from chalicelib/messages.py by `python -m chalicelib.messages --js`: do not edit.
export const EventType = Object.freeze({
  "DROP_SCHEDULED": "drop_scheduled",
  "DROP_STARTED": "drop_started",
  "STOCK_LOW": "stock_low",
  "SOLD_OUT": "sold_out",
  "DROP_ENDED": "drop_ended",
  "ORDER_PLACED": "order_placed",
  "ORDER_CONFIRMED": "order_confirmed",
  "ORDER_FAILED": "order_failed",
  "ORDER_EXPIRED": "order_expired",
});
export const FrameType = Object.freeze({
  "PONG": "pong",
  "SUBSCRIBED": "subscribed",
  "UNSUBSCRIBED": "unsubscribed",
  "ERROR": "error",
  "STOCK_CHANGED": "stock_changed",
  "QUEUE_POSITION": "queue_position",
  "ADMITTED": "admitted",
  "DRAW_WON": "draw_won",
  "DRAW_LOST": "draw_lost",
});
