// Views: a creator's page, the creators a user follows, and the Follow button.
import { $, $$, h, put } from "../dom.js";
import { api, describeError, unavailable } from "../api.js";
import { when } from "../format.js";
import { errorBox, field, handle, showError } from "../forms.js";
import { go, onLeave } from "../router.js";
import { isMine } from "../session.js";
import { state } from "../state.js";
import { creator, rememberDrop } from "../store.js";
import { toast } from "../toasts.js";
import { dropCard, updateCard } from "./cards.js";

export function followToggle(maker) {
  const session = state.session;
  const button = h("button.chip", { type: "button", testid: "follow-button", "aria-pressed": "false", hidden: !session }, "Follow");
  if (!session) return button;
  const set = (following) => {
    button.setAttribute("aria-pressed", String(following));
    button.dataset.following = String(following);
    button.textContent = following ? "Following ✓" : "Follow";
  };
  // Until we know whether the user follows, the button waits (a click must not race this read).
  button.disabled = true;
  api("GET", `/users/${encodeURIComponent(session.user.user_id)}/follows/${encodeURIComponent(maker.creator_id)}`)
    .then(({ data }) => set(data.following), () => set(false))
    .finally(() => (button.disabled = false));
  button.addEventListener("click", async () => {
    button.disabled = true;
    const following = button.dataset.following === "true";
    try {
      await api(following ? "DELETE" : "POST", `/creators/${encodeURIComponent(maker.creator_id)}/follow`);
      set(!following);
      const fresh = await creator(maker.creator_id, true);
      const count = $('[data-testid="follower-count"]');
      if (count) count.textContent = String(fresh.follower_count);
      toast("info", following ? `Unfollowed ${maker.name}` : `Following ${maker.name}`, following ? "" : "You'll hear the second their drops go live.");
    } catch (error) {
      toast("error", "Couldn't change follow", describeError(error));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

export function viewCreator(main) {
  const box = errorBox("creator-error");
  main.append(box);
  creator(state.route.id, true).then(
    (maker) => {
      put(
        main,
        h("div.view-head", h("h1", { testid: "creator-name", text: maker.name }), isMine(maker.creator_id) ? null : followToggle(maker)),
        maker.profile ? h("p", { text: maker.profile }) : null,
        h("p.muted", h("span", { testid: "follower-count", text: String(maker.follower_count) }), " followers"),
        h("h2", { text: "Drops" }),
      );
      const list = h("ul.drops", { testid: "drop-list" });
      main.append(list);
      api("GET", "/drops?limit=100", { auth: false }).then(({ data }) => {
        const theirs = data.items.filter((d) => d.creator_id === maker.creator_id);
        for (const drop of theirs) list.append(dropCard(rememberDrop(drop)));
        if (!theirs.length) list.replaceWith(h("p.muted", { text: "No drops yet." }));
      }, () => {});
      const ticker = setInterval(() => $$('[data-testid="drop-card"]', list).forEach(updateCard), 1000);
      onLeave(() => clearInterval(ticker));
    },
    (error) => showError(box, error),
  );
}

/** Find creators by name (GET /creators?query=); each result links to the creator's page. */
export function creatorSearch() {
  const results = h("ul.rows.search-results", { testid: "creator-results", "aria-live": "polite" });
  const input = h("input", { name: "query", type: "search", required: true, minlength: "1", maxlength: "100", testid: "creator-search-input", placeholder: "A studio's name" });
  const form = h("form.inline.search", { testid: "creator-search", role: "search" },
    field("Find a creator", input), errorBox("creator-search-error"), h("button.secondary", { type: "submit", testid: "creator-search-submit" }, "Search"));
  handle(form, async (values) => {
    const query = String(values.get("query")).trim();
    results.replaceChildren();
    let data;
    try {
      ({ data } = await api("GET", `/creators?${new URLSearchParams({ query, limit: "20" })}`, { auth: false }));
    } catch (error) {
      throw unavailable(error) ? "Searching creators isn't offered by this server yet. Open a creator by id below." : error;
    }
    const items = data.items || [];
    results.replaceChildren(...items.map((c) => h("li", { testid: "creator-result", "data-creator-id": c.creator_id },
      h("a", { href: `#/creator/${encodeURIComponent(c.creator_id)}`, text: c.name }),
      h("span.muted", { text: ` · ${c.follower_count ?? 0} followers` }))));
    if (!items.length) results.append(h("li.muted", { testid: "creator-results-empty", text: `No creator called "${query}".` }));
  });
  return h("section.creator-search", form, results);
}

export function viewFollowing(main) {
  const box = errorBox("following-error");
  const list = h("ul.rows", { testid: "following-list" });
  main.append(h("h1", { text: "Following" }), creatorSearch(), box, list);
  const form = h("form.inline", { testid: "follow-by-id" },
    field("Follow a creator by id", h("input", { name: "creator_id", required: true, testid: "follow-id" })),
    errorBox(), h("button.secondary", { type: "submit" }, "Open"));
  handle(form, async (values) => {
    const id = String(values.get("creator_id")).trim();
    await creator(id, true);
    go(`#/creator/${encodeURIComponent(id)}`);
  });
  main.append(form);
  api("GET", `/users/${encodeURIComponent(state.session.user.user_id)}/following?limit=100`).then(({ data }) => {
    if (!data.items.length) list.replaceWith(h("p.muted", { testid: "following-empty", text: "You don't follow anyone yet. Open a drop and press Follow to hear when its creator goes live." }));
    for (const row of data.items) {
      list.append(h("li", { testid: "following-row" },
        h("a", { href: `#/creator/${encodeURIComponent(row.creator_id)}`, text: row.name }),
        h("span.muted", { text: ` since ${when(row.followed_at)}` })));
    }
  }, (error) => showError(box, error));
}
