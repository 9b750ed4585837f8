// The daily chart: captures as bars, conversions as a line with dots, drawn as inline SVG from
// the stats' `daily` series. Sizes are SVG attributes (never inline styles), so the page's CSP
// needs no exception. The figure is focusable: the arrow keys walk the days (app.js), and the
// same figures are a table beside it (chartRows).

import { t } from "./words.js";
import { count, day as dayText } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

/** A round upper bound for the y axis: 1, 2, 5, 10, 20, 50, … */
function niceMax(value) {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (value <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}

/**
 * An <svg> for `daily` ([{day, leads, conversions, …}]), `width` CSS pixels wide so its text
 * keeps its size on a phone and on a wide screen alike.
 */
export function dailyChart(daily, width = 640) {
  const days = Array.isArray(daily) ? daily : [];
  width = Math.max(280, Math.round(width));
  const height = width < 500 ? 160 : 200;
  const pad = { top: 12, right: 8, bottom: 24, left: 36 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const top = niceMax(Math.max(0, ...days.map((d) => Math.max(d.leads ?? 0, d.conversions ?? 0))));
  const slot = plotW / Math.max(days.length, 1);
  const barW = Math.max(1, slot * 0.7);
  const y = (v) => pad.top + plotH - (v / top) * plotH;
  const totalLeads = days.reduce((n, d) => n + (d.leads ?? 0), 0);
  const totalConversions = days.reduce((n, d) => n + (d.conversions ?? 0), 0);

  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": t("chart_label", { leads: count(totalLeads), conversions: count(totalConversions), days: days.length }),
    "data-days": days.length,
  });
  // Grid lines and y labels at 0, half and the top.
  for (const v of [0, top / 2, top]) {
    root.append(
      svg("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: "grid" }),
      svg("text", { x: pad.left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, Number.isInteger(v) ? v : v.toFixed(1)),
    );
  }
  const bars = svg("g", { class: "bars" });
  const points = [];
  days.forEach((d, i) => {
    const leads = d.leads ?? 0;
    const conversions = d.conversions ?? 0;
    const x = pad.left + i * slot + (slot - barW) / 2;
    const bar = svg(
      "rect",
      {
        x: x.toFixed(2),
        y: y(leads).toFixed(2),
        width: barW.toFixed(2),
        height: Math.max(0, pad.top + plotH - y(leads)).toFixed(2),
        class: "bar",
        "data-index": i,
        "data-day": d.day,
        "data-leads": leads,
        "data-conversions": conversions,
      },
      svg("title", {}, dayLine(d)),
    );
    bars.append(bar);
    points.push([pad.left + i * slot + slot / 2, y(conversions)]);
  });
  root.append(bars);
  if (points.length > 1) {
    root.append(svg("polyline", { points: points.map(([px, py]) => `${px.toFixed(2)},${py.toFixed(2)}`).join(" "), class: "line" }));
  }
  const dots = svg("g", { class: "dots" });
  points.forEach(([px, py], i) => {
    if ((days[i].conversions ?? 0) > 0) dots.append(svg("circle", { cx: px.toFixed(2), cy: py.toFixed(2), r: 3, class: "dot" }));
  });
  root.append(dots);
  if (days.length > 0) {
    const first = days[0].day;
    const last = days[days.length - 1].day;
    root.append(
      svg("text", { x: pad.left, y: height - 6, class: "axis", "text-anchor": "start" }, dayText(first)),
      svg("text", { x: width - pad.right, y: height - 6, class: "axis", "text-anchor": "end" }, dayText(last)),
    );
  }
  return root;
}

/** One day of the series in words: "Nov 21, 2026: 2 captured, 0 converted". */
export function dayLine(d) {
  return t("chart_day", { day: dayText(d.day), leads: count(d.leads ?? 0), conversions: count(d.conversions ?? 0) });
}

/** The chart's figures as table rows (day, captured, converted). */
export function chartRows(daily, el) {
  return (Array.isArray(daily) ? daily : []).map((d) =>
    el("tr", { "data-day": d.day }, el("th", { scope: "row" }, dayText(d.day)), el("td", {}, count(d.leads ?? 0)), el("td", {}, count(d.conversions ?? 0))),
  );
}
