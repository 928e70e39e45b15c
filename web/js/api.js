// The REST client: where the APIs live, every request, the error every API code becomes, and the one
// token refresh that every 401 shares.
import { state } from "./state.js";
import { saveSession } from "./session.js";
import { humanize } from "./words.js";

// --- configuration: where the WebSocket lives --------------------------------------------------
// 1. ?ws=<url> on the page's address wins (handy when the page is hosted elsewhere);
// 2. else config.json next to this page ({"ws_url": ..., "api_url"?: ...}), which the dev stack serves;
// 3. else a guess: the REST port + 1 on the same host (the dev stack's default 8000/8001).
export async function loadConfig() {
  const params = new URLSearchParams(location.search);
  let file = {};
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) file = await response.json();
  } catch {
    file = {};
  }
  state.config.apiUrl = (params.get("api") || file.api_url || "").replace(/\/$/, "");
  const guess = `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname}:${Number(location.port || 80) + 1}/notifications`;
  state.config.wsUrl = params.get("ws") || file.ws_url || guess;
  state.config.devEmails = file.dev_emails || ""; // the dev stack's sent e-mails (dev stage only)
}

// --- errors: every API code gets a sentence ------------------------------------------------------
export const ERROR_TEXT = {
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
  admission_required: "You need your turn in the line (or a winning draw entry) to buy this drop.",
  admission_expired: "Your time to buy ran out. The item went to the next person in line.",
  wrong_sale_mode: "This drop isn't sold that way. Reload the page.",
  line_not_open: "The line isn't open yet. Come back closer to the start.",
  line_closed: "This line has closed: it no longer takes entries.",
  not_in_line: "You're not in this line yet.",
  rate_limited: "That's a lot of tries in a short time. Please wait a few seconds.",
  too_many_connections: "You have LiveDrop open in too many tabs. Close one and reload.",
  too_many_subscriptions: "You're watching too many drops at once. Close a few.",
  backend_unavailable: "LiveDrop is having a moment. Please try again shortly.",
  invalid_unsubscribe_link: "That unsubscribe link isn't valid.",
  invalid_signature: "That request wasn't signed correctly.",
  method_not_allowed: "This server doesn't offer that yet.",
  route_not_found: "This server doesn't offer that yet.",
  network: "Can't reach LiveDrop. Check your connection and try again.",
  server_error: "Something went wrong on our side. Please try again.",
};

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.apiMessage = message || "";
    this.retryAfter = retryAfter;
  }
}

/** The sentence to show for an error; invalid_request carries the server's message (it names the field). */
export function describeError(error) {
  if (!(error instanceof ApiError)) return ERROR_TEXT.network;
  if (error.code === "invalid_request" && error.apiMessage) return humanize(error.apiMessage);
  if ((error.code === "try_again" || error.code === "rate_limited") && error.retryAfter) {
    return `${error.code === "try_again" ? "It's very busy right now" : "That's a lot of tries in a short time"}. Please try again in ${error.retryAfter} seconds.`;
  }
  if (error.code === "insufficient_stock" && /\d/.test(error.apiMessage)) return `There isn't that much left (${error.apiMessage.replace(/_/g, " ")}). Try a smaller quantity.`;
  return ERROR_TEXT[error.code] || error.apiMessage || ERROR_TEXT.server_error;
}

/** Whether the API answered that the route itself is missing (an older server): a feature to hide. */
export function unavailable(error) {
  return error instanceof ApiError && (["route_not_found", "method_not_allowed"].includes(error.code) || (error.status === 404 && error.code === "not_found"));
}

// --- the session running out ----------------------------------------------------------------------
// What to do when the refresh token is refused: main.js hands in account.expireSession (this module
// cannot import it: the account needs this client).
let onExpired = () => {};

export function whenSessionExpires(handler) {
  onExpired = handler;
}

/** The session can't be renewed: log out and say so (the handler main.js registered). */
export function sessionExpired() {
  onExpired();
}

// --- REST client ----------------------------------------------------------------------------------
/** Now by the server's clock (drops start and end by it). */
export const now = () => Date.now() + state.clockOffsetMs;

export async function api(method, path, { body, headers = {}, auth = true, retry401 = true } = {}) {
  const session = state.session;
  const request = { method, headers: { ...headers }, cache: "no-cache" };
  if (body !== undefined) {
    request.headers["Content-Type"] = "application/json";
    request.body = JSON.stringify(body);
  }
  if (auth && session) request.headers.Authorization = `Bearer ${session.id_token}`;
  let response;
  try {
    response = await fetch(state.config.apiUrl + path, request);
  } catch {
    throw new ApiError(0, "network", ERROR_TEXT.network);
  }
  const date = Date.parse(response.headers.get("Date") || "");
  if (!Number.isNaN(date) && Math.abs(date - Date.now()) > 1500) state.clockOffsetMs = date - Date.now();
  if (response.status === 401 && auth && state.session && retry401) {
    const refreshed = await refreshTokens();
    if (refreshed) return api(method, path, { body, headers, auth, retry401: false });
    if (refreshed === false) sessionExpired(); // null: the refresh itself could not get through
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
    const code = envelope ? envelope.code : response.status === 401 ? "unauthorized" : response.status === 403 ? "forbidden" : response.status === 404 ? "not_found" : response.status === 405 ? "method_not_allowed" : "server_error";
    throw new ApiError(response.status, code, envelope ? envelope.message : "", response.headers.get("Retry-After"));
  }
  return { status: response.status, data, headers: response.headers };
}

let refreshing = null;
/** POST /auth/refresh once for all callers that saw a 401 at the same time.
 * Resolves true (new tokens), false (the refresh token was refused) or null (couldn't ask). */
export function refreshTokens() {
  const session = state.session;
  if (!session || !session.refresh_token) return Promise.resolve(false);
  refreshing ??= (async () => {
    try {
      const { data } = await api("POST", "/auth/refresh", { body: { refresh_token: session.refresh_token }, auth: false });
      saveSession({ ...state.session, id_token: data.id_token, access_token: data.access_token });
      return true;
    } catch (error) {
      return error.status === 0 || error.status >= 500 ? null : false;
    } finally {
      setTimeout(() => (refreshing = null), 0);
    }
  })();
  return refreshing;
}
