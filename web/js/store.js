// Reads of products, creators and drops through the caches of state.js.
import { api, now } from "./api.js";
import { PUSHED_STOCK_KEPT_MS } from "./coalescing.js";
import { creators, drops, products } from "./state.js";
import { dropStatusAt } from "./statuses.js";

export async function product(id) {
  if (!products.has(id)) products.set(id, api("GET", `/products/${encodeURIComponent(id)}`, { auth: false }).then((r) => r.data));
  try {
    return await products.get(id);
  } catch (error) {
    products.delete(id);
    throw error;
  }
}

export async function creator(id, fresh = false) {
  if (fresh || !creators.has(id)) creators.set(id, api("GET", `/creators/${encodeURIComponent(id)}`, { auth: false }).then((r) => r.data));
  try {
    return await creators.get(id);
  } catch (error) {
    creators.delete(id);
    throw error;
  }
}

export async function fetchDrop(id) {
  const { data } = await api("GET", `/drops/${encodeURIComponent(id)}`, { auth: false });
  return rememberDrop(data);
}

export function rememberDrop(drop) {
  const known = drops.get(drop.drop_id);
  // A frame newer than this read may already have moved the stock; keep the freshest stock we saw.
  if (known && known._stockAt && known._stockAt > now() - PUSHED_STOCK_KEPT_MS) drop = { ...drop, stock: known.stock, _stockAt: known._stockAt };
  drops.set(drop.drop_id, drop);
  return drop;
}

/** The status as the API derives it: from the clock and the stock. */
export function statusOf(drop) {
  return dropStatusAt(drop, now());
}
