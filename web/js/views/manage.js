// The studio's tools for one drop (reschedule, cancel, buyers) and one product (images). They use routes
// of issue 25 that an older server lacks: such an answer (route_not_found, 404, 405) becomes a sentence.
import { $, h } from "../dom.js";
import { ApiError, api, describeError, unavailable } from "../api.js";
import { imageUrls, money, when } from "../format.js";
import { errorBox, handle, showError } from "../forms.js";
import { state } from "../state.js";
import { rememberDrop } from "../store.js";
import { toast } from "../toasts.js";
import { dropBody, dropFields } from "./dropform.js";
import { updateCard } from "./cards.js";

const NOT_YET = "This server doesn't offer that yet.";

const say = (box, error) => showError(box, unavailable(error) ? NOT_YET : error);

/** Reschedule / Cancel / Buyers under a studio drop card. */
export function dropTools(card, drop) {
  const box = errorBox("manage-error");
  const out = h("div.manage-out");
  const reschedule = h("button.chip", { type: "button", testid: "drop-reschedule" }, "Reschedule");
  const cancel = h("button.chip", { type: "button", testid: "drop-cancel" }, "Cancel drop");
  const buyers = h("button.chip", { type: "button", testid: "drop-buyers" }, "Buyers");
  const csv = h("button.chip", { type: "button", testid: "drop-buyers-csv" }, "Buyers (CSV)");
  const started = Date.parse(drop.start_time) <= Date.now();
  reschedule.hidden = started || drop.status === "cancelled";
  cancel.hidden = drop.status === "cancelled" || drop.status === "ended";

  reschedule.addEventListener("click", () => {
    const form = h("form.reschedule", { testid: "reschedule-form" }, dropFields(drop), errorBox(),
      h("button.primary", { type: "submit", testid: "reschedule-submit" }, "Save new times"));
    handle(form, async (values) => {
      try {
        const { data } = await api("PATCH", `/drops/${encodeURIComponent(drop.drop_id)}`, { body: dropBody(values, { schedule: false }) });
        rememberDrop(data);
        updateCard(card);
        out.replaceChildren();
        toast("info", "Drop rescheduled", `Starts ${when(data.start_time)}.`);
      } catch (error) {
        throw unavailable(error) ? NOT_YET : error;
      }
    });
    out.replaceChildren(form);
  });

  let armed = false;
  cancel.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      cancel.textContent = "Really cancel? Paid orders are refunded";
      cancel.dataset.armed = "true";
      return;
    }
    cancel.disabled = true;
    try {
      const { data } = await api("POST", `/drops/${encodeURIComponent(drop.drop_id)}/cancel`);
      card.dataset.cancelled = "true";
      $('[data-testid="drop-when"]', card).textContent = "Cancelled";
      cancel.hidden = reschedule.hidden = true;
      rememberDrop({ ...drop, ...data });
      toast("info", "Drop cancelled", "Followers are told; paid orders are refunded.");
    } catch (error) {
      say(box, error);
    } finally {
      cancel.disabled = false;
    }
  });

  buyers.addEventListener("click", async () => {
    try {
      const { data } = await api("GET", `/drops/${encodeURIComponent(drop.drop_id)}/buyers`);
      const items = data.items || data;
      out.replaceChildren(items.length
        ? h("table.buyers", { testid: "buyers-table" },
          h("thead", h("tr", ["Buyer", "Qty", "Ship to"].map((t) => h("th", { text: t })))),
          h("tbody", items.map((b) => h("tr", { testid: "buyer-row" },
            h("td", { text: b.shipping_address?.name || b.name || b.user_id || "" }),
            h("td", { text: String(b.quantity) }),
            h("td", { text: addressLine(b.shipping_address) })))))
        : h("p.muted", { testid: "buyers-empty", text: "No confirmed orders yet." }));
    } catch (error) {
      say(box, error);
    }
  });

  csv.addEventListener("click", async () => {
    try {
      const response = await fetch(`${state.config.apiUrl}/drops/${encodeURIComponent(drop.drop_id)}/buyers`, {
        headers: { Accept: "text/csv", Authorization: `Bearer ${state.session.id_token}` },
      });
      if (!response.ok) {
        const code = (await response.json().catch(() => null))?.error?.code;
        return showError(box, ["route_not_found", "method_not_allowed"].includes(code) || response.status === 405 ? NOT_YET : describeError(new ApiError(response.status, code || "server_error", "")));
      }
      const link = h("a", { href: URL.createObjectURL(await response.blob()), download: `buyers-${drop.drop_id}.csv`, testid: "buyers-csv-link" }, "Download buyers.csv");
      out.replaceChildren(link);
      link.click();
    } catch (error) {
      say(box, error);
    }
  });
  return h("div.manage", { testid: "drop-tools" }, h("div.actions", reschedule, cancel, buyers, csv), box, out);
}

export function addressLine(a) {
  if (!a) return "";
  return [a.name, a.line1, a.line2, [a.postal_code, a.city].filter(Boolean).join(" "), a.region, a.country].filter(Boolean).join(", ");
}

/** A studio product row: its name and price, its images, and an upload. */
export function productRow(product) {
  const box = errorBox("image-error");
  const gallery = h("div.gallery", { testid: "product-images" }, imageUrls(product).map((src) => h("img", { src, alt: product.name, loading: "lazy" })));
  const input = h("input", { type: "file", accept: "image/png,image/jpeg,image/webp", testid: "product-image-input", "aria-label": `Add an image of ${product.name}` });
  input.addEventListener("change", async () => {
    const file = input.files[0];
    if (!file) return;
    try {
      const url = await uploadImage(product.product_id, file);
      gallery.append(h("img", { src: url, alt: product.name }));
      product.images = [...(product.images || []), url];
      toast("info", "Image added", product.name);
    } catch (error) {
      say(box, error);
    } finally {
      input.value = "";
    }
  });
  return h("li", { testid: "studio-product", "data-product-id": product.product_id },
    h("strong", { text: product.name }), h("span.muted", { text: ` · ${money(product.price_cents, product.currency)}` }),
    gallery, h("label.upload", "Add image ", input), box);
}

/** POST /products/{id}/images, then the upload itself (a presigned PUT, or a POST with its fields). */
async function uploadImage(productId, file) {
  if (!["image/png", "image/jpeg", "image/webp"].includes(file.type)) throw "Images must be PNG, JPEG or WebP.";
  const { data } = await api("POST", `/products/${encodeURIComponent(productId)}/images`, { body: { content_type: file.type } });
  let response;
  if (data.fields) {
    const form = new FormData();
    for (const [k, v] of Object.entries(data.fields)) form.append(k, v);
    form.append("file", file);
    response = await fetch(data.upload_url, { method: "POST", body: form });
  } else {
    response = await fetch(data.upload_url, { method: "PUT", body: file, headers: { "Content-Type": file.type } });
  }
  if (!response.ok) throw response.status === 400 || response.status === 413 ? "That image is too big." : "The image upload failed. Please try again.";
  return data.image_url;
}
