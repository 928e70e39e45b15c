// What each server frame does: moves the stock on screen, shows a toast, settles an order.
import { now } from "./api.js";
import { supersedes } from "./coalescing.js";
import { EventType, FrameType } from "./events.js";
import { ORDER_NOTE, TERMINAL } from "./format.js";
import { refreshOrder } from "./orders.js";
import { ownDropWords } from "./ownnews.js";
import { refreshDropViews } from "./refresh.js";
import { isMine } from "./session.js";
import { live } from "./socket.js";
import { drops, lineViews, orders, salesViews } from "./state.js";
import { fetchDrop, product } from "./store.js";
import { toast } from "./toasts.js";
import { refreshUnread, unreadSoon } from "./unread.js";

const seenEvents = new Set();
const CANCELLED = "cancelled";

const ORDER_TITLE = {
  [EventType.ORDER_CONFIRMED]: "Order confirmed",
  [EventType.ORDER_FAILED]: "Payment failed",
  [EventType.ORDER_EXPIRED]: "Order expired",
};
const ORDER_EVENT_NOTE = {
  [EventType.ORDER_CONFIRMED]: ORDER_NOTE.confirmed,
  [EventType.ORDER_FAILED]: ORDER_NOTE.payment_failed,
  [EventType.ORDER_EXPIRED]: ORDER_NOTE.expired,
};

export async function onEvent(frame) {
  if (frame.event_id) {
    if (seenEvents.has(frame.event_id)) return; // at-least-once delivery: show each event once
    seenEvents.add(frame.event_id);
  }
  const data = frame.data || {};
  const dropId = data.drop_id;
  const known = dropId ? drops.get(dropId) : null;
  const at = Date.parse(frame.occurred_at || "") || now();

  if (typeof data.stock === "number" && known && supersedes(at, known._stockAt)) {
    drops.set(dropId, { ...known, stock: data.stock, _stockAt: at });
    refreshDropViews(dropId);
  }
  if (dropId && salesViews.has(dropId)) salesViews.get(dropId)();
  if (dropId && lineViews.has(dropId)) lineViews.get(dropId)(frame);
  if (frame.type !== FrameType.STOCK_CHANGED) unreadSoon();

  const name = async () => {
    try {
      const drop = known || (await fetchDrop(dropId));
      return (await product(drop.product_id)).name;
    } catch {
      return "A drop";
    }
  };
  const link = dropId ? { href: `#/drop/${encodeURIComponent(dropId)}`, text: "Open drop" } : null;
  const mine = isMine(data.creator_id || known?.creator_id);
  const ownToast = (productName) => {
    const words = ownDropWords(frame.type, productName, data.stock);
    toast(frame.type, words.title, words.text, link);
  };
  switch (frame.type) {
    case EventType.DROP_STARTED:
      if (mine) ownToast(await name());
      else toast(EventType.DROP_STARTED, `${await name()} is live now!`, "It just started: order before it's gone.", link);
      if (dropId) fetchDrop(dropId).then(() => refreshDropViews(dropId), () => {});
      break;
    case EventType.STOCK_LOW:
      if (known) refreshDropViews(dropId);
      if (mine) ownToast(await name());
      break;
    case EventType.SOLD_OUT:
      if (known) drops.set(dropId, { ...drops.get(dropId), stock: 0, _stockAt: at });
      refreshDropViews(dropId);
      if (mine) ownToast(await name());
      else toast(EventType.SOLD_OUT, `${await name()} sold out`, "Every item in this drop has been taken.", link);
      break;
    case EventType.DROP_ENDED:
      if (dropId) fetchDrop(dropId).then(() => refreshDropViews(dropId), () => {});
      toast(EventType.DROP_ENDED, `${await name()} has ended`, "", link);
      break;
    case EventType.ORDER_CONFIRMED:
    case EventType.ORDER_FAILED:
    case EventType.ORDER_EXPIRED: {
      toast(frame.type, ORDER_TITLE[frame.type], ORDER_EVENT_NOTE[frame.type], link);
      if (data.order_id) refreshOrder(data.order_id);
      break;
    }
    case FrameType.ADMITTED:
      toast(frame.type, `Your turn for ${await name()}!`, "You're admitted: buy before your window closes.", link);
      break;
    case FrameType.DRAW_WON:
      toast(frame.type, `You won the draw for ${await name()}!`, "Your unit is waiting: buy it before your window closes.", link);
      break;
    case FrameType.DRAW_LOST:
      toast(frame.type, `The draw for ${await name()} is over`, "It didn't reach you this time. Thanks for entering!", link);
      break;
    default:
      // An event this page has no case for (the drop_cancelled of a newer API among them): read the drop
      // again, and say so when it turns out cancelled.
      if (dropId) {
        const drop = await fetchDrop(dropId).catch(() => null);
        refreshDropViews(dropId);
        if (drop?.status === CANCELLED) toast("error", `${await name()} was cancelled`, "The creator cancelled this drop. Any payment is refunded.", link);
      }
      break;
  }
}

/** After a reconnect we may have missed frames: re-read what is on screen. */
export function onReconnected() {
  refreshUnread();
  for (const dropId of live.subscriptions) fetchDrop(dropId).then(() => refreshDropViews(dropId), () => {});
  for (const [id, order] of orders) if (!TERMINAL.has(order.status)) refreshOrder(id);
}
