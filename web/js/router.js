// Routing: the #hash names the view; render() swaps it in and runs the last view's clean-ups.
import { $, $$ } from "./dom.js";
import { AFTER_LOGIN_KEY } from "./session.js";
import { state } from "./state.js";

let views = {}; // route name -> view(main); main.js registers them (views import this module)
const NEEDS_LOGIN = new Set(["following", "orders", "inbox", "studio", "settings"]);
let viewCleanup = [];

export function registerViews(table) {
  views = table;
}

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const name = parts[0] || "drops";
  return { name, id: parts[1] || null };
}

export function render() {
  for (const cleanup of viewCleanup) cleanup();
  viewCleanup = [];
  state.route = parseRoute();
  if (!views[state.route.name]) state.route = { name: "drops" };
  if (NEEDS_LOGIN.has(state.route.name) && !state.session) {
    sessionStorage.setItem(AFTER_LOGIN_KEY, location.hash);
    state.route = { name: "login" };
  }
  const route = state.route;
  for (const link of $$("[data-nav]")) {
    if (link.dataset.nav === route.name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const main = $("#main");
  main.replaceChildren();
  main.dataset.view = route.name;
  views[route.name](main);
  const heading = $("h1", main);
  if (heading && document.activeElement && document.activeElement !== document.body) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

/** The header: what shows logged in or out, and who is logged in. */
export function renderChrome() {
  const session = state.session;
  for (const item of $$("[data-when]")) item.hidden = (item.dataset.when === "in") !== Boolean(session);
  $('[data-testid="current-user"]').textContent = session && session.user ? session.user.name || session.user.email : "";
}

/** Runs `cleanup` when the view on screen is left (its timers, subscriptions). */
export function onLeave(cleanup) {
  viewCleanup.push(cleanup);
}
