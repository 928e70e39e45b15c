// Views: log in / sign up.
import { h } from "../dom.js";
import { api } from "../api.js";
import { logIn } from "../account.js";
import { errorBox, field, handle } from "../forms.js";
import { state } from "../state.js";

export function viewAuth(main) {
  const signup = state.route.name === "signup";
  const form = h(
    "form.card.narrow",
    { testid: signup ? "signup-form" : "login-form", novalidate: true },
    h("h1", { text: signup ? "Create your account" : "Log in" }),
    signup ? field("Name", h("input", { name: "name", required: true, autocomplete: "name", testid: "signup-name" })) : null,
    field("Email", h("input", { name: "email", type: "email", required: true, autocomplete: "email", testid: "auth-email" })),
    field(
      "Password",
      h("input", { name: "password", type: "password", required: true, autocomplete: signup ? "new-password" : "current-password", testid: "auth-password" }),
      signup ? "At least 8 characters with upper- and lower-case letters, a digit and a symbol." : null,
    ),
    errorBox("auth-error"),
    h("button.primary", { type: "submit", testid: "auth-submit" }, signup ? "Sign up" : "Log in"),
    h("p.muted",
      signup ? "Already have an account? " : "New here? ",
      h("a", { href: signup ? "#/login" : "#/signup", testid: signup ? "to-login" : "to-signup" }, signup ? "Log in" : "Create an account")),
  );
  handle(form, async (values) => {
    const email = String(values.get("email")).trim();
    const password = String(values.get("password"));
    if (!email || !password || (signup && !String(values.get("name")).trim())) throw "Please fill in every field.";
    if (signup) await api("POST", "/auth/signup", { body: { email, password, name: String(values.get("name")).trim() }, auth: false });
    await logIn(email, password);
  });
  main.append(form);
}
