// The dashboard token and the calls to /v1/dashboard/*. The token arrives in the URL fragment
// (#token=…), which browsers never send to a server, lives in sessionStorage for this tab only,
// and is removed from the address bar at once. The page decides whether a link's token replaces
// the session (app.js asks first when it names another tenant).

import { t, LOCALE } from "./words.js";

const KEY = "clientflow.dashboard-token";

/** An API answer that is not 2xx, carrying the problem+json `detail` and `code`. */
export class ApiProblem extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
  /** The token itself was refused: the page must ask to sign in again. */
  get signsOut() {
    return this.status === 401 || this.code === "token_scope" || this.code === "tenant_suspended";
  }
}

/** Takes a `#token=` fragment out of the address bar; returns its token, or null. */
export function takeTokenFromUrl() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = fragment.get("token");
  if (location.hash) {
    history.replaceState(null, "", location.pathname + location.search);
  }
  return token === null ? null : token.trim();
}

export function setToken(token) {
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
}

export const token = () => sessionStorage.getItem(KEY);

function base64UrlJson(part) {
  const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** The tenant a token names (its `sub`), read without verifying it; null when it names none. */
export function subOf(raw) {
  try {
    const sub = base64UrlJson(String(raw ?? "").split(".")[1] ?? "")?.sub;
    return typeof sub === "string" ? sub : null;
  } catch {
    return null;
  }
}

/** Seconds a token's `exp` is honoured after it passes: the API allows this much clock skew. */
export const CLOCK_SKEW_SECS = 60;

/**
 * What the token says about itself, read without verifying it (the API verifies every call).
 * Returns { claims } or { problem: "why it cannot be a dashboard token" }.
 */
export function inspect(raw) {
  const parts = String(raw ?? "").split(".");
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) {
    return { problem: t("token_malformed") };
  }
  let claims;
  try {
    claims = base64UrlJson(parts[1]);
  } catch {
    return { problem: t("token_unreadable") };
  }
  if (claims === null || typeof claims !== "object") {
    return { problem: t("token_unreadable") };
  }
  if (claims.scope !== "dashboard") {
    return { problem: t("token_scope", { scope: String(claims.scope ?? "unknown") }) };
  }
  if (typeof claims.exp === "number" && (claims.exp + CLOCK_SKEW_SECS) * 1000 <= Date.now()) {
    return { problem: expiredText(claims.exp), expired: true };
  }
  return { claims };
}

export function expiredText(exp) {
  return exp ? t("expired_at", { at: new Date(exp * 1000).toLocaleString(LOCALE) }) : t("expired");
}

async function problemOf(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // Not problem+json (a proxy's page, say): fall back to the status line.
  }
  const detail = body && typeof body.detail === "string" ? body.detail : t("server_answered", { status: `${resp.status} ${resp.statusText}` });
  const code = body && typeof body.code === "string" ? body.code : `http_${resp.status}`;
  return new ApiProblem(resp.status, code, detail);
}

/**
 * Calls the dashboard API with the session's token (or `as`, another token); resolves to the
 * Response, throws ApiProblem on anything else.
 */
export async function call(path, { method = "GET", json, as } = {}) {
  const headers = { authorization: `Bearer ${as ?? token() ?? ""}`, accept: "application/json" };
  const init = { method, headers, cache: "no-store" };
  if (json !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiProblem(0, "network", t("network"));
  }
  if (!resp.ok) throw await problemOf(resp);
  return resp;
}

export async function getJson(path, options) {
  return (await call(path, options)).json();
}
