// Forms and their error boxes.
import { $, h } from "./dom.js";
import { ApiError, describeError } from "./api.js";

export function errorBox(testid = "error") {
  return h("p.error", { testid, role: "alert", hidden: true });
}

export function showError(box, error) {
  box.textContent = typeof error === "string" ? error : describeError(error);
  box.dataset.code = error instanceof ApiError ? error.code : "";
  box.hidden = false;
}

export function clearError(box) {
  box.hidden = true;
  box.textContent = "";
  delete box.dataset.code;
}

export function field(label, input, hint = null) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div.field", h("label", { for: id, text: label }), input, hint ? h("small.muted", { text: hint }) : null);
}

/** Wire a form: disables its button while `action` runs, shows any error in its alert box. */
export function handle(form, action) {
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
