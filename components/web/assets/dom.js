// DOM and formatting helpers. Every text reaches the page through textContent, never innerHTML,
// so nothing a lead typed can run as markup. Numbers, money and dates are written in the
// browser's locale (Intl with navigator.language); words come from words.js.

import { LOCALE, t } from "./words.js";

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

const integer = new Intl.NumberFormat(LOCALE);
export const count = (n) => integer.format(Number(n) || 0);

const percentage = new Intl.NumberFormat(LOCALE, { style: "percent", maximumFractionDigits: 2 });

/** A rate in [0, 1] as a percentage with at most two decimals: 0.6667 → "66.67%" (in en). */
export function percent(rate) {
  return percentage.format(Math.round((Number(rate) || 0) * 10000) / 10000);
}

/** part / whole as a percentage, "–" when there is no whole. */
export function share(part, whole) {
  return whole > 0 ? percent(Math.round((part / whole) * 10000) / 10000) : "–";
}

/**
 * An amount in the currency it was sold in (an ISO code such as "EUR"); without a currency (a
 * sale that named none), the number alone.
 */
export function money(cents, currency) {
  const value = (Number(cents) || 0) / 100;
  if (typeof currency === "string" && /^[A-Z]{3}$/.test(currency)) {
    try {
      return new Intl.NumberFormat(LOCALE, { style: "currency", currency }).format(value);
    } catch {
      // A code this browser does not know: the number and the code.
    }
    return `${new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(value)} ${currency}`;
  }
  return new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(value);
}

/** Totals per currency ([{currency, cents}]) side by side; "" when there are none. */
export const moneys = (list) => (Array.isArray(list) ? list : []).map((m) => money(m.cents, m.currency)).join(" · ");

export function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso ?? "");
  return date.toLocaleString(LOCALE, { dateStyle: "medium", timeStyle: "short" });
}

/** A `YYYY-MM-DD` day in the browser's locale (the day itself, whatever the time zone). */
export function day(text) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(text ?? ""));
  if (!match) return String(text ?? "");
  const date = new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
  return date.toLocaleDateString(LOCALE, { dateStyle: "medium", timeZone: "UTC" });
}

/** A time of day in the browser's locale. */
export const clock = (date) => date.toLocaleTimeString(LOCALE, { hour: "2-digit", minute: "2-digit" });

export const stageName = (stage) => (stage ? t(`stage_${stage}`) : "");

/** A status line that clears itself after a while. */
export function flash(node, text, kind = "ok") {
  node.textContent = text;
  node.dataset.kind = kind;
  node.hidden = false;
  clearTimeout(node._timer);
  if (kind === "ok") node._timer = setTimeout(() => (node.hidden = true), 8000);
}
