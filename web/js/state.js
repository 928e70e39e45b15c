// The page's shared state, in one place: what more than one module reads or changes. State only one
// module needs (a view's timers, the order polls, the socket's own bookkeeping) stays in that module.

export const state = {
  // Where the APIs live (api.loadConfig fills it in before anything else runs).
  config: { apiUrl: "", wsUrl: "", devEmails: "" },
  // The signed-in user's tokens and profile ({id_token, access_token, refresh_token, user}), or null.
  // Only session.js changes it (saveSession also keeps sessionStorage in step).
  session: null,
  // Server clock minus ours, from the Date header (only trusted when > 1.5 s off).
  clockOffsetMs: 0,
  // The view on screen: {name, id} parsed from the address's #hash.
  route: { name: "drops" },
  // The drops list's status filter ("" is all); kept across visits of the list.
  dropFilter: "",
};

// Caches of things that never change (products, creators' names) and of the latest drops we know.
export const products = new Map(); // product_id -> Promise of the product
export const creators = new Map(); // creator_id -> Promise of the creator
export const drops = new Map(); // drop_id -> latest drop we know (with _stockAt: when its stock was seen)
export const orders = new Map(); // order_id -> order, the ones this tab placed or looked at
export const salesViews = new Map(); // drop_id -> refresh(), for the creator's view on screen
export const lineViews = new Map(); // drop_id -> refresh(frame), for the line box on screen
export const linePlaces = new Map(); // drop_id -> the user's place in its line or draw (with its admission)

/** Everything one user's session put here: logging out clears it before anyone else logs in. */
export function clearUserState() {
  for (const map of [orders, salesViews, lineViews, linePlaces]) map.clear();
  state.dropFilter = "";
}
