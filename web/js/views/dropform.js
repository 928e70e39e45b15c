// The studio's drop form: times, stock, limits and the sale mode with its settings. Also builds the
// body of a reschedule (PATCH /drops/{id}), which takes the same fields.
import { h } from "../dom.js";
import { now } from "../api.js";
import { localInput } from "../format.js";
import { field } from "../forms.js";

const MODES = [
  ["first_come", "First come, first served"],
  ["queue", "Waiting room (fair queue)"],
  ["draw", "Draw (verifiable lottery)"],
];

const num = (name, testid, attrs = {}) => h("input", { name, type: "number", testid, ...attrs });

/** The inputs of a drop (inside a form the caller makes), with the mode's settings shown for its mode. */
export function dropFields(drop = null) {
  const start = h("input", { name: "start", type: "datetime-local", step: "1", required: true, testid: "drop-start", value: localInput(drop ? Date.parse(drop.start_time) : now() + 60000) });
  const end = h("input", { name: "end", type: "datetime-local", step: "1", required: true, testid: "drop-end", value: localInput(drop ? Date.parse(drop.end_time) : now() + 3660000) });
  const mode = h("select", { name: "sale_mode", testid: "drop-sale-mode" }, MODES.map(([value, label]) => h("option", { value }, label)));
  mode.value = drop?.sale_mode || "first_come";
  const queue = h("fieldset.mode-settings", { testid: "queue-settings", "data-mode": "queue" },
    h("legend", { text: "Waiting room" }),
    h("div.row",
      field("Line opens (minutes before start)", num("queue_opens_minutes", "queue-opens-input", { min: "0", max: "10080", placeholder: "60" })),
      field("Admissions per second", num("admissions_per_second", "queue-rate-input", { min: "1", max: "10000", placeholder: "50" })),
      field("Time to buy (minutes)", num("queue_window_minutes", "queue-window-input", { min: "1", max: "1440", placeholder: "5" }))));
  const draw = h("fieldset.mode-settings", { testid: "draw-settings", "data-mode": "draw" },
    h("legend", { text: "Draw" }),
    h("p.muted", { text: "The draw happens at the start time. Each winner buys one unit." }),
    h("div.row",
      field("Entries open (your time)", h("input", { name: "entries_open", type: "datetime-local", step: "1", testid: "draw-opens-input" }), "Empty: from now."),
      field("Time to buy (minutes)", num("draw_window_minutes", "draw-window-input", { min: "1", max: "1440", placeholder: "5" }))));
  const sync = () => {
    queue.hidden = mode.value !== "queue";
    draw.hidden = mode.value !== "draw";
  };
  mode.addEventListener("change", sync);
  sync();
  return [
    h("div.row", field("Starts (your time)", start), field("Ends (your time)", end)),
    h("div.row",
      field("Stock", num("stock", "drop-stock-input", { min: "1", max: "1000000", value: String(drop?.initial_stock ?? 50), required: true })),
      field("Per-person limit", num("per_user_limit", "drop-limit-input", { min: "1", value: drop ? drop.per_user_limit ?? "" : "2" })),
      field("Low-stock alert at", num("low_stock_threshold", "drop-low-input", { min: "0", placeholder: "optional", value: drop?.low_stock_threshold ?? "" }))),
    drop ? null : field("How it sells", mode),
    drop ? null : queue,
    drop ? null : draw,
  ];
}

const minutes = (value) => Math.round(Number(value) * 60);

/** The API body of the form's values (a draw sells one unit per winner: its limit is always 1). */
export function dropBody(values, { schedule = true } = {}) {
  const body = {
    start_time: new Date(String(values.get("start"))).toISOString(),
    end_time: new Date(String(values.get("end"))).toISOString(),
    stock: Number(values.get("stock")),
  };
  const mode = values.get("sale_mode") || "first_come";
  if (values.get("per_user_limit")) body.per_user_limit = Number(values.get("per_user_limit"));
  if (values.get("low_stock_threshold")) body.low_stock_threshold = Number(values.get("low_stock_threshold"));
  if (!schedule) return body;
  if (mode !== "first_come") body.sale_mode = mode;
  if (mode === "queue") {
    if (values.get("queue_opens_minutes")) body.queue_opens_before_seconds = minutes(values.get("queue_opens_minutes"));
    if (values.get("admissions_per_second")) body.admissions_per_second = Number(values.get("admissions_per_second"));
    if (values.get("queue_window_minutes")) body.purchase_window_seconds = minutes(values.get("queue_window_minutes"));
  } else if (mode === "draw") {
    body.per_user_limit = 1;
    if (values.get("entries_open")) body.entries_open_time = new Date(String(values.get("entries_open"))).toISOString();
    if (values.get("draw_window_minutes")) body.purchase_window_seconds = minutes(values.get("draw_window_minutes"));
  }
  return body;
}
