// The WebSocket: notifications and live stock. Keeps one socket open while logged in, reconnects with
// back-off, re-subscribes after every reconnect, and hands each frame to the handler it is for.
import { $ } from "./dom.js";
import { FrameType } from "./events.js";
import { refreshTokens, sessionExpired } from "./api.js";
import { state } from "./state.js";

// The actions a client sends (docs/api.md, WebSocket API).
const SUBSCRIBE = "subscribe";
const UNSUBSCRIBE = "unsubscribe";
const PING = "ping";

const STATE_LABEL = { open: "live", connecting: "connecting…", closed: "reconnecting…", off: "offline" };

export class Live {
  constructor() {
    this.socket = null;
    this.subscriptions = new Set(); // drop ids we want frames of, re-sent after every reconnect
    this.confirmed = new Set(); // drop ids the server confirmed (a subscribed frame) on this socket
    this.attempt = 0;
    this.timer = null;
    this.pinger = null;
    this.wanted = false;
    // What the page does with what comes in; main.js wires these (see wire()).
    this.handlers = { reconnected: () => {}, subscriptionsChanged: () => {}, event: () => {} };
  }

  /** reconnected(): a socket (re)opened, frames may have been missed; subscriptionsChanged(): `confirmed`
   * changed; event(frame): a domain event or a stock change. */
  wire(handlers) {
    this.handlers = { ...this.handlers, ...handlers };
  }

  open() {
    this.wanted = true;
    const session = state.session;
    if (!session || (this.socket && this.socket.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this.timer);
    this.state("connecting");
    const socket = new WebSocket(`${state.config.wsUrl}?token=${encodeURIComponent(session.id_token)}`);
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.confirmed.clear();
      this.state("open");
      for (const dropId of this.subscriptions) this.send({ action: SUBSCRIBE, drop_id: dropId });
      this.pinger = setInterval(() => this.send({ action: PING }), 4 * 60 * 1000); // idle limit is 10 min
      this.handlers.reconnected();
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
      this.handlers.subscriptionsChanged();
      if (!this.wanted || !state.session) return this.state("off");
      this.state("closed");
      // A refused handshake is most likely an expired id token: refresh it before trying again.
      if (!opened && (await refreshTokens()) === false) return sessionExpired();
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
    this.send({ action: SUBSCRIBE, drop_id: dropId });
  }

  unsubscribe(dropId) {
    if (!this.subscriptions.delete(dropId)) return;
    this.confirmed.delete(dropId);
    this.send({ action: UNSUBSCRIBE, drop_id: dropId });
  }

  state(name) {
    const badge = $('[data-testid="ws-status"]');
    badge.dataset.state = name;
    $(".ws-label", badge).textContent = STATE_LABEL[name];
  }

  received(frame) {
    if (frame.type === FrameType.SUBSCRIBED) {
      this.confirmed.add(frame.drop_id);
      this.handlers.subscriptionsChanged();
    } else if (frame.type === FrameType.UNSUBSCRIBED || frame.type === FrameType.PONG) {
      // nothing to do
    } else if (frame.type === FrameType.ERROR) {
      console.warn("LiveDrop WebSocket error frame", frame);
    } else if (frame.data) {
      this.handlers.event(frame);
    }
  }
}

/** The page's one socket. */
export const live = new Live();
