// The sales chart's series. GET /drops/{id}/sales has no time series: it gives the current figures and
// the latest ten orders. So the chart is rebuilt from those orders (their times and quantities), and
// extended by what this page sees while it stays open (each refresh is one more point).
const HOLDS_STOCK = new Set(["pending_payment", "confirmed"]);

export function salesSeries(data, samples) {
  const start = Date.parse(data.start_time);
  const stock = [];
  const sold = [];
  const recent = [...data.recent_orders].sort((a, b) => (a.created_at < b.created_at ? 1 : -1)); // newest first
  // Walking back from the oldest live sample: before each order, the stock was higher by its quantity.
  const first = samples[0];
  let level = first ? first[1] : data.stock;
  let units = first ? first[2] : data.units_sold;
  for (const order of recent) {
    const at = Date.parse(order.created_at);
    if (first && at > first[0]) continue;
    stock.push([at, level]);
    if (HOLDS_STOCK.has(order.status)) level += order.quantity;
    if (order.status === "confirmed") {
      sold.push([at, units]);
      units -= order.quantity;
    }
  }
  const complete = level === data.initial_stock; // the ten orders reach back to the start
  if (complete && start <= (first ? first[0] : Date.now())) {
    stock.push([start, data.initial_stock]);
    sold.push([start, Math.max(0, units)]);
  }
  for (const [at, s, u] of samples) {
    stock.push([at, s]);
    sold.push([at, u]);
  }
  const series = [
    { name: "Stock left", testid: "stock", className: "series-stock", points: stock },
    { name: "Units sold", testid: "sold", className: "series-sold", points: sold },
  ];
  let note = complete
    ? "From the drop's start, then live while this page is open."
    : "From the latest ten orders, then live while this page is open.";
  if (data.sale_mode === "draw") {
    series.push({ name: "Entries", testid: "entries", className: "series-entries", points: samples.filter((p) => p[3] !== null).map((p) => [p[0], p[3]]) });
  } else if (data.sale_mode === "queue") {
    note += " The API doesn't report how many joined the line or were admitted yet.";
  }
  return { series, note };
}
