// Views: notification settings (which events reach the user by e-mail and by Web Push) and "Notify me".
import { h } from "../dom.js";
import { api } from "../api.js";
import { EventType, FrameType } from "../events.js";
import { errorBox, showError } from "../forms.js";
import { currentSubscription, pushSupported, subscribePush, unsubscribePush } from "../push.js";
import { state } from "../state.js";
import { toast } from "../toasts.js";

const CHANNELS = { email: "E-mail", web_push: "Web Push (this browser)" };
const EVENTS = {
  [EventType.DROP_STARTED]: "A drop by a creator I follow starts",
  [EventType.ORDER_CONFIRMED]: "My order is confirmed",
  [FrameType.DRAW_WON]: "I win a draw",
};

export function viewSettings(main) {
  const box = errorBox("settings-error");
  const path = `/users/${encodeURIComponent(state.session.user.user_id)}/notification-settings`;
  const notify = h("button", { type: "button", testid: "notify-me", hidden: !pushSupported() }, "Notify me");
  const form = h("form", { testid: "notification-settings" });
  main.append(h("h1", { text: "Notifications" }),
    h("p.muted", { text: "Choose what reaches you when you are not on LiveDrop. Every e-mail also has a one-click unsubscribe link." }),
    box, h("div.actions", notify), form);
  if (state.config.devEmails) {
    const address = encodeURIComponent(state.session.user.email || "");
    main.append(h("p.muted", h("a", { href: `${state.config.devEmails}?to=${address}`, target: "_blank", testid: "dev-emails" }, "E-mails the dev stack sent you")));
  }

  const showNotify = async () => {
    const subscribed = Boolean(await currentSubscription().catch(() => null));
    notify.textContent = subscribed ? "Stop notifying this browser" : "Notify me";
    notify.dataset.subscribed = String(subscribed);
  };
  notify.addEventListener("click", async () => {
    notify.disabled = true;
    try {
      if (notify.dataset.subscribed === "true") await unsubscribePush();
      else await subscribePush();
      toast("info", notify.dataset.subscribed === "true" ? "This browser is no longer notified" : "This browser will be notified");
    } catch (error) {
      showError(box, error);
    } finally {
      notify.disabled = false;
      showNotify();
    }
  });
  if (pushSupported()) showNotify();

  const save = async (channel, kind, input) => {
    input.disabled = true;
    try {
      await api("PUT", path, { body: { [channel]: { [kind]: input.checked } } });
    } catch (error) {
      input.checked = !input.checked;
      showError(box, error);
    } finally {
      input.disabled = false;
    }
  };
  api("GET", path).then(({ data }) => {
    for (const [channel, label] of Object.entries(CHANNELS)) {
      const fieldset = h("fieldset.cards", h("legend", { text: label }));
      for (const [kind, text] of Object.entries(EVENTS)) {
        const input = h("input", { type: "checkbox", testid: `switch-${channel}-${kind}`, checked: data[channel][kind] });
        input.addEventListener("change", () => save(channel, kind, input));
        fieldset.append(h("label", input, " ", text), h("br"));
      }
      form.append(fieldset);
    }
  }, (error) => showError(box, error));
}
