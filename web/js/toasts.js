// Toasts: short notices in a corner that never cover the Buy button.
import { $, $$, h } from "./dom.js";

/** A toast of `kind`: "info", "error" or the type of the event it tells of (the stylesheet colours each). */
export function toast(kind, title, text = "", link = null) {
  const box = $('[data-testid="toasts"]');
  const item = h(
    "div.toast",
    { testid: "toast", "data-type": kind, class: `toast toast-${kind}` },
    h("strong", { text: title }),
    text ? h("p", { text }) : null,
    link ? h("a", { href: link.href, testid: "toast-link", onclick: () => item.remove() }, link.text) : null,
    h("button.close", { type: "button", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"),
  );
  box.prepend(item);
  while (box.children.length > 4) box.lastElementChild.remove();
  setTimeout(() => item.remove(), kind === "error" ? 12000 : 9000);
  placeToasts();
}

const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

/** Keep the toasts off every visible [data-keep-clear] element (the Buy button): at the bottom if that
 * leaves it clear, else at the top under the header, else only the newest toast, compact. */
export function placeToasts() {
  const box = $('[data-testid="toasts"]');
  const header = $(".site-header").getBoundingClientRect();
  box.style.setProperty("--toasts-top", `${Math.max(0, header.bottom) + 8}px`);
  const keep = $$("[data-keep-clear]").map((el) => el.getBoundingClientRect()).filter((r) => r.width && r.height);
  const clear = () => !keep.some((r) => [...box.children].some((t) => overlap(t.getBoundingClientRect(), r)));
  box.classList.remove("compact");
  for (const dock of ["bottom", "top"]) {
    box.dataset.dock = dock;
    if (clear()) return;
  }
  box.classList.add("compact");
  for (const dock of ["bottom", "top"]) {
    box.dataset.dock = dock;
    if (clear()) return;
  }
  box.dataset.dock = "parked"; // no room anywhere (a tiny window): out of the way until a scroll makes room
}
