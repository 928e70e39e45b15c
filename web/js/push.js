// Web Push in the page: the service worker, the browser's permission, and the subscription the API
// keeps (POST/DELETE /users/{id}/push-subscriptions) made with the stage's VAPID public key.
import { api } from "./api.js";
import { state } from "./state.js";

export const pushSupported = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

function keyBytes(base64url) {
  const padded = (base64url + "=".repeat((4 - (base64url.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

async function registration() {
  return navigator.serviceWorker.register("sw.js");
}

/** This browser's subscription, or null. */
export async function currentSubscription() {
  if (!pushSupported()) return null;
  const found = await navigator.serviceWorker.getRegistration();
  return found ? found.pushManager.getSubscription() : null;
}

/** Ask for permission, subscribe with the stage's VAPID key, and hand the subscription to the API. */
export async function subscribePush() {
  if ((await Notification.requestPermission()) !== "granted") throw new Error("Notifications are blocked in this browser.");
  const { data } = await api("GET", "/push/vapid-public-key", { auth: false });
  const sw = await registration();
  await navigator.serviceWorker.ready;
  const subscription = await sw.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(data.public_key) });
  await api("POST", `/users/${encodeURIComponent(state.session.user.user_id)}/push-subscriptions`, { body: subscription.toJSON() });
  return subscription;
}

/** Forget this browser's subscription, here and at the API. */
export async function unsubscribePush() {
  const subscription = await currentSubscription();
  if (!subscription) return;
  await api("DELETE", `/users/${encodeURIComponent(state.session.user.user_id)}/push-subscriptions`, { body: { endpoint: subscription.endpoint } });
  await subscription.unsubscribe();
}
