// LiveDrop web page: plain ES modules, no build step. Talks only to the REST + WebSocket API of
// docs/api.md. This module wires the others together and starts the page.
import { $ } from "./dom.js";
import { describeError, loadConfig, whenSessionExpires } from "./api.js";
import { expireSession, loadMe, logOut } from "./account.js";
import { onEvent, onReconnected } from "./frames.js";
import { markSubscribed, refreshDropViews } from "./refresh.js";
import { registerViews, render, renderChrome } from "./router.js";
import { restoreSession, saveSession } from "./session.js";
import { live } from "./socket.js";
import { state } from "./state.js";
import { fetchDrop } from "./store.js";
import { watchOwnDrops } from "./ownwatch.js";
import { placeToasts, toast } from "./toasts.js";
import { UNREAD_POLL_MS, refreshUnread } from "./unread.js";
import { viewAuth } from "./views/auth.js";
import { viewCreator, viewFollowing } from "./views/creators.js";
import { viewDrop } from "./views/drop.js";
import { viewDrops } from "./views/drops.js";
import { viewInbox } from "./views/inbox.js";
import { viewOrders } from "./views/orders.js";
import { viewSettings } from "./views/settings.js";
import { viewStudio } from "./views/studio.js";

const VIEWS = {
  login: viewAuth,
  signup: viewAuth,
  drops: viewDrops,
  drop: viewDrop,
  creator: viewCreator,
  following: viewFollowing,
  orders: viewOrders,
  inbox: viewInbox,
  studio: viewStudio,
  settings: viewSettings,
};

async function main() {
  restoreSession();
  registerViews(VIEWS);
  whenSessionExpires(expireSession);
  live.wire({ reconnected: onReconnected, subscriptionsChanged: markSubscribed, event: onEvent });
  await loadConfig();
  $('[data-testid="logout"]').addEventListener("click", logOut);
  if (state.session) {
    try {
      await loadMe();
      live.open();
      refreshUnread();
      watchOwnDrops();
    } catch (error) {
      if (error.code === "unauthorized" || !state.session?.user) saveSession(null);
      if (error.code !== "unauthorized") toast("error", "Couldn't load your account", describeError(error));
    }
  }
  renderChrome();
  window.addEventListener("hashchange", render);
  document.addEventListener("visibilitychange", () => {
    const route = state.route;
    if (document.visibilityState === "visible" && route.name === "drop" && route.id) fetchDrop(route.id).then(() => refreshDropViews(route.id), () => {});
  });
  render();
  setInterval(() => document.visibilityState === "visible" && refreshUnread(), UNREAD_POLL_MS);
  new MutationObserver(placeToasts).observe($('[data-testid="toasts"]'), { childList: true });
  for (const event of ["scroll", "resize"]) window.addEventListener(event, placeToasts, { passive: true });
  document.documentElement.dataset.ready = "true";
}

main();
