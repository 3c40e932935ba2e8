// A small line chart in SVG, drawn from numbers only (no markup from data): up to the last 15
// minutes of one-second points (less while the server has not run that long, so a new server's
// first minute fills the chart), one line per series, the y axis scaled to the largest value shown.

const NS = "http://www.w3.org/2000/svg";
const W = 600, H = 160, LEFT = 48, BOTTOM = 18, TOP = 8, RIGHT = 8;

function svg(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

export class LineChart {
  // series: [{name, className}]; format: a function of a y value, for the axis and the legend.
  constructor(title, series, format, windowSeconds) {
    this.series = series;
    this.format = format;
    this.window = windowSeconds;
    this.el = document.createElement("figure");
    this.el.className = "chart";
    const caption = document.createElement("figcaption");
    caption.textContent = title;
    this.legend = document.createElement("span");
    this.legend.className = "legend";
    caption.appendChild(this.legend);
    this.svg = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, preserveAspectRatio: "none" });
    this.el.append(caption, this.svg);
  }

  // points: [{at, values: [number|null per series]}], oldest first.
  draw(points) {
    const svgEl = this.svg;
    while (svgEl.firstChild) svgEl.removeChild(svgEl.firstChild);
    const end = points.length ? points[points.length - 1].at : Date.now() / 1000;
    const span = points.length ? Math.min(this.window, Math.max(60, end - points[0].at)) : this.window;
    const start = end - span;
    let top = 0;
    for (const p of points) for (const v of p.values) if (v !== null && v > top) top = v;
    top = niceMax(top);
    const x = (at) => LEFT + ((at - start) / span) * (W - LEFT - RIGHT);
    const y = (v) => TOP + (1 - v / top) * (H - TOP - BOTTOM);
    for (const frac of [0, 0.5, 1]) {
      svgEl.appendChild(svg("line", { x1: LEFT, x2: W - RIGHT, y1: y(top * frac), y2: y(top * frac), class: "grid" }));
      svgEl.appendChild(svg("text", { x: LEFT - 4, y: y(top * frac) + 4, class: "axis", "text-anchor": "end" },
        this.format(top * frac)));
    }
    const ago = (seconds) => (seconds >= 120 ? `-${Math.round(seconds / 60)} min` : `-${Math.round(seconds)} s`);
    for (const [label, at] of [[ago(span), start], [ago(span / 2), end - span / 2], ["now", end]]) {
      svgEl.appendChild(svg("text", { x: x(at), y: H - 4, class: "axis", "text-anchor": label === "now" ? "end" : "middle" }, label));
    }
    this.series.forEach((s, i) => {
      let d = "";
      let drawing = false;
      for (const p of points) {
        const v = p.values[i];
        if (v === null || p.at < start) {
          drawing = false;
          continue;
        }
        d += `${drawing ? "L" : "M"}${x(p.at).toFixed(1)},${y(v).toFixed(1)}`;
        drawing = true;
      }
      if (d) svgEl.appendChild(svg("path", { d, class: `line ${s.className}` }));
    });
    const last = points.length ? points[points.length - 1].values : [];
    while (this.legend.firstChild) this.legend.removeChild(this.legend.firstChild);
    this.series.forEach((s, i) => {
      const item = document.createElement("span");
      item.className = `key ${s.className}`;
      const v = last[i];
      item.textContent = `${s.name} ${v === null || v === undefined ? "-" : this.format(v)}`;
      this.legend.appendChild(item);
    });
  }
}
