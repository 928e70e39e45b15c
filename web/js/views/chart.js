// A small line chart in inline SVG (no library): time on x, counts on y, one polyline per series.
const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 220;
const PAD = { left: 44, right: 12, top: 12, bottom: 28 };

function svg(tag, attrs = {}, text = null) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== null) el.textContent = text;
  return el;
}

/**
 * lineChart([{name, testid, className, points: [[ms, value], ...]}], {title}) -> <figure>. Series are
 * drawn as steps (a count holds its value until it changes). Empty series are listed as "no data".
 */
export function lineChart(series, { title = "", testid = "chart" } = {}) {
  const all = series.flatMap((s) => s.points);
  const figure = document.createElement("figure");
  figure.className = "chart";
  figure.dataset.testid = testid;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, preserveAspectRatio: "none" });
  figure.append(root);
  if (!all.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty" }, "No data yet"));
    return figure;
  }
  const t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(t0 + 1000, ...all.map((p) => p[0]));
  const top = Math.max(1, ...all.map((p) => p[1]));
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  for (const v of [0, Math.round(top / 2), top]) {
    root.append(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "chart-grid" }));
    root.append(svg("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end", class: "chart-axis" }, String(v)));
  }
  const clock = (t) => new Date(t).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  root.append(svg("text", { x: PAD.left, y: H - 8, class: "chart-axis" }, clock(t0)));
  root.append(svg("text", { x: W - PAD.right, y: H - 8, "text-anchor": "end", class: "chart-axis" }, clock(t1)));
  const legend = document.createElement("figcaption");
  for (const s of series) {
    const sorted = [...s.points].sort((a, b) => a[0] - b[0]);
    const item = document.createElement("span");
    item.className = `legend ${s.className}`;
    item.textContent = sorted.length ? `${s.name}: ${sorted[sorted.length - 1][1]}` : `${s.name}: no data`;
    legend.append(item);
    if (!sorted.length) continue;
    const steps = [];
    sorted.forEach(([t, v], i) => {
      if (i) steps.push(`${x(t).toFixed(1)},${y(sorted[i - 1][1]).toFixed(1)}`);
      steps.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`);
    });
    steps.push(`${x(t1).toFixed(1)},${y(sorted[sorted.length - 1][1]).toFixed(1)}`);
    root.append(svg("polyline", { points: steps.join(" "), class: `chart-line ${s.className}`, "data-series": s.testid, "data-last": sorted[sorted.length - 1][1] }));
  }
  figure.append(legend);
  return figure;
}
