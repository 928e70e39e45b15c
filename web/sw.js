// The service worker: shows each Web Push as a system notification and opens its page when clicked.
// A push body is the event's frame ({type, event_id, occurred_at, data}), decrypted by the browser.
const TITLES = {
  drop_started: "A drop you follow just started",
  order_confirmed: "Your order is confirmed",
  draw_won: "You won the draw",
};

self.addEventListener("push", (event) => {
  let frame = {};
  try {
    frame = event.data ? event.data.json() : {};
  } catch {
    frame = {};
  }
  const data = frame.data || {};
  const target = frame.type === "order_confirmed" ? "#/orders" : data.drop_id ? `#/drop/${encodeURIComponent(data.drop_id)}` : "#/inbox";
  event.waitUntil(
    self.registration.showNotification(TITLES[frame.type] || "LiveDrop", {
      body: frame.type === "draw_won" ? "Buy your unit before your window closes." : "Open LiveDrop to see it.",
      tag: frame.event_id || undefined,
      data: { url: new URL(target, self.registration.scope).href },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url));
});
