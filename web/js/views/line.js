// The waiting room and the draw on a drop's page: join or enter, your place, your admission (with its
// countdown) and, for a draw, its commitment, your result and "Check this draw".
import { h } from "../dom.js";
import { api, describeError, now } from "../api.js";
import { checkDraw, allEntries } from "../drawcheck.js";
import { FrameType } from "../events.js";
import { countdown, when } from "../format.js";
import { clearError, errorBox, showError } from "../forms.js";
import { onLeave } from "../router.js";
import { AFTER_LOGIN_KEY } from "../session.js";
import { drops, linePlaces as places, lineViews, state } from "../state.js";
import { fetchDrop, statusOf } from "../store.js";

const POLL_MS = 2000;
const ADMITTED = FrameType.ADMITTED; // a place's state while its admission is valid: the frame's own name

/** Whether this drop sells through a line (queue, or a draw that has not released its units). */
export function needsAdmission(drop) {
  return drop.sale_mode === "queue" || (drop.sale_mode === "draw" && !drop.draw?.released_at);
}

/** The admission token to send with an order on this drop, while it is valid. */
export function admissionFor(dropId) {
  const place = places.get(dropId);
  if (!place || place.state !== ADMITTED || !place.admission_token) return null;
  return Date.parse(place.admission_expires_at) > now() ? place.admission_token : null;
}

const path = (drop, me = false) => `/drops/${encodeURIComponent(drop.drop_id)}/${drop.sale_mode === "draw" ? "entries" : "queue"}${me ? "/me" : ""}`;

/** The line box of `drop`; `buyForm` is shown only while the user holds a valid admission. */
export function lineBox(drop, buyForm) {
  const draw = drop.sale_mode === "draw";
  const box = errorBox("line-error");
  const join = h("button.primary.buy", { type: "button", testid: "line-join", "data-keep-clear": true }, draw ? "Enter the draw" : "Join the line");
  const status = h("p.line-status", { testid: "line-status", role: "status", "aria-live": "polite" });
  const clock = h("p.admission", { testid: "admission-countdown", role: "timer", hidden: true, "data-keep-clear": true });
  const section = h("section.card.line-box", { testid: "line-box", "data-mode": drop.sale_mode, "data-state": "none" },
    h("h2", { text: draw ? "The draw" : "The waiting room" }),
    h("p.muted", { text: draw ? explainDraw(drop) : explainQueue(drop) }),
    draw ? commitmentLine(drop) : null,
    status, clock, box,
    state.session ? join : h("p", h("a", { href: "#/login", testid: "login-to-join", onclick: () => sessionStorage.setItem(AFTER_LOGIN_KEY, location.hash) }, "Log in"), draw ? " to enter the draw." : " to join the line."),
    draw ? drawCheck(drop) : null);
  if (buyForm) buyForm.hidden = needsAdmission(drop);

  const show = () => {
    const latest = drops.get(drop.drop_id) || drop;
    const place = places.get(drop.drop_id);
    const stateName = place ? place.state : "none";
    section.dataset.state = stateName;
    join.hidden = Boolean(place) || !state.session;
    status.replaceChildren(...describePlace(latest, place));
    const token = admissionFor(drop.drop_id);
    clock.hidden = !token;
    if (token) clock.textContent = `Your turn! Buy within ${countdown(Date.parse(place.admission_expires_at) - now())}`;
    if (buyForm) buyForm.hidden = needsAdmission(latest) && !token;
    if (draw) {
      section.dataset.result = drawResult(latest, place);
      const check = section.querySelector('[data-testid="draw-check-result"]');
      if (latest.draw?.seed && check.dataset.ok === "pending") {
        delete check.dataset.ok; // "not drawn yet" no longer holds: the seed is out
        check.textContent = "";
      }
    }
  };
  const load = async () => {
    if (!state.session) return show();
    try {
      const { data } = await api("GET", path(drop, true));
      places.set(drop.drop_id, data);
      // The seed is published at the draw: read the drop again until it shows it.
      const latest = drops.get(drop.drop_id) || drop;
      if (draw && !latest.draw?.seed && now() >= Date.parse(latest.start_time)) await fetchDrop(drop.drop_id);
    } catch (error) {
      if (error.code !== "not_in_line") showError(box, error);
    }
    show();
  };
  join.addEventListener("click", async () => {
    join.disabled = true;
    clearError(box);
    try {
      const { data } = await api("POST", path(drop));
      places.set(drop.drop_id, data);
      await load();
    } catch (error) {
      showError(box, error);
    } finally {
      join.disabled = false;
      show();
    }
  });
  // Pushes (queue_position, admitted, draw_won, draw_lost) re-read the place; a poll covers lost frames
  // and the serving counter, which is not pushed.
  lineViews.set(drop.drop_id, (frame) => {
    if (frame?.type === FrameType.DRAW_LOST) places.set(drop.drop_id, { ...(places.get(drop.drop_id) || {}), lost: true });
    load();
  });
  const ticker = setInterval(show, 1000);
  const poll = setInterval(() => {
    const place = places.get(drop.drop_id);
    if (place && ["waiting", ADMITTED].includes(place.state) && statusOf(drops.get(drop.drop_id) || drop) !== "ended") load();
  }, POLL_MS);
  onLeave(() => {
    clearInterval(ticker);
    clearInterval(poll);
    lineViews.delete(drop.drop_id);
  });
  load();
  return section;
}

function explainQueue(drop) {
  const q = drop.queue || {};
  return `Join from ${q.opens_at ? when(q.opens_at) : "now"}. Everyone who joins before the start gets a random place, so there's no need to rush; when your turn comes you have ${minutes(q.purchase_window_seconds)} to buy.`;
}

function explainDraw(drop) {
  const d = drop.draw || {};
  return `Enter from ${d.entries_open_at ? when(d.entries_open_at) : "now"} until the draw at ${when(d.draw_at || drop.start_time)}. One unit per winner; winners have ${minutes(d.purchase_window_seconds)} to buy, then the unit passes to the next entry.`;
}

const minutes = (seconds) => (seconds ? `${Math.round(seconds / 60)} minute${Math.round(seconds / 60) === 1 ? "" : "s"}` : "a few minutes");

function commitmentLine(drop) {
  return h("p.commitment", "Commitment: ", h("code", { testid: "draw-commitment", text: drop.draw?.commitment || "" }),
    h("small.muted", { text: " (the SHA-256 of a secret seed fixed before anyone could enter; the seed is published at the draw)" }));
}

function drawResult(drop, place) {
  if (!place) return "none";
  if (place.state === ADMITTED || place.state === "bought") return "won";
  if (place.lost || (place.state === "waiting" && statusOf(drop) === "ended")) return "lost";
  if (place.state === "expired") return "expired";
  if (!drop.draw?.seed) return "entered";
  // Drawn, placed among the first `stock` but not admitted yet: the admission is on its way.
  return !place.position || place.position <= drop.initial_stock ? "drawing" : "waiting";
}

function describePlace(drop, place) {
  const draw = drop.sale_mode === "draw";
  if (!place) return [draw ? "You haven't entered yet." : "You're not in the line yet."];
  const pos = place.position ? h("strong", { testid: "line-position", text: `#${place.position}` }) : null;
  switch (place.state) {
    case ADMITTED:
      return [draw ? "You won the draw! " : "It's your turn! ", "Buy below before your window closes."];
    case "bought":
      return [draw ? "You won and bought your unit." : "You've bought your item from the line."];
    case "expired":
      return [draw ? "You won, but your time to buy ran out; the unit went to the next entry." : "Your turn came, but your time to buy ran out."];
    default:
      break;
  }
  if (draw) {
    if (drawResult(drop, place) === "lost") return ["The draw didn't reach you this time. Thanks for entering!"];
    if (!drop.draw?.seed) return ["You're in the draw. ", h("span.muted", { text: `Your entry: ${place.entry_id || ""}` })];
    if (drawResult(drop, place) === "drawing") return ["The draw is done: your result is on its way…"];
    return ["Not drawn yet: you're ", pos, " in the draw order. A unit may still reach you if a winner doesn't buy."];
  }
  if (!place.position) return ["You're in the line. Your place is set when the drop starts."];
  const ahead = Math.max(0, place.position - 1 - (place.serving || 0));
  const people = ahead === 1 ? "1 person" : `${ahead} people`;
  return ["You're ", pos, ` in the line${ahead ? ` (${people} ahead of you)` : ", next to be served"}. We'll tell you when it's your turn.`];
}

function drawCheck(drop) {
  const out = h("div.draw-check-result", { testid: "draw-check-result", role: "status" });
  const button = h("button.secondary", { type: "button", testid: "draw-check" }, "Check this draw");
  button.addEventListener("click", async () => {
    button.disabled = true;
    out.textContent = "Recomputing the draw in your browser…";
    try {
      const latest = drops.get(drop.drop_id) || drop;
      if (!latest.draw?.seed) {
        out.dataset.ok = "pending";
        out.textContent = "The draw hasn't happened yet: its seed is published at the draw.";
        return;
      }
      const result = await checkDraw(latest, await allEntries(drop.drop_id));
      out.dataset.ok = String(result.ok);
      out.replaceChildren(result.ok
        ? `Checked: the seed matches the commitment, and all ${result.entries} entries are in the order the seed gives. The first ${Math.min(latest.initial_stock, result.entries)} won.`
        : !result.commitmentOk
          ? "The published seed does NOT match the commitment."
          : `${result.mismatches.length} of ${result.entries} entries are not where the seed puts them.`);
    } catch (error) {
      out.dataset.ok = "error";
      out.textContent = describeError(error);
    } finally {
      button.disabled = false;
    }
  });
  return h("div.draw-check", button, out);
}
