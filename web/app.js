// LiveDrop web page: plain ES module, no build step. Talks only to the REST + WebSocket API of docs/api.md.

// --- small DOM helpers ------------------------------------------------------------------------
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** h("tag.class", {attrs}, ...children): builds elements without ever parsing API text as HTML. */
function h(spec, attrs = {}, ...children) {
  if (attrs instanceof Node || Array.isArray(attrs) || typeof attrs !== "object" || attrs === null) {
    children.unshift(attrs); // no attributes: the second argument is already a child
    attrs = {};
  }
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "testid") el.dataset.testid = value;
    else if (name === "text") el.textContent = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** parent.append(...children) for children that may be absent (append itself would write "null"). */
function put(parent, ...children) {
  parent.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return parent;
}

// --- configuration: where the WebSocket lives --------------------------------------------------
// 1. ?ws=<url> on the page's address wins (handy when the page is hosted elsewhere);
// 2. else config.json next to this page ({"ws_url": ..., "api_url"?: ...}), which the dev stack serves;
// 3. else a guess: the REST port + 1 on the same host (the dev stack's default 8000/8001).
const config = { apiUrl: "", wsUrl: "" };

async function loadConfig() {
  const params = new URLSearchParams(location.search);
  let file = {};
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) file = await response.json();
  } catch {
    file = {};
  }
  config.apiUrl = (params.get("api") || file.api_url || "").replace(/\/$/, "");
  const guess = `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname}:${Number(location.port || 80) + 1}/notifications`;
  config.wsUrl = params.get("ws") || file.ws_url || guess;
}

// --- session: tokens live in sessionStorage (per tab) ------------------------------------------
const SESSION_KEY = "livedrop.session";
let session = readSession();

function readSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
  } catch {
    return null;
  }
}

function saveSession(next) {
  session = next;
  if (next) sessionStorage.setItem(SESSION_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(SESSION_KEY);
}

// --- errors: every API code gets a sentence ------------------------------------------------------
const ERROR_TEXT = {
  sold_out: "Sold out: there is nothing left in this drop.",
  insufficient_stock: "There isn't that much left. Try a smaller quantity.",
  purchase_limit_exceeded: "That would take you over the per-person limit for this drop.",
  drop_not_started: "This drop hasn't started yet. Hang on until the countdown ends.",
  drop_ended: "This drop has ended.",
  drop_not_found: "That drop doesn't exist (any more).",
  idempotency_key_reused: "That purchase attempt was already used for a different order. Press Buy again to start afresh.",
  missing_idempotency_key: "The purchase was sent without its safety key. Press Buy again.",
  try_again: "It's very busy right now. Please try again in a moment.",
  invalid_request: "Please check what you entered.",
  invalid_page: "That list page has expired. Reload the list.",
  unauthorized: "Your session has expired. Please log in again.",
  invalid_credentials: "Wrong email or password.",
  forbidden: "You're not allowed to do that.",
  not_found: "Not found.",
  user_not_found: "That user doesn't exist.",
  creator_not_found: "That creator doesn't exist.",
  product_not_found: "That product doesn't exist.",
  order_not_found: "That order doesn't exist.",
  user_exists: "There's already an account with this email. Log in instead.",
  already_creator: "You already have a creator profile.",
  conflict: "That clashes with the current state. Reload and try again.",
  payment_provider_error: "The payment provider isn't answering. Please try again shortly.",
  network: "Can't reach LiveDrop. Check your connection and try again.",
  server_error: "Something went wrong on our side. Please try again.",
};

class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.apiMessage = message || "";
    this.retryAfter = retryAfter;
  }
}

/** The sentence to show for an error; invalid_request carries the server's message (it names the field). */
function describeError(error) {
  if (!(error instanceof ApiError)) return ERROR_TEXT.network;
  if (error.code === "invalid_request" && error.apiMessage) return `Please check the form: ${error.apiMessage}.`;
  if (error.code === "try_again" && error.retryAfter) {
    return `It's very busy right now. Please try again in ${error.retryAfter} s.`;
  }
  return ERROR_TEXT[error.code] || error.apiMessage || ERROR_TEXT.server_error;
}

// --- REST client ----------------------------------------------------------------------------------
let clockOffsetMs = 0; // server clock minus ours, from the Date header (only trusted when > 1.5 s off)
const now = () => Date.now() + clockOffsetMs;

async function api(method, path, { body, headers = {}, auth = true, retry401 = true } = {}) {
  const request = { method, headers: { ...headers }, cache: "no-cache" };
  if (body !== undefined) {
    request.headers["Content-Type"] = "application/json";
    request.body = JSON.stringify(body);
  }
  if (auth && session) request.headers.Authorization = `Bearer ${session.id_token}`;
  let response;
  try {
    response = await fetch(config.apiUrl + path, request);
  } catch {
    throw new ApiError(0, "network", ERROR_TEXT.network);
  }
  const date = Date.parse(response.headers.get("Date") || "");
  if (!Number.isNaN(date) && Math.abs(date - Date.now()) > 1500) clockOffsetMs = date - Date.now();
  if (response.status === 401 && auth && session && retry401) {
    const refreshed = await refreshTokens();
    if (refreshed) return api(method, path, { body, headers, auth, retry401: false });
    if (refreshed === false) expireSession(); // null: the refresh itself could not get through
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const envelope = data && data.error;
    const code = envelope ? envelope.code : response.status === 401 ? "unauthorized" : response.status === 403 ? "forbidden" : response.status === 404 ? "not_found" : "server_error";
    throw new ApiError(response.status, code, envelope ? envelope.message : "", response.headers.get("Retry-After"));
  }
  return { status: response.status, data, headers: response.headers };
}

let refreshing = null;
/** POST /auth/refresh once for all callers that saw a 401 at the same time.
 * Resolves true (new tokens), false (the refresh token was refused) or null (couldn't ask). */
function refreshTokens() {
  if (!session || !session.refresh_token) return Promise.resolve(false);
  refreshing ??= (async () => {
    try {
      const { data } = await api("POST", "/auth/refresh", { body: { refresh_token: session.refresh_token }, auth: false });
      saveSession({ ...session, id_token: data.id_token, access_token: data.access_token });
      return true;
    } catch (error) {
      return error.status === 0 || error.status >= 500 ? null : false;
    } finally {
      setTimeout(() => (refreshing = null), 0);
    }
  })();
  return refreshing;
}

function expireSession() {
  if (!session) return;
  saveSession(null);
  live.close();
  renderChrome();
  toast("error", "Session expired", ERROR_TEXT.unauthorized);
  go("#/login");
}

// --- caches of things that never change (products, creators' names) -------------------------------
const products = new Map();
const creators = new Map();
const drops = new Map(); // drop_id -> latest drop we know

async function product(id) {
  if (!products.has(id)) products.set(id, api("GET", `/products/${encodeURIComponent(id)}`, { auth: false }).then((r) => r.data));
  try {
    return await products.get(id);
  } catch (error) {
    products.delete(id);
    throw error;
  }
}

async function creator(id, fresh = false) {
  if (fresh || !creators.has(id)) creators.set(id, api("GET", `/creators/${encodeURIComponent(id)}`, { auth: false }).then((r) => r.data));
  try {
    return await creators.get(id);
  } catch (error) {
    creators.delete(id);
    throw error;
  }
}

async function fetchDrop(id) {
  const { data } = await api("GET", `/drops/${encodeURIComponent(id)}`, { auth: false });
  return rememberDrop(data);
}

function rememberDrop(drop) {
  const known = drops.get(drop.drop_id);
  // A frame newer than this read may already have moved the stock; keep the freshest stock we saw.
  if (known && known._stockAt && known._stockAt > now() - 1500) drop = { ...drop, stock: known.stock, _stockAt: known._stockAt };
  drops.set(drop.drop_id, drop);
  return drop;
}

/** The status as the API derives it: from the clock and the stock. */
function statusOf(drop) {
  const t = now();
  if (t < Date.parse(drop.start_time)) return "scheduled";
  if (t >= Date.parse(drop.end_time)) return "ended";
  if (drop.stock <= 0) return "sold_out";
  return "live";
}

// --- formatting ---------------------------------------------------------------------------------------
const STATUS_LABEL = { scheduled: "Upcoming", live: "Live", sold_out: "Sold out", ended: "Ended" };
const ORDER_LABEL = {
  pending_payment: "Payment pending…",
  confirmed: "Confirmed",
  payment_failed: "Payment failed",
  expired: "Expired",
};
const ORDER_NOTE = {
  pending_payment: "We're charging your card. This usually takes a second or two.",
  confirmed: "Paid. It's yours!",
  payment_failed: "The card was declined. You weren't charged and the item went back on sale.",
  expired: "Payment didn't complete in time. You weren't charged and the item went back on sale.",
};
const TERMINAL = new Set(["confirmed", "payment_failed", "expired"]);

function money(cents, currency = "USD") {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

function countdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(total / 86400);
  const hh = String(Math.floor((total % 86400) / 3600)).padStart(2, "0");
  const mm = String(Math.floor((total % 3600) / 60)).padStart(2, "0");
  const ss = String(total % 60).padStart(2, "0");
  return d ? `${d}d ${hh}:${mm}:${ss}` : `${hh}:${mm}:${ss}`;
}

const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// --- toasts -------------------------------------------------------------------------------------------
function toast(type, title, text = "", link = null) {
  const box = $('[data-testid="toasts"]');
  const item = h(
    "div.toast",
    { testid: "toast", "data-type": type, class: `toast toast-${type}` },
    h("strong", { text: title }),
    text ? h("p", { text }) : null,
    link ? h("a", { href: link.href, testid: "toast-link", onclick: () => item.remove() }, link.text) : null,
    h("button.close", { type: "button", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"),
  );
  box.prepend(item);
  while (box.children.length > 4) box.lastElementChild.remove();
  setTimeout(() => item.remove(), type === "error" ? 12000 : 9000);
  placeToasts();
}

const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

/** Keep the toasts off every visible [data-keep-clear] element (the Buy button): at the bottom if that
 * leaves it clear, else at the top under the header, else only the newest toast, compact. */
function placeToasts() {
  const box = $('[data-testid="toasts"]');
  const header = $(".site-header").getBoundingClientRect();
  box.style.setProperty("--toasts-top", `${Math.max(0, header.bottom) + 8}px`);
  const keep = $$("[data-keep-clear]").map((el) => el.getBoundingClientRect()).filter((r) => r.width && r.height);
  const clear = () => !keep.some((r) => [...box.children].some((t) => overlap(t.getBoundingClientRect(), r)));
  box.classList.remove("compact");
  for (const dock of ["bottom", "top"]) {
    box.dataset.dock = dock;
    if (clear()) return;
  }
  box.classList.add("compact");
  for (const dock of ["bottom", "top"]) {
    box.dataset.dock = dock;
    if (clear()) return;
  }
  box.dataset.dock = "parked"; // no room anywhere (a tiny window): out of the way until a scroll makes room
}

// --- the WebSocket: notifications and live stock -----------------------------------------------------------
class Live {
  constructor() {
    this.socket = null;
    this.subscriptions = new Set(); // drop ids we want frames of, re-sent after every reconnect
    this.confirmed = new Set(); // drop ids the server said "subscribed" to on this socket
    this.attempt = 0;
    this.timer = null;
    this.pinger = null;
    this.wanted = false;
  }

  open() {
    this.wanted = true;
    if (!session || (this.socket && this.socket.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this.timer);
    this.state("connecting");
    const socket = new WebSocket(`${config.wsUrl}?token=${encodeURIComponent(session.id_token)}`);
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.confirmed.clear();
      this.state("open");
      for (const dropId of this.subscriptions) this.send({ action: "subscribe", drop_id: dropId });
      this.pinger = setInterval(() => this.send({ action: "ping" }), 4 * 60 * 1000); // idle limit is 10 min
      onReconnected();
    };
    socket.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.received(frame);
    };
    socket.onclose = async () => {
      clearInterval(this.pinger);
      if (this.socket !== socket) return;
      this.socket = null;
      this.confirmed.clear();
      markSubscribed();
      if (!this.wanted || !session) return this.state("off");
      this.state("closed");
      // A refused handshake is most likely an expired id token: refresh it before trying again.
      if (!opened && (await refreshTokens()) === false) return expireSession();
      const delay = Math.min(30000, 500 * 2 ** this.attempt++) * (0.75 + Math.random() / 2);
      this.timer = setTimeout(() => this.open(), delay);
    };
  }

  close() {
    this.wanted = false;
    clearTimeout(this.timer);
    this.subscriptions.clear();
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000, "bye");
    }
    this.state("off");
  }

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  subscribe(dropId) {
    this.subscriptions.add(dropId);
    this.send({ action: "subscribe", drop_id: dropId });
  }

  unsubscribe(dropId) {
    if (!this.subscriptions.delete(dropId)) return;
    this.confirmed.delete(dropId);
    this.send({ action: "unsubscribe", drop_id: dropId });
  }

  state(name) {
    const badge = $('[data-testid="ws-status"]');
    badge.dataset.state = name;
    $(".ws-label", badge).textContent = { open: "live", connecting: "connecting…", closed: "reconnecting…", off: "offline" }[name];
  }

  received(frame) {
    if (frame.type === "subscribed") {
      this.confirmed.add(frame.drop_id);
      markSubscribed();
    } else if (frame.type === "unsubscribed" || frame.type === "pong") {
      // nothing to do
    } else if (frame.type === "error") {
      console.warn("LiveDrop WebSocket error frame", frame);
    } else if (frame.data) {
      onEvent(frame);
    }
  }
}
const live = new Live();

// --- what each server frame does ------------------------------------------------------------------------------
const seenEvents = new Set();

async function onEvent(frame) {
  if (frame.event_id) {
    if (seenEvents.has(frame.event_id)) return; // at-least-once delivery: show each event once
    seenEvents.add(frame.event_id);
  }
  const data = frame.data || {};
  const dropId = data.drop_id;
  const known = dropId ? drops.get(dropId) : null;
  const at = Date.parse(frame.occurred_at || "") || now();

  if (typeof data.stock === "number" && known && (!known._stockAt || at >= known._stockAt)) {
    drops.set(dropId, { ...known, stock: data.stock, _stockAt: at });
    refreshDropViews(dropId);
  }
  if (dropId && salesViews.has(dropId)) salesViews.get(dropId)();
  if (frame.type !== "stock_changed") unreadSoon();

  const name = async () => {
    try {
      const drop = known || (await fetchDrop(dropId));
      return (await product(drop.product_id)).name;
    } catch {
      return "A drop";
    }
  };
  const link = dropId ? { href: `#/drop/${encodeURIComponent(dropId)}`, text: "Open drop" } : null;
  switch (frame.type) {
    case "drop_started":
      if (isMine(data.creator_id || known?.creator_id)) toast("drop_started", `${await name()} is live now!`, "Your drop just started: buyers can order now.", link);
      else toast("drop_started", `${await name()} is live now!`, "It just started: order before it's gone.", link);
      if (dropId) fetchDrop(dropId).then(() => refreshDropViews(dropId), () => {});
      break;
    case "stock_low":
      if (known) refreshDropViews(dropId);
      break;
    case "sold_out":
      if (known) drops.set(dropId, { ...drops.get(dropId), stock: 0, _stockAt: at });
      refreshDropViews(dropId);
      toast("sold_out", `${await name()} sold out`, "Every item in this drop has been taken.", link);
      break;
    case "drop_ended":
      if (dropId) fetchDrop(dropId).then(() => refreshDropViews(dropId), () => {});
      toast("drop_ended", `${await name()} has ended`, "", link);
      break;
    case "order_confirmed":
    case "order_failed":
    case "order_expired": {
      const title = { order_confirmed: "Order confirmed", order_failed: "Payment failed", order_expired: "Order expired" }[frame.type];
      const note = { order_confirmed: ORDER_NOTE.confirmed, order_failed: ORDER_NOTE.payment_failed, order_expired: ORDER_NOTE.expired }[frame.type];
      toast(frame.type, title, note, link);
      if (data.order_id) refreshOrder(data.order_id);
      break;
    }
    default:
      break;
  }
}

// --- the inbox badge: the server's unread count, the same number the inbox page shows -----------------------
const UNREAD_POLL_MS = 30000;
// An event is pushed at once; its inbox row is written a moment later (after the pushes): look again then.
const UNREAD_AFTER_EVENT_MS = [2500, 6000];
let unreadTimers = [];

function setUnread(count) {
  const badge = $('[data-testid="inbox-badge"]');
  badge.hidden = !count;
  badge.textContent = String(count);
  badge.setAttribute("aria-label", `${count} unread`);
  const line = $('[data-testid="inbox-unread"]');
  if (line) line.textContent = count ? `${count} unread` : "All read";
}

async function refreshUnread() {
  if (!session || !session.user) return;
  try {
    const { data } = await api("GET", `/users/${encodeURIComponent(session.user.user_id)}/notifications?limit=1`);
    setUnread(data.unread);
  } catch {
    // the badge is a hint; the inbox page shows the real list
  }
}

function unreadSoon() {
  for (const timer of unreadTimers) clearTimeout(timer);
  unreadTimers = UNREAD_AFTER_EVENT_MS.map((ms) => setTimeout(refreshUnread, ms));
}

async function markRead(body) {
  const { data } = await api("POST", `/users/${encodeURIComponent(session.user.user_id)}/notifications/read`, { body });
  setUnread(data.unread);
  return data;
}

/** After a reconnect we may have missed frames: re-read what is on screen. */
function onReconnected() {
  refreshUnread();
  for (const dropId of live.subscriptions) fetchDrop(dropId).then(() => refreshDropViews(dropId), () => {});
  for (const [id, order] of orders) if (!TERMINAL.has(order.status)) refreshOrder(id);
}

// --- orders: pending -> confirmed / payment_failed / expired -------------------------------------------------------
const orders = new Map(); // order_id -> order, the ones this tab placed or looked at
const polls = new Map();

function trackOrder(order) {
  orders.set(order.order_id, order);
  renderOrders();
  if (!TERMINAL.has(order.status)) schedulePoll(order.order_id, 1500);
}

/** Fallback for a lost frame: poll GET /orders/{id} with back-off until the order settles. */
function schedulePoll(orderId, delay) {
  if (polls.has(orderId)) return;
  polls.set(orderId, setTimeout(async () => {
    polls.delete(orderId);
    const order = await refreshOrder(orderId);
    if (order && !TERMINAL.has(order.status)) schedulePoll(orderId, Math.min(delay * 1.5, 10000));
  }, delay));
}

async function refreshOrder(orderId) {
  try {
    const { data } = await api("GET", `/orders/${encodeURIComponent(orderId)}`);
    const before = orders.get(orderId);
    orders.set(orderId, data);
    if (before && before.status !== data.status) fetchDrop(data.drop_id).then(() => refreshDropViews(data.drop_id), () => {});
    renderOrders();
    return data;
  } catch {
    return orders.get(orderId) || null;
  }
}

function orderRow(order) {
  return h(
    "li.order",
    { testid: "order", "data-order-id": order.order_id, "data-status": order.status },
    h("div.order-head",
      h("span.order-id", { text: `Order ${order.order_id.slice(-8)}` }),
      h(`span.pill.order-${order.status}`, { testid: "order-status", "data-status": order.status, text: ORDER_LABEL[order.status] || order.status }),
    ),
    h("p.muted", { text: `${order.quantity} × · ${money(order.amount_cents, order.currency)} · ${when(order.created_at)}` }),
    h("p.order-note", { text: ORDER_NOTE[order.status] || "" }),
  );
}

function renderOrders() {
  const list = $('[data-testid="drop-orders"]');
  if (!list || !route.id) return;
  const mine = [...orders.values()].filter((o) => o.drop_id === route.id).sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  list.replaceChildren(...mine.map(orderRow));
  list.closest("section").hidden = mine.length === 0;
}

// --- routing ---------------------------------------------------------------------------------------------
let route = { name: "drops" };
let viewCleanup = [];

function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const name = parts[0] || "drops";
  return { name, id: parts[1] || null };
}

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
};
const NEEDS_LOGIN = new Set(["following", "orders", "inbox", "studio"]);

function render() {
  for (const cleanup of viewCleanup) cleanup();
  viewCleanup = [];
  route = parseRoute();
  if (!VIEWS[route.name]) route = { name: "drops" };
  if (NEEDS_LOGIN.has(route.name) && !session) {
    sessionStorage.setItem("livedrop.after-login", location.hash);
    route = { name: "login" };
  }
  for (const link of $$("[data-nav]")) {
    if (link.dataset.nav === route.name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const main = $("#main");
  main.replaceChildren();
  main.dataset.view = route.name;
  VIEWS[route.name](main);
  const heading = $("h1", main);
  if (heading && document.activeElement && document.activeElement !== document.body) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

function renderChrome() {
  for (const item of $$("[data-when]")) item.hidden = (item.dataset.when === "in") !== Boolean(session);
  $('[data-testid="current-user"]').textContent = session && session.user ? session.user.name || session.user.email : "";
}

function onLeave(cleanup) {
  viewCleanup.push(cleanup);
}

function errorBox(testid = "error") {
  return h("p.error", { testid, role: "alert", hidden: true });
}

function showError(box, error) {
  box.textContent = typeof error === "string" ? error : describeError(error);
  box.dataset.code = error instanceof ApiError ? error.code : "";
  box.hidden = false;
}

function clearError(box) {
  box.hidden = true;
  box.textContent = "";
  delete box.dataset.code;
}

function field(label, input, hint = null) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div.field", h("label", { for: id, text: label }), input, hint ? h("small.muted", { text: hint }) : null);
}

/** Wire a form: disables its button while `action` runs, shows any error in its alert box. */
function handle(form, action) {
  const box = $(".error", form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = $('button[type="submit"]', form);
    clearError(box);
    button.disabled = true;
    try {
      await action(new FormData(form));
    } catch (error) {
      showError(box, error);
    } finally {
      button.disabled = false;
    }
  });
}

// --- views: log in / sign up -----------------------------------------------------------------------------------
function viewAuth(main) {
  const signup = route.name === "signup";
  const form = h(
    "form.card.narrow",
    { testid: signup ? "signup-form" : "login-form", novalidate: true },
    h("h1", { text: signup ? "Create your account" : "Log in" }),
    signup ? field("Name", h("input", { name: "name", required: true, autocomplete: "name", testid: "signup-name" })) : null,
    field("Email", h("input", { name: "email", type: "email", required: true, autocomplete: "email", testid: "auth-email" })),
    field(
      "Password",
      h("input", { name: "password", type: "password", required: true, autocomplete: signup ? "new-password" : "current-password", testid: "auth-password" }),
      signup ? "At least 8 characters with upper- and lower-case letters, a digit and a symbol." : null,
    ),
    errorBox("auth-error"),
    h("button.primary", { type: "submit", testid: "auth-submit" }, signup ? "Sign up" : "Log in"),
    h("p.muted",
      signup ? "Already have an account? " : "New here? ",
      h("a", { href: signup ? "#/login" : "#/signup", testid: signup ? "to-login" : "to-signup" }, signup ? "Log in" : "Create an account")),
  );
  handle(form, async (values) => {
    const email = String(values.get("email")).trim();
    const password = String(values.get("password"));
    if (!email || !password || (signup && !String(values.get("name")).trim())) throw "Please fill in every field.";
    if (signup) await api("POST", "/auth/signup", { body: { email, password, name: String(values.get("name")).trim() }, auth: false });
    await logIn(email, password);
  });
  main.append(form);
}

async function logIn(email, password) {
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
  const next = sessionStorage.getItem("livedrop.after-login") || "#/drops";
  sessionStorage.removeItem("livedrop.after-login");
  go(next);
}

async function loadMe() {
  const { data } = await api("GET", "/me");
  saveSession({ ...session, user: data });
  renderChrome();
  return data;
}

// --- views: the drops list ------------------------------------------------------------------------------------
const FILTERS = [
  ["", "All"],
  ["live", "Live"],
  ["scheduled", "Upcoming"],
  ["sold_out", "Sold out"],
  ["ended", "Ended"],
];
let dropFilter = "";

function viewDrops(main) {
  const list = h("ul.drops", { testid: "drop-list", "aria-live": "off" });
  const more = h("button.secondary", { type: "button", testid: "drops-more", hidden: true }, "Show more");
  const box = errorBox("drops-error");
  const empty = h("p.muted", { testid: "drops-empty", hidden: true, text: "No drops here yet." });
  const tabs = h("div.filters", { role: "group", "aria-label": "Filter drops" },
    FILTERS.map(([value, label]) =>
      h("button.chip", {
        type: "button",
        "aria-pressed": String(dropFilter === value),
        testid: `filter-${value || "all"}`,
        onclick: () => {
          dropFilter = value;
          render();
        },
      }, label)));
  const hint = session ? null : h("p.hint", { testid: "drops-hint" },
    h("a", { href: "#/login" }, "Log in"), " or ", h("a", { href: "#/signup" }, "sign up"),
    " to follow creators, get a ping the second a drop goes live, and buy.");
  put(main, h("div.view-head", h("h1", { text: "Drops" }), tabs), hint, box, list, empty, more);
  let page = null;
  const load = async () => {
    clearError(box);
    more.disabled = true;
    try {
      const params = new URLSearchParams({ limit: "24" });
      if (dropFilter) params.set("status", dropFilter);
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

function dropCard(drop) {
  const card = h("li.drop-card", { testid: "drop-card", "data-drop-id": drop.drop_id },
    h("a.cover", { href: `#/drop/${encodeURIComponent(drop.drop_id)}` },
      h("span.drop-name", { testid: "drop-name", text: "…" }),
      h("span.creator-name.muted", { text: "" })),
    h("div.meta",
      h("span.pill", { testid: "drop-status" }),
      h("span.price", { text: money(drop.price_cents, drop.currency) })),
    h("p.when", { testid: "drop-when" }));
  product(drop.product_id).then((p) => ($(".drop-name", card).textContent = p.name), () => ($(".drop-name", card).textContent = "Unknown product"));
  creator(drop.creator_id).then((c) => ($(".creator-name", card).textContent = `by ${c.name}`), () => {});
  updateCard(card);
  return card;
}

function updateCard(card) {
  const drop = drops.get(card.dataset.dropId);
  if (!drop) return;
  const status = statusOf(drop);
  const pill = $('[data-testid="drop-status"]', card);
  pill.dataset.status = status;
  pill.className = `pill status-${status}`;
  pill.textContent = STATUS_LABEL[status];
  const line = $('[data-testid="drop-when"]', card);
  if (status === "scheduled") line.textContent = `Starts in ${countdown(Date.parse(drop.start_time) - now())}`;
  else if (status === "live") line.textContent = `${drop.stock} of ${drop.initial_stock} left · ends in ${countdown(Date.parse(drop.end_time) - now())}`;
  else if (status === "sold_out") line.textContent = `All ${drop.initial_stock} gone`;
  else line.textContent = `Ended ${when(drop.end_time)}`;
}

// --- views: one drop, live -----------------------------------------------------------------------------------
function viewDrop(main) {
  const dropId = route.id;
  const box = errorBox("drop-error");
  main.append(h("p.muted", { testid: "drop-loading", text: "Loading drop…" }), box);
  if (session) live.subscribe(dropId);
  onLeave(() => live.unsubscribe(dropId));
  fetchDrop(dropId).then(
    async (drop) => {
      if (route.name !== "drop" || route.id !== dropId) return;
      let item = null;
      let maker = null;
      try {
        [item, maker] = await Promise.all([product(drop.product_id), creator(drop.creator_id)]);
      } catch {
        item = item || { name: "Unknown product", description: "" };
      }
      if (route.name !== "drop" || route.id !== dropId) return;
      $('[data-testid="drop-loading"]', main)?.remove();
      main.append(dropDetail(drops.get(dropId), item, maker));
      refreshDropViews(dropId);
      markSubscribed();
      renderOrders();
      if (session) loadMyOrdersFor(dropId);
    },
    (error) => {
      $('[data-testid="drop-loading"]', main)?.remove();
      showError(box, error);
    },
  );
  const ticker = setInterval(() => refreshDropViews(dropId), 1000);
  onLeave(() => clearInterval(ticker));
}

async function loadMyOrdersFor(dropId) {
  try {
    const { data } = await api("GET", `/users/${encodeURIComponent(session.user.user_id)}/orders?limit=50`);
    for (const order of data.items) if (order.drop_id === dropId && !orders.has(order.order_id)) trackOrder(order);
  } catch {
    // the list is a convenience; the buy box works without it
  }
}

/** Whether `creatorId` is the signed-in user's own creator profile. */
function isMine(creatorId) {
  return Boolean(session && session.user && session.user.creator_id && session.user.creator_id === creatorId);
}

function dropDetail(drop, item, maker) {
  const mine = isMine(drop.creator_id);
  const limit = drop.per_user_limit || 10;
  const quantity = h("select", { name: "quantity", testid: "buy-quantity" },
    Array.from({ length: Math.min(limit, 10) }, (_, i) => h("option", { value: i + 1 }, String(i + 1))));
  const cards = h("fieldset.cards", { testid: "buy-card" },
    h("legend", { text: "Test card" }),
    [
      ["tok_visa", "Visa (succeeds)"],
      ["tok_chargeDeclined", "Declined card"],
      ["tok_processingError", "Processing error (fails twice, then succeeds)"],
    ].map(([value, label], i) =>
      h("label.radio", {}, h("input", { type: "radio", name: "card", value, checked: i === 0, testid: `card-${value}` }), ` ${label}`)));
  const box = errorBox("buy-error");
  const retry = h("button.secondary", { type: "button", testid: "buy-retry", hidden: true }, "Retry the same purchase");
  const buy = h("button.primary.buy", { type: "submit", testid: "buy-button", "data-keep-clear": true }, "Buy now");
  const form = h("form.buy-box", { testid: "buy-form", "aria-labelledby": "buy-title" },
    h("h2", { id: "buy-title", text: "Buy" }),
    field("Quantity", quantity, drop.per_user_limit ? `Up to ${drop.per_user_limit} per person.` : null),
    cards, box,
    h("div.actions", buy, retry),
    h("p.muted", { testid: "buy-progress", role: "status", "aria-live": "polite" }));

  // A purchase attempt keeps its Idempotency-Key for every retry of that same click.
  let attempt = null;
  const progress = $('[data-testid="buy-progress"]', form);
  const send = async (autoRetries = 2) => {
    buy.disabled = true;
    retry.hidden = true;
    clearError(box);
    progress.textContent = "Placing your order…";
    try {
      const { data } = await api("POST", "/orders", { body: attempt.body, headers: { "Idempotency-Key": attempt.key } });
      progress.textContent = "";
      attempt = null;
      trackOrder(data);
    } catch (error) {
      progress.textContent = "";
      const retriable = error.code === "network" || error.code === "try_again" || error.status >= 500;
      if (retriable && autoRetries > 0) {
        const wait = (Number(error.retryAfter) || 1) * 1000 * (0.75 + Math.random() / 2);
        progress.textContent = "Busy, retrying…";
        await new Promise((resolve) => setTimeout(resolve, wait));
        return await send(autoRetries - 1);
      }
      showError(box, error);
      if (retriable) retry.hidden = false;
      else attempt = null;
      if (["sold_out", "drop_ended", "insufficient_stock"].includes(error.code)) fetchDrop(drop.drop_id).then(() => refreshDropViews(drop.drop_id), () => {});
    } finally {
      buy.disabled = false;
      refreshDropViews(drop.drop_id);
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!session) return go("#/login");
    const card = new FormData(form).get("card");
    attempt = { key: newKey(), body: { drop_id: drop.drop_id, quantity: Number(quantity.value), payment_token: card } };
    send();
  });
  retry.addEventListener("click", () => attempt && send(0));

  // On their own drop a creator sees how it sells, not Buy and Follow.
  const followButton = maker && !mine ? followToggle(maker) : null;
  const action = mine
    ? creatorView(drop)
    : session
      ? form
      : h("p.card", h("a", { href: "#/login", testid: "login-to-buy", onclick: () => sessionStorage.setItem("livedrop.after-login", location.hash) }, "Log in"), " to buy and to watch the stock live.");
  return h("article.drop-detail", { testid: "drop-detail", "data-drop-id": drop.drop_id, "data-subscribed": "false" },
    h("div.view-head",
      h("h1", { testid: "drop-title", text: item.name }),
      h("span.pill", { testid: "drop-status" })),
    h("p.byline",
      maker ? h("a", { href: `#/creator/${encodeURIComponent(maker.creator_id)}`, testid: "drop-creator", text: `by ${maker.name}` }) : null,
      followButton),
    item.description ? h("p", { text: item.description }) : null,
    h("div.stats",
      h("div.stat", h("span.label", { text: "Price" }), h("span.value", { testid: "drop-price", text: money(drop.price_cents, drop.currency) })),
      h("div.stat", h("span.label", { text: "Left" }),
        h("span.value", { testid: "drop-stock" },
          h("span", { testid: "drop-stock-count", text: String(drop.stock) }), h("span.muted", { text: ` / ${drop.initial_stock}` }))),
      h("div.stat", h("span.label", { testid: "drop-clock-label", text: "Starts in" }), h("span.value", { testid: "drop-countdown", role: "timer", "aria-live": "off" }))),
    h("div.meter", { role: "progressbar", "aria-label": "Stock left", "aria-valuemin": "0", "aria-valuemax": String(drop.initial_stock), testid: "drop-meter" }, h("span")),
    h("p.low", { testid: "drop-low", hidden: true, text: "Almost gone!" }),
    h("p.muted.live-note", { testid: "drop-live-note" }),
    action,
    h("section.orders-box", { hidden: true, "aria-labelledby": "orders-title" },
      h("h2", { id: "orders-title", text: "Your orders for this drop" }),
      h("ul.orders", { testid: "drop-orders", "aria-live": "polite" })));
}

// --- the creator's view of their own drop ------------------------------------------------------------------
const SALES_STATUSES = [
  ["confirmed", "Paid"],
  ["pending_payment", "Awaiting payment"],
  ["payment_failed", "Payment failed"],
  ["expired", "Expired"],
];
const SALES_REFRESH_MS = 5000;

function creatorView(drop) {
  const stat = (label, testid) => h("div.stat", h("span.label", { text: label }), h("span.value", { testid, text: "…" }));
  const box = errorBox("sales-error");
  const view = h("section.creator-view.card", { testid: "creator-view", "aria-labelledby": "sales-title" },
    h("div.view-head",
      h("h2", { id: "sales-title", text: "Your drop's sales" }),
      h("span.muted", { testid: "sales-updated", role: "status", "aria-live": "off" })),
    box,
    h("div.stats",
      stat("Units sold", "sales-units"),
      stat("Revenue", "sales-revenue"),
      stat("Reserved, unpaid", "sales-reserved")),
    h("h3", { text: "Orders by status" }),
    h("ul.sales-statuses", { testid: "sales-orders" },
      SALES_STATUSES.map(([status, label]) =>
        h("li", { "data-status": status, class: `order-${status}` },
          h("span.count", { testid: `sales-orders-${status}`, text: "…" }), ` ${label}`))),
    h("h3", { text: "Latest orders" }),
    h("ol.rows.recent-orders", { testid: "sales-recent" }));
  let timer = null;
  let stopped = false;
  const load = async () => {
    clearTimeout(timer);
    if (stopped) return;
    try {
      const { data } = await api("GET", `/drops/${encodeURIComponent(drop.drop_id)}/sales`);
      if (stopped) return;
      fillSales(view, data);
      clearError(box);
    } catch (error) {
      showError(box, error);
    }
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(load, SALES_REFRESH_MS);
  };
  salesViews.set(drop.drop_id, () => {
    // A stock change means an order came or went: read the figures again, at most once per half second.
    clearTimeout(timer);
    timer = setTimeout(load, 500);
  });
  onLeave(() => {
    stopped = true;
    clearTimeout(timer);
    salesViews.delete(drop.drop_id);
  });
  load();
  return view;
}
const salesViews = new Map(); // drop_id -> refresh(), for the creator's view on screen

function fillSales(view, data) {
  $('[data-testid="sales-units"]', view).textContent = `${data.units_sold} / ${data.initial_stock}`;
  $('[data-testid="sales-revenue"]', view).textContent = money(data.revenue_cents, data.currency);
  $('[data-testid="sales-reserved"]', view).textContent = String(data.units_reserved);
  for (const [status] of SALES_STATUSES) $(`[data-testid="sales-orders-${status}"]`, view).textContent = String(data.orders[status]);
  const list = $('[data-testid="sales-recent"]', view);
  list.replaceChildren(...data.recent_orders.map((order) =>
    h("li", { testid: "sales-recent-order", "data-status": order.status },
      h("time", { datetime: order.created_at, text: orderTime(order.created_at) }),
      ` · ${order.quantity} × · `,
      h("span", { class: `order-${order.status}`, text: ORDER_LABEL[order.status] || order.status }))));
  if (!data.recent_orders.length) list.append(h("li.muted", { testid: "sales-recent-empty", text: "No orders yet." }));
  // The stock figures come with the sales: keep the live ones on screen at least as fresh.
  const known = drops.get(data.drop_id);
  if (known && !(known._stockAt && known._stockAt > now() - 1500)) drops.set(data.drop_id, { ...known, stock: data.stock });
  $('[data-testid="sales-updated"]', view).textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

function orderTime(iso) {
  const at = new Date(iso);
  const today = at.toDateString() === new Date().toDateString();
  return at.toLocaleString(undefined, today ? { timeStyle: "medium" } : { dateStyle: "medium", timeStyle: "medium" });
}

function markSubscribed() {
  const detail = $('[data-testid="drop-detail"]');
  if (!detail) return;
  const on = live.confirmed.has(detail.dataset.dropId);
  detail.dataset.subscribed = String(on);
  const note = $('[data-testid="drop-live-note"]', detail);
  if (note) note.textContent = on ? "Stock updates live." : session ? "Connecting to live updates…" : "";
}

function refreshDropViews(dropId) {
  for (const card of $$(`[data-testid="drop-card"][data-drop-id="${CSS.escape(dropId)}"]`)) updateCard(card);
  const detail = $(`[data-testid="drop-detail"][data-drop-id="${CSS.escape(dropId)}"]`);
  const drop = drops.get(dropId);
  if (!detail || !drop) return;
  const status = statusOf(drop);
  const pill = $('[data-testid="drop-status"]', detail);
  if (pill.dataset.status !== status) {
    const previous = pill.dataset.status;
    pill.dataset.status = status;
    pill.className = `pill status-${status}`;
    pill.textContent = STATUS_LABEL[status];
    // The clock just crossed a boundary: confirm it with the server (it derives the same status).
    if (previous) setTimeout(() => fetchDrop(dropId).then(() => refreshDropViews(dropId), () => {}), 300);
  }
  $('[data-testid="drop-stock-count"]', detail).textContent = String(Math.max(0, drop.stock));
  const meter = $('[data-testid="drop-meter"]', detail);
  meter.setAttribute("aria-valuenow", String(Math.max(0, drop.stock)));
  $("span", meter).style.width = `${(100 * Math.max(0, drop.stock)) / drop.initial_stock}%`;
  const label = $('[data-testid="drop-clock-label"]', detail);
  const clock = $('[data-testid="drop-countdown"]', detail);
  if (status === "scheduled") {
    label.textContent = "Starts in";
    clock.textContent = countdown(Date.parse(drop.start_time) - now());
  } else if (status === "live" || status === "sold_out") {
    label.textContent = "Ends in";
    clock.textContent = countdown(Date.parse(drop.end_time) - now());
  } else {
    label.textContent = "Ended";
    clock.textContent = when(drop.end_time);
  }
  const low = drop.low_stock_threshold != null && drop.stock > 0 && drop.stock <= drop.low_stock_threshold;
  $('[data-testid="drop-low"]', detail).hidden = !(low && status === "live");
  const buy = $('[data-testid="buy-button"]', detail);
  if (buy) {
    const open = status === "live";
    buy.setAttribute("aria-disabled", String(!open));
    buy.textContent = { scheduled: "Not started yet", live: "Buy now", sold_out: "Sold out", ended: "Drop ended" }[status];
    buy.classList.toggle("inactive", !open);
  }
}

// --- following and creators ------------------------------------------------------------------------------------
function followToggle(maker) {
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

function viewCreator(main) {
  const box = errorBox("creator-error");
  main.append(box);
  creator(route.id, true).then(
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

function viewFollowing(main) {
  const box = errorBox("following-error");
  const list = h("ul.rows", { testid: "following-list" });
  main.append(h("h1", { text: "Following" }), box, list);
  const form = h("form.inline", { testid: "follow-by-id" },
    field("Follow a creator by id", h("input", { name: "creator_id", required: true, testid: "follow-id" })),
    errorBox(), h("button.secondary", { type: "submit" }, "Open"));
  handle(form, async (values) => {
    const id = String(values.get("creator_id")).trim();
    await creator(id, true);
    go(`#/creator/${encodeURIComponent(id)}`);
  });
  main.append(form);
  api("GET", `/users/${encodeURIComponent(session.user.user_id)}/following?limit=100`).then(({ data }) => {
    if (!data.items.length) list.replaceWith(h("p.muted", { testid: "following-empty", text: "You don't follow anyone yet. Open a drop and press Follow to hear when its creator goes live." }));
    for (const row of data.items) {
      list.append(h("li", { testid: "following-row" },
        h("a", { href: `#/creator/${encodeURIComponent(row.creator_id)}`, text: row.name }),
        h("span.muted", { text: ` since ${when(row.followed_at)}` })));
    }
  }, (error) => showError(box, error));
}

// --- orders and inbox ----------------------------------------------------------------------------------------
function viewOrders(main) {
  const box = errorBox("orders-error");
  const list = h("ul.orders", { testid: "orders-list" });
  const more = h("button.secondary", { type: "button", hidden: true }, "Show more");
  main.append(h("h1", { text: "Your orders" }), box, list, more);
  let page = null;
  const load = async () => {
    try {
      const params = new URLSearchParams({ limit: "20" });
      if (page) params.set("page", page);
      const { data } = await api("GET", `/users/${encodeURIComponent(session.user.user_id)}/orders?${params}`);
      for (const order of data.items) {
        orders.set(order.order_id, orders.get(order.order_id) || order);
        const row = orderRow(order);
        row.prepend(h("a", { href: `#/drop/${encodeURIComponent(order.drop_id)}`, text: "Open drop" }));
        list.append(row);
      }
      page = data.next_page;
      more.hidden = !page;
      if (!list.children.length) list.replaceWith(h("p.muted", { text: "No orders yet." }));
    } catch (error) {
      showError(box, error);
    }
  };
  more.addEventListener("click", load);
  load();
}

const INBOX_TEXT = {
  drop_started: "A drop started",
  stock_changed: "Stock changed",
  stock_low: "Almost sold out",
  sold_out: "A drop sold out",
  drop_ended: "A drop ended",
  order_confirmed: "Order confirmed",
  order_failed: "Payment failed",
  order_expired: "Order expired",
};

function viewInbox(main) {
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
      const { data } = await api("GET", `/users/${encodeURIComponent(session.user.user_id)}/notifications?${params}`);
      setUnread(data.unread);
      for (const note of data.items) {
        newest = newest && newest > note.created_at ? newest : note.created_at;
        const row = h("li", { testid: "inbox-item", "data-type": note.type, "data-at": note.created_at, class: note.read ? "read" : "unread" },
          h("strong", { text: INBOX_TEXT[note.type] || note.type }),
          h("span.muted", { text: ` · ${when(note.created_at)}` }),
          note.drop_id ? h("a", { href: `#/drop/${encodeURIComponent(note.drop_id)}`, onclick: () => !note.read && markRead({ notification_id: note.notification_id }).catch(() => {}) }, " Open drop") : null,
          note.read ? null : h("button.link", { type: "button", testid: "inbox-mark-read", onclick: () => readOne(note, row) }, "Mark read"));
        list.append(row);
        if (note.drop_id) {
          fetchDrop(note.drop_id).then((d) => product(d.product_id)).then((p) => $("strong", row).append(`: ${p.name}`), () => {});
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

// --- the creator's studio ----------------------------------------------------------------------------------------
const myProducts = new Map(); // product_id -> product, for the drop form's select
const myDrops = new Map();

function localInput(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function viewStudio(main) {
  main.append(h("h1", { text: "Creator studio" }));
  const me = session.user;
  if (!me.creator_id) {
    const form = h("form.card", { testid: "become-creator-form" },
      h("h2", { text: "Become a creator" }),
      h("p.muted", { text: "A creator profile lets you add products and schedule drops. Your followers hear the second a drop goes live." }),
      field("Studio name", h("input", { name: "name", required: true, testid: "creator-name-input" })),
      field("About", h("textarea", { name: "profile", rows: "2", testid: "creator-profile-input" })),
      errorBox(), h("button.primary", { type: "submit", testid: "become-creator" }, "Become a creator"));
    handle(form, async (values) => {
      await api("POST", "/creators", { body: { name: String(values.get("name")).trim(), profile: String(values.get("profile")).trim() } });
      await loadMe();
      toast("info", "You're a creator now", "Add a product, then schedule its drop.");
      render();
    });
    main.append(form);
    return;
  }
  const head = h("p.muted", { testid: "studio-creator" });
  creator(me.creator_id, true).then((c) => head.replaceChildren(
    h("a", { href: `#/creator/${encodeURIComponent(c.creator_id)}`, text: c.name }), ` · ${c.follower_count} followers · id `,
    h("code", { testid: "studio-creator-id", text: c.creator_id })), () => {});
  main.append(head);

  const productForm = h("form.card", { testid: "product-form" },
    h("h2", { text: "New product" }),
    field("Name", h("input", { name: "name", required: true, testid: "product-name" })),
    field("Description", h("textarea", { name: "description", rows: "2", testid: "product-description" })),
    h("div.row",
      field("Price", h("input", { name: "price", type: "number", min: "0", step: "0.01", required: true, inputmode: "decimal", testid: "product-price" })),
      field("Currency", h("select", { name: "currency", testid: "product-currency" }, ["USD", "EUR", "GBP"].map((c) => h("option", { value: c }, c))))),
    errorBox(), h("button.primary", { type: "submit", testid: "product-submit" }, "Add product"));
  handle(productForm, async (values) => {
    const price = Math.round(Number(values.get("price")) * 100);
    const { data } = await api("POST", `/creators/${encodeURIComponent(me.creator_id)}/products`, {
      body: { name: String(values.get("name")).trim(), description: String(values.get("description")).trim(), price_cents: price, currency: values.get("currency") },
    });
    myProducts.set(data.product_id, data);
    products.set(data.product_id, Promise.resolve(data));
    productForm.reset();
    fillProducts();
    select.value = data.product_id;
    toast("info", "Product added", `${data.name} is ready for a drop.`);
  });

  const select = h("select", { name: "product_id", required: true, testid: "drop-product" });
  const start = h("input", { name: "start", type: "datetime-local", step: "1", required: true, testid: "drop-start", value: localInput(now() + 60000) });
  const end = h("input", { name: "end", type: "datetime-local", step: "1", required: true, testid: "drop-end", value: localInput(now() + 3660000) });
  const dropForm = h("form.card", { testid: "drop-form" },
    h("h2", { text: "Schedule a drop" }),
    field("Product", select),
    h("div.row", field("Starts (your time)", start), field("Ends (your time)", end)),
    h("div.row",
      field("Stock", h("input", { name: "stock", type: "number", min: "1", max: "1000000", value: "50", required: true, testid: "drop-stock-input" })),
      field("Per-person limit", h("input", { name: "per_user_limit", type: "number", min: "1", value: "2", testid: "drop-limit-input" })),
      field("Low-stock alert at", h("input", { name: "low_stock_threshold", type: "number", min: "0", placeholder: "optional", testid: "drop-low-input" }))),
    errorBox(), h("button.primary", { type: "submit", testid: "drop-submit" }, "Schedule drop"));
  handle(dropForm, async (values) => {
    if (!values.get("product_id")) throw "Add a product first, then pick it here.";
    const body = {
      product_id: values.get("product_id"),
      start_time: new Date(String(values.get("start"))).toISOString(),
      end_time: new Date(String(values.get("end"))).toISOString(),
      stock: Number(values.get("stock")),
    };
    if (values.get("per_user_limit")) body.per_user_limit = Number(values.get("per_user_limit"));
    if (values.get("low_stock_threshold")) body.low_stock_threshold = Number(values.get("low_stock_threshold"));
    const { data } = await api("POST", `/creators/${encodeURIComponent(me.creator_id)}/drops`, { body });
    myDrops.set(data.drop_id, rememberDrop(data));
    scheduled.prepend(dropCard(data));
    toast("info", "Drop scheduled", `Starts ${when(data.start_time)}.`, { href: `#/drop/${encodeURIComponent(data.drop_id)}`, text: "Open drop" });
  });

  const scheduled = h("ul.drops", { testid: "studio-drops" });
  main.append(h("div.studio", productForm, dropForm), h("h2", { text: "Your drops" }), scheduled);

  function fillProducts() {
    const chosen = select.value;
    select.replaceChildren(h("option", { value: "" }, "Choose a product…"),
      ...[...myProducts.values()].map((p) => h("option", { value: p.product_id }, `${p.name} (${money(p.price_cents, p.currency)})`)));
    if (chosen) select.value = chosen;
  }
  fillProducts();
  // The API has no "my products" listing: read a few pages of the catalog and keep ours.
  (async () => {
    let page = null;
    for (let i = 0; i < 5; i += 1) {
      const params = new URLSearchParams({ limit: "100" });
      if (page) params.set("page", page);
      const { data } = await api("GET", `/products?${params}`, { auth: false });
      for (const p of data.items) if (p.creator_id === me.creator_id) myProducts.set(p.product_id, p);
      fillProducts();
      page = data.next_page;
      if (!page) break;
    }
  })().catch(() => {});
  // Every drop of this creator with its sales (owner-only listing), latest start first.
  api("GET", `/creators/${encodeURIComponent(me.creator_id)}/drops?limit=100`).then(({ data }) => {
    const shown = new Set($$('[data-testid="drop-card"]', scheduled).map((c) => c.dataset.dropId));
    for (const drop of data.items) {
      myDrops.set(drop.drop_id, rememberDrop(drop));
      if (shown.has(drop.drop_id)) continue;
      const card = dropCard(drop);
      card.append(h("p.when", { testid: "drop-sales" },
        `${drop.units_sold} sold · ${money(drop.revenue_cents, drop.currency)} · ${drop.orders.pending_payment} awaiting payment`));
      scheduled.append(card);
    }
  }, () => {});
  const ticker = setInterval(() => $$('[data-testid="drop-card"]', scheduled).forEach(updateCard), 1000);
  onLeave(() => clearInterval(ticker));
}

// --- start-up ------------------------------------------------------------------------------------------------
async function main() {
  await loadConfig();
  $('[data-testid="logout"]').addEventListener("click", () => {
    live.close();
    saveSession(null);
    orders.clear();
    setUnread(0);
    renderChrome();
    go("#/login");
  });
  if (session) {
    try {
      await loadMe();
      live.open();
      refreshUnread();
    } catch (error) {
      if (error.code === "unauthorized" || !session?.user) saveSession(null);
      if (error.code !== "unauthorized") toast("error", "Couldn't load your account", describeError(error));
    }
  }
  renderChrome();
  window.addEventListener("hashchange", render);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && route.name === "drop" && route.id) fetchDrop(route.id).then(() => refreshDropViews(route.id), () => {});
  });
  render();
  setInterval(() => document.visibilityState === "visible" && refreshUnread(), UNREAD_POLL_MS);
  new MutationObserver(placeToasts).observe($('[data-testid="toasts"]'), { childList: true });
  for (const event of ["scroll", "resize"]) window.addEventListener(event, placeToasts, { passive: true });
  document.documentElement.dataset.ready = "true";
}

main();
