// Logging in and out, and the session running out.
import { ERROR_TEXT, api } from "./api.js";
import { go, renderChrome } from "./router.js";
import { AFTER_LOGIN_KEY, saveSession } from "./session.js";
import { live } from "./socket.js";
import { clearUserState, state } from "./state.js";
import { forgetOwnDrops, watchOwnDrops } from "./ownwatch.js";
import { toast } from "./toasts.js";
import { refreshUnread, setUnread } from "./unread.js";

export async function logIn(email, password) {
  const { data } = await api("POST", "/auth/login", { body: { email, password }, auth: false });
  saveSession({ id_token: data.id_token, access_token: data.access_token, refresh_token: data.refresh_token, user: null });
  try {
    await loadMe();
  } catch (error) {
    saveSession(null);
    throw error;
  }
  live.open();
  refreshUnread();
  watchOwnDrops();
  const next = sessionStorage.getItem(AFTER_LOGIN_KEY) || "#/drops";
  sessionStorage.removeItem(AFTER_LOGIN_KEY);
  go(next);
}

export async function loadMe() {
  const { data } = await api("GET", "/me");
  saveSession({ ...state.session, user: data });
  renderChrome();
  return data;
}

export function logOut() {
  live.close();
  saveSession(null);
  clearUserState();
  forgetOwnDrops();
  setUnread(0);
  renderChrome();
  go("#/login");
}

export function expireSession() {
  if (!state.session) return;
  saveSession(null);
  clearUserState();
  forgetOwnDrops();
  live.close();
  renderChrome();
  toast("error", "Session expired", ERROR_TEXT.unauthorized);
  go("#/login");
}
