// The session: tokens live in sessionStorage (per tab); state.session is the copy the page reads.
import { state } from "./state.js";

const SESSION_KEY = "livedrop.session";
// Where to go once logged in, when a page that needs a login sent the user to the login form.
export const AFTER_LOGIN_KEY = "livedrop.after-login";

function readSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
  } catch {
    return null;
  }
}

/** Picks up the session this tab already had (a reload keeps the user logged in). */
export function restoreSession() {
  state.session = readSession();
  return state.session;
}

export function saveSession(next) {
  state.session = next;
  if (next) sessionStorage.setItem(SESSION_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(SESSION_KEY);
}

/** Whether `creatorId` is the signed-in user's own creator profile. */
export function isMine(creatorId) {
  const session = state.session;
  return Boolean(session && session.user && session.user.creator_id && session.user.creator_id === creatorId);
}
