// The inbox badge: the server's unread count, the same number the inbox page shows.
import { $ } from "./dom.js";
import { api } from "./api.js";
import { state } from "./state.js";

export const UNREAD_POLL_MS = 30000;
// An event is pushed at once; its inbox row is written a moment later (after the pushes): look again then.
const UNREAD_AFTER_EVENT_MS = [2500, 6000];
let unreadTimers = [];

export function setUnread(count) {
  const badge = $('[data-testid="inbox-badge"]');
  badge.hidden = !count;
  badge.textContent = String(count);
  badge.setAttribute("aria-label", `${count} unread`);
  const line = $('[data-testid="inbox-unread"]');
  if (line) line.textContent = count ? `${count} unread` : "All read";
}

export async function refreshUnread() {
  const session = state.session;
  if (!session || !session.user) return;
  try {
    const { data } = await api("GET", `/users/${encodeURIComponent(session.user.user_id)}/notifications?limit=1`);
    setUnread(data.unread);
  } catch {
    // the badge is a hint; the inbox page shows the real list
  }
}

export function unreadSoon() {
  for (const timer of unreadTimers) clearTimeout(timer);
  unreadTimers = UNREAD_AFTER_EVENT_MS.map((ms) => setTimeout(refreshUnread, ms));
}

export async function markRead(body) {
  const { data } = await api("POST", `/users/${encodeURIComponent(state.session.user.user_id)}/notifications/read`, { body });
  setUnread(data.unread);
  return data;
}
