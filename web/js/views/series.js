// The sales view's chart series, from GET /drops/{id}/sales. Its `series` gives, slot by slot of
// `series_slot_seconds` since the drop's start, the units sold and the stock not sold yet at the
// slot's end: those are the chart's two lines over the whole sale. A queue's or draw's `line` has a
// series of its own (from the line's opening, in `slot_seconds` steps): joins or entries, and
// admissions or winners, as totals at each slot's end.

export const LINE_FIGURES = {
  queue: [["joins", "Joined the line"], ["admissions", "Admitted"]],
  draw: [["entries", "Entries"], ["winners", "Winners"]],
};

/** "1-minute", "15-minute", "6-hour", "2-day": a slot's width in words. */
export function slotWords(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400}-day`;
  if (seconds % 3600 === 0) return `${seconds / 3600}-hour`;
  return `${Math.round(seconds / 60)}-minute`;
}

// Points at each slot's end (or now, for the slot still running), after a first one at `from`.
function steps(points, from, widthMs, until, first, key) {
  const out = points.length ? [[from, first]] : [];
  for (const point of points) {
    const slotStart = Date.parse(point.at);
    out.push([Math.max(slotStart, Math.min(slotStart + widthMs, until)), point[key]]);
  }
  return out;
}

export function salesSeries(data, at) {
  const start = Date.parse(data.start_time);
  const width = data.series_slot_seconds * 1000;
  const until = Math.min(at, Date.parse(data.end_time));
  const series = [
    { name: "Stock left", testid: "stock", className: "series-stock", points: steps(data.series, start, width, until, data.initial_stock, "stock") },
    { name: "Units sold", testid: "sold", className: "series-sold", points: steps(data.series, start, width, until, 0, "sold_total") },
  ];
  const note = data.series.length
    ? `From the drop's start, in ${slotWords(data.series_slot_seconds)} steps: units of paid orders by when they were placed, and the stock not sold yet.`
    : "The chart starts when the drop does.";
  return { series, note };
}

/** A queue's joins and admissions, or a draw's entries and winners, over time. */
export function lineSeries(data, at) {
  const { line } = data;
  const points = line.series;
  const from = points.length ? Date.parse(points[0].at) : 0;
  const until = Math.min(at, Date.parse(data.end_time));
  return (LINE_FIGURES[data.sale_mode] || []).map(([key, name], index) => ({
    name,
    testid: key,
    className: index ? "series-sold" : "series-entries",
    points: steps(points, from, line.slot_seconds * 1000, until, 0, key),
  }));
}
