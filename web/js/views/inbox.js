// Views: the inbox (notifications, read and unread).
import { $, $$, h } from "../dom.js";
import { api } from "../api.js";
import { EventType, FrameType } from "../events.js";
import { when } from "../format.js";
import { errorBox, showError } from "../forms.js";
import { ownDropWords } from "../ownnews.js";
import { render } from "../router.js";
import { isMine } from "../session.js";
import { state } from "../state.js";
import { fetchDrop, product } from "../store.js";
import { markRead, setUnread } from "../unread.js";

const INBOX_TEXT = {
  [EventType.DROP_STARTED]: "A drop started",
  [FrameType.STOCK_CHANGED]: "Stock changed",
  [EventType.STOCK_LOW]: "Almost sold out",
  [EventType.SOLD_OUT]: "A drop sold out",
  [EventType.DROP_ENDED]: "A drop ended",
  [EventType.ORDER_CONFIRMED]: "Order confirmed",
  [EventType.ORDER_FAILED]: "Payment failed",
  [EventType.ORDER_EXPIRED]: "Order expired",
  [FrameType.QUEUE_POSITION]: "Your place in the line",
  [FrameType.ADMITTED]: "It's your turn to buy",
  [FrameType.DRAW_WON]: "You won the draw",
  [FrameType.DRAW_LOST]: "The draw didn't reach you",
};

export function viewInbox(main) {
  const box = errorBox("inbox-error");
  const list = h("ul.rows", { testid: "inbox-list" });
  const more = h("button.secondary", { type: "button", hidden: true, testid: "inbox-more" }, "Show more");
  const markAll = h("button.chip", { type: "button", testid: "inbox-mark-all", disabled: true }, "Mark all read");
  main.append(h("div.view-head", h("h1", { text: "Inbox" }),
    h("div.actions",
      markAll,
      h("button.chip", { type: "button", testid: "inbox-refresh", onclick: () => render() }, "Refresh"))),
    h("p.muted", { testid: "inbox-unread", role: "status" }), box, list, more);
  let page = null;
  let newest = null; // the newest notification's time on screen: "mark all read" marks up to it
  const setRead = (row) => {
    row.classList.replace("unread", "read");
    $('[data-testid="inbox-mark-read"]', row)?.remove();
  };
  const readOne = async (note, row) => {
    try {
      await markRead({ notification_id: note.notification_id });
      setRead(row);
    } catch (error) {
      showError(box, error);
    }
  };
  markAll.addEventListener("click", async () => {
    markAll.disabled = true;
    try {
      await markRead({ up_to: newest });
      for (const row of $$('[data-testid="inbox-item"].unread', list)) if (row.dataset.at <= newest) setRead(row);
    } catch (error) {
      showError(box, error);
    } finally {
      markAll.disabled = false;
    }
  });
  const load = async () => {
    try {
      const params = new URLSearchParams({ limit: "20" });
      if (page) params.set("page", page);
      const { data } = await api("GET", `/users/${encodeURIComponent(state.session.user.user_id)}/notifications?${params}`);
      setUnread(data.unread);
      for (const note of data.items) {
        newest = newest && newest > note.created_at ? newest : note.created_at;
        // One row per notification: what happened, when, then its actions on their own line.
        const row = h("li.inbox-row", { testid: "inbox-item", "data-type": note.type, "data-at": note.created_at, class: note.read ? "inbox-row read" : "inbox-row unread" },
          h("div.inbox-title", h("strong", { text: INBOX_TEXT[note.type] || note.type.replaceAll("_", " ") })),
          h("time.muted", { datetime: note.created_at, text: when(note.created_at) }),
          h("div.actions",
            note.drop_id ? h("a", { href: `#/drop/${encodeURIComponent(note.drop_id)}`, onclick: () => !note.read && markRead({ notification_id: note.notification_id }).catch(() => {}) }, "Open drop") : null,
            note.read ? null : h("button.link", { type: "button", testid: "inbox-mark-read", onclick: () => readOne(note, row) }, "Mark read")));
        list.append(row);
        if (note.drop_id) {
          fetchDrop(note.drop_id).then(async (drop) => {
            const { name } = await product(drop.product_id);
            // The creator's own drop reads as theirs ("Your drop Poster is live"); others name the product.
            const own = isMine(drop.creator_id) ? ownDropWords(note.type, name, note.data?.stock) : null;
            if (own) row.dataset.own = "true";
            $("strong", row).textContent = own ? own.title : `${INBOX_TEXT[note.type] || note.type.replaceAll("_", " ")}: ${name}`;
          }, () => {});
        }
      }
      markAll.disabled = !newest;
      page = data.next_page;
      more.hidden = !page;
      if (!list.children.length) list.replaceWith(h("p.muted", { testid: "inbox-empty", text: "Nothing yet. Follow a creator to hear about their drops." }));
    } catch (error) {
      showError(box, error);
    }
  };
  more.addEventListener("click", load);
  load();
}
