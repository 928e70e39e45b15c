// Views: the drops list.
import { $$, h, put } from "../dom.js";
import { api } from "../api.js";
import { clearError, errorBox, showError } from "../forms.js";
import { onLeave, render } from "../router.js";
import { state } from "../state.js";
import { rememberDrop } from "../store.js";
import { dropCard, updateCard } from "./cards.js";

const FILTERS = [
  ["", "All"],
  ["live", "Live"],
  ["scheduled", "Upcoming"],
  ["sold_out", "Sold out"],
  ["ended", "Ended"],
];

export function viewDrops(main) {
  const list = h("ul.drops", { testid: "drop-list", "aria-live": "off" });
  const more = h("button.secondary", { type: "button", testid: "drops-more", hidden: true }, "Show more");
  const box = errorBox("drops-error");
  const empty = h("p.muted", { testid: "drops-empty", hidden: true, text: "No drops here yet." });
  const tabs = h("div.filters", { role: "group", "aria-label": "Filter drops" },
    FILTERS.map(([value, label]) =>
      h("button.chip", {
        type: "button",
        "aria-pressed": String(state.dropFilter === value),
        testid: `filter-${value || "all"}`,
        onclick: () => {
          state.dropFilter = value;
          render();
        },
      }, label)));
  const hint = state.session ? null : h("p.hint", { testid: "drops-hint" },
    h("a", { href: "#/login" }, "Log in"), " or ", h("a", { href: "#/signup" }, "sign up"),
    " to follow creators, get a ping the second a drop goes live, and buy.");
  put(main, h("div.view-head", h("h1", { text: "Drops" }), tabs), hint, box, list, empty, more);
  let page = null;
  const load = async () => {
    clearError(box);
    more.disabled = true;
    try {
      const params = new URLSearchParams({ limit: "24" });
      if (state.dropFilter) params.set("status", state.dropFilter);
      if (page) params.set("page", page);
      const { data } = await api("GET", `/drops?${params}`, { auth: false });
      for (const drop of data.items) list.append(dropCard(rememberDrop(drop)));
      page = data.next_page;
      more.hidden = !page;
      empty.hidden = list.children.length > 0;
    } catch (error) {
      showError(box, error);
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  load();
  const ticker = setInterval(() => $$('[data-testid="drop-card"]', list).forEach(updateCard), 1000);
  onLeave(() => clearInterval(ticker));
}
