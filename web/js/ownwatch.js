// A creator watches their own drops: the backend pushes a drop's owner its drop_started, stock_low and
// sold_out (and writes them to the inbox) itself, but the live stock and the drop's end reach a drop's
// subscribers only, so while logged in the page subscribes to the creator's upcoming and live drops.
import { api } from "./api.js";
import { live } from "./socket.js";
import { state } from "./state.js";

export const OWN_WATCH_MAX = 40; // the WebSocket allows 50 subscriptions per connection: leave room
export const ownWatched = new Set();

export async function watchOwnDrops() {
  const creatorId = state.session?.user?.creator_id;
  if (!creatorId) return;
  try {
    const { data } = await api("GET", `/creators/${encodeURIComponent(creatorId)}/drops?limit=50`);
    for (const drop of data.items) if (["scheduled", "live"].includes(drop.status)) watchOwn(drop.drop_id);
  } catch {
    // a convenience: the studio still works without it
  }
}

export function watchOwn(dropId) {
  if (ownWatched.has(dropId) || ownWatched.size >= OWN_WATCH_MAX) return;
  ownWatched.add(dropId);
  live.subscribe(dropId);
}

export function forgetOwnDrops() {
  ownWatched.clear();
}
