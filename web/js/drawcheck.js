// "Check this draw": recomputes a draw in the browser from public data alone (docs/sale-modes.md,
// "Checking a draw"): sha256(seed) must equal the commitment published before any entry, and the draw
// order is the entries sorted by sha256("<seed>:<entry_id>") in hex, then by entry_id.
import { api } from "./api.js";

export async function sha256Hex(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Every entry of a draw ({entry_id, position}), all pages. */
export async function allEntries(dropId) {
  const entries = [];
  let page = null;
  do {
    const params = new URLSearchParams({ limit: "100" });
    if (page) params.set("page", page);
    const { data } = await api("GET", `/drops/${encodeURIComponent(dropId)}/entries?${params}`, { auth: false });
    entries.push(...data.items);
    page = data.next_page;
  } while (page);
  return entries;
}

/** The draw order the seed gives these entry ids. */
export async function drawOrder(seed, entryIds) {
  const ranked = await Promise.all(entryIds.map(async (id) => [`${await sha256Hex(`${seed}:${id}`)}:${id}`, id]));
  ranked.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return ranked.map(([, id]) => id);
}

/**
 * Checks a drawn drop: {ok, commitmentOk, entries, mismatches, winners}. `mismatches` lists the entries
 * whose published position differs from the recomputed one; `winners` the first `stock` entry ids.
 */
export async function checkDraw(drop, entries) {
  const { seed, commitment } = drop.draw || {};
  if (!seed) return { ok: false, reason: "not_drawn", entries: entries.length, mismatches: [], winners: [] };
  const commitmentOk = (await sha256Hex(seed)) === commitment;
  const order = await drawOrder(seed, entries.map((e) => e.entry_id));
  const published = new Map(entries.map((e) => [e.entry_id, e.position]));
  const mismatches = order.filter((id, i) => published.get(id) !== i + 1);
  return {
    ok: commitmentOk && mismatches.length === 0,
    commitmentOk,
    entries: entries.length,
    mismatches,
    winners: order.slice(0, drop.initial_stock),
  };
}
