// The sales view's chart series, from GET /drops/{id}/sales. Its `series` gives, slot by slot of
// `series_slot_seconds` since the drop's start, the units sold and the stock not sold yet at the
// slot's end: those are the chart's two lines over the whole sale. A queue's or draw's `line` gives
// totals only, so its chart is what this page saw of them while it was open (one point per refresh).

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

export function salesSeries(data, at) {
  const start = Date.parse(data.start_time);
  const width = data.series_slot_seconds * 1000;
  const until = Math.min(at, Date.parse(data.end_time));
  const stock = [];
  const sold = [];
  if (data.series.length) {
    stock.push([start, data.initial_stock]);
    sold.push([start, 0]);
  }
  for (const point of data.series) {
    // A slot's figures hold at its end (or now, for the slot still running).
    const slotStart = Date.parse(point.at);
    const end = Math.max(slotStart, Math.min(slotStart + width, until));
    stock.push([end, point.stock]);
    sold.push([end, point.sold_total]);
  }
  const series = [
    { name: "Stock left", testid: "stock", className: "series-stock", points: stock },
    { name: "Units sold", testid: "sold", className: "series-sold", points: sold },
  ];
  const note = data.series.length
    ? `From the drop's start, in ${slotWords(data.series_slot_seconds)} steps: units of paid orders by when they were placed, and the stock not sold yet.`
    : "The chart starts when the drop does.";
  return { series, note };
}

/** The line's figures as this page saw them: samples are [ms, line] pairs, one per refresh. */
export function lineSeries(saleMode, samples) {
  return (LINE_FIGURES[saleMode] || []).map(([key, name], index) => ({
    name,
    testid: key,
    className: index ? "series-sold" : "series-entries",
    points: samples.filter(([, line]) => line).map(([ms, line]) => [ms, line[key]]),
  }));
}
