// DOM and formatting helpers. Every text reaches the page through textContent, never innerHTML,
// so nothing a lead typed can run as markup.

export const $ = (selector, root = document) => root.querySelector(selector);

/** Creates an element: el("td", { class: "x", "data-label": "Email" }, "text", child, …). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Replaces every child of `node`. */
export function fill(node, ...children) {
  node.replaceChildren();
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
}

export function show(node, visible = true) {
  node.hidden = !visible;
}

const integer = new Intl.NumberFormat("en-US");
export const count = (n) => integer.format(Number(n) || 0);

/** A rate in [0, 1] as a percentage with at most two decimals: 0.6667 → "66.67%". */
export function percent(rate) {
  const value = Math.round((Number(rate) || 0) * 10000) / 100;
  return `${value}%`;
}

/** part / whole as a percentage, "–" when there is no whole. */
export function share(part, whole) {
  return whole > 0 ? percent(Math.round((part / whole) * 10000) / 10000) : "–";
}

export function money(cents) {
  return new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" }).format((Number(cents) || 0) / 100);
}

export function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso ?? "");
  return date.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

const STAGES = { new: "New", nurturing: "Nurturing", engaged: "Engaged", converted: "Converted", retained: "Retained" };
export const stageName = (stage) => STAGES[stage] ?? String(stage ?? "");

/** A status line that clears itself after a while. */
export function flash(node, text, kind = "ok") {
  node.textContent = text;
  node.dataset.kind = kind;
  node.hidden = false;
  clearTimeout(node._timer);
  if (kind === "ok") node._timer = setTimeout(() => (node.hidden = true), 8000);
}
