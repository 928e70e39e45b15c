// Live stock for visitors who are not logged in. The WebSocket refuses a handshake without a token
// (docs/api.md, WebSocket), so a logged-out page polls GET /drops/{id} with the drop's ETag: an unchanged
// drop answers 304 with no body, so the poll costs next to nothing.
import { state } from "./state.js";
import { onLeave } from "./router.js";
import { refreshDropViews } from "./refresh.js";
import { rememberDrop } from "./store.js";

export const ANONYMOUS_POLL_MS = 2000;

/** Poll one drop while its page is on screen and nobody is logged in; marks the page as polling. */
export function watchAnonymously(dropId) {
  let etag = null;
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped || state.session) return;
    try {
      // no-store: the browser must hand the 304 to us rather than answer from its own cache.
      const headers = etag ? { "If-None-Match": etag } : {};
      const response = await fetch(`${state.config.apiUrl}/drops/${encodeURIComponent(dropId)}`, { headers, cache: "no-store" });
      if (response.status === 200) {
        etag = response.headers.get("ETag");
        rememberDrop(await response.json());
        refreshDropViews(dropId);
      }
      const detail = document.querySelector('[data-testid="drop-detail"]');
      if (detail) {
        detail.dataset.polling = "true";
        detail.dataset.lastPoll = String(response.status);
        const note = detail.querySelector('[data-testid="drop-live-note"]');
        if (note) note.textContent = "Stock refreshes every few seconds. Log in to get it live.";
      }
    } catch {
      // offline for a moment: the next tick tries again
    }
    if (!stopped) timer = setTimeout(tick, ANONYMOUS_POLL_MS);
  };
  timer = setTimeout(tick, ANONYMOUS_POLL_MS);
  onLeave(() => {
    stopped = true;
    clearTimeout(timer);
  });
}
