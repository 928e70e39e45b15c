// A creator's own drop news in a creator's words: the backend tells a drop's owner of its start, low stock
// and sell-out (a push and an inbox row), and the toasts and the inbox say them the same way.
import { EventType } from "./events.js";

/** {title, text} for an owner's news of their drop `name` (`stock` where the event carries it), else null. */
export function ownDropWords(type, name, stock) {
  switch (type) {
    case EventType.DROP_STARTED:
      return { title: `Your drop ${name} is live`, text: "Buyers can order now." };
    case EventType.STOCK_LOW:
      return typeof stock === "number" && stock > 0
        ? { title: `Only ${stock} left of ${name}`, text: "Your drop is running low." }
        : { title: `${name} is running low`, text: "Your drop is almost gone." };
    case EventType.SOLD_OUT:
      return { title: `${name} sold out`, text: "Your drop sold out: every item found a buyer." };
    default:
      return null;
  }
}
