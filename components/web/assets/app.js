// The IB's dashboard: one page over /v1/dashboard/*. It starts signed out unless the tab holds a
// dashboard token, and every refusal of that token brings the sign-in message back with a reason.
// The header names the tenant signed in, and a link whose token names another tenant asks
// before it replaces the session, so a link cannot silently sign an IB into someone else's
// dashboard (whose form snippet would send the IB's leads there).

import { $, el, fill, show, count, percent, share, money, moneys, when, day, clock, stageName, flash } from "./dom.js";
import { ApiProblem, takeTokenFromUrl, setToken, token, subOf, inspect, expiredText, call, getJson } from "./api.js";
import { dailyChart, dayLine, chartRows } from "./chart.js";
import { t, plural, translatePage, LANGUAGE } from "./words.js";

const PAGE_SIZE = 25;
/** How often the figures are read again while the tab is visible. */
const REFRESH_MS = 60_000;
/** The lead list's filters besides search and stage, as the API names them. */
const LIST_FILTERS = ["from", "to", "source", "sync", "tag", "sort"];
/** The stats breakdowns the page shows; each row filters the list by its own parameter. */
const FACETS = ["ib_type", "volume", "utm_source"];
const state = {
  days: 30,
  range: null,
  daily: null,
  chartIndex: null,
  claims: null,
  me: null,
  cursor: null,
  q: "",
  stage: "",
  filters: {},
  facet: null,
  leadsSeq: 0,
  lead: null,
  captureToken: null,
  // The saved captcha ({provider, site_key, secret_set} or null): the snippet names it.
  captcha: null,
  // The settings as last read: the workflows list their tag rules.
  settings: null,
  // GET /v1/dashboard/alerts as last read, and the rule the editor changes (null: a new one).
  alerts: null,
  alertEditing: null,
  // The tenant whose signing secret the page shows (once), so another tenant's page never shows it.
  secretTenant: null,
  refreshedAt: 0,
};

// ---- signing in and out ----

function signIn(reason) {
  setToken(null);
  state.claims = null;
  clearData();
  show($("#loading"), false);
  show($("#dashboard"), false);
  show($("#sign-out"), false);
  $("#session").textContent = "";
  showTenant(null);
  const why = $("#sign-in-reason");
  why.textContent = reason ?? "";
  show(why, Boolean(reason));
  show($("#sign-in"));
}

/** Nothing of a previous session stays on the page. */
function clearData() {
  for (const li of document.querySelectorAll("#funnel li")) {
    li.querySelector(".count").textContent = "–";
    li.querySelector(".rate").textContent = "";
    li.querySelector(".sub").textContent = "";
  }
  for (const li of document.querySelectorAll("#funnel li .delta")) li.textContent = "";
  for (const id of ["#kpis", "#health", "#chart", "#chart-table tbody", "#breakdowns", "#workflows", "#leads tbody", "#lead-fields", "#lead-timeline"]) fill($(id));
  $("#chart-readout").textContent = "";
  $("#updated").textContent = "";
  state.me = null;
  $("#lead-total").textContent = "–";
  $("#window").textContent = "";
  $("#snippet").value = "";
  for (const id of ["#allowed-origins", "#thank-you-url", "#tag-rules"]) $(id).value = "";
  $("#funnel-ids").textContent = "";
  state.captureToken = null;
  state.cursor = null;
  state.daily = null;
  state.chartIndex = null;
  state.facet = null;
  show($("#lead-facet"), false);
  state.settings = null;
  state.alerts = null;
  closeAlertForm();
  for (const id of ["#alert-rules", "#deliveries tbody"]) fill($(id));
  $("#alert-limits").textContent = "";
  clearSecret();
  for (const id of ["#alert-secret-set", "#alert-rotate", "#alert-rotate-confirm", "#alert-error", "#alert-status", "#delivery-status"]) show($(id), false);
  if ($("#lead-dialog").open) $("#lead-dialog").close();
}

/** Why the API refused the token, in words for the sign-in message. */
function refusal(problem) {
  if (problem.code === "token_expired") return expiredText(state.claims?.exp);
  return t("refused", { detail: problem.detail });
}

/** Shows an error where it belongs; a refused token signs out instead. */
function report(error, target = $("#error")) {
  if (error instanceof ApiProblem && error.signsOut) {
    signIn(refusal(error));
    return;
  }
  const detail = error instanceof ApiProblem ? error.detail : t("page_error", { detail: error?.message ?? error });
  clearTimeout(target._timer);
  target.textContent = detail;
  target.dataset.kind = "error";
  target.hidden = false;
}

// ---- whose dashboard ----

/** Names the signed-in tenant in the header; `null` clears it. */
function showTenant(me) {
  $("#tenant-name").textContent = me?.name ?? "";
  $("#tenant-prefix").textContent = me?.tag_prefix ?? "";
  if (me) $("#tenant").dataset.tenantId = me.tenant_id;
  else delete $("#tenant").dataset.tenantId;
  document.title = me ? t("title_tenant", { name: me.name }) : t("title_default");
  show($("#tenant"), Boolean(me));
}

async function loadMe() {
  state.me = await getJson("/v1/dashboard/me");
  showTenant(state.me);
}

/** "Name (ib-xxxxxxxx-)" of a token's tenant, as the API names it; what the token says if refused. */
async function whoIs(raw) {
  try {
    const me = await getJson("/v1/dashboard/me", { as: raw });
    return `${me.name} (${me.tag_prefix})`;
  } catch {
    const sub = subOf(raw);
    return sub ? t("tenant_of", { sub }) : t("unknown_account");
  }
}

/** Asks whether a link's token of another tenant may replace the session; resolves true if so. */
async function confirmSwitch(incoming) {
  const [current, next] = await Promise.all([whoIs(token()), whoIs(incoming)]);
  $("#switch-detail").textContent = t("switch_detail", { next, current });
  $("#switch-current").textContent = current;
  show($("#loading"), false);
  show($("#switch"));
  $("#switch-no").focus();
  const yes = await new Promise((resolve) => {
    $("#switch-yes").onclick = () => resolve(true);
    $("#switch-no").onclick = () => resolve(false);
  });
  show($("#switch"), false);
  show($("#loading"));
  return yes;
}

/**
 * A link's token replaces the session silently when there is none or it names the same tenant
 * (a fresh token); a token of another tenant replaces it only if the IB says so.
 */
async function adopt(incoming) {
  const current = token();
  const currentSub = subOf(current);
  if (current && currentSub !== null && subOf(incoming) !== currentSub && !(await confirmSwitch(incoming))) return;
  setToken(incoming);
}

async function boot() {
  show($("#sign-in"), false);
  show($("#dashboard"), false);
  show($("#switch"), false);
  show($("#loading"));
  const incoming = takeTokenFromUrl();
  if (incoming !== null) await adopt(incoming);
  const raw = token();
  if (state.secretTenant !== null && state.secretTenant !== subOf(raw)) clearSecret();
  if (!raw) return signIn(null);
  const seen = inspect(raw);
  if (seen.problem) return signIn(seen.problem);
  state.claims = seen.claims;
  try {
    await Promise.all([loadStats(), loadMe()]);
  } catch (error) {
    if (error instanceof ApiProblem && error.signsOut) return signIn(refusal(error));
    show($("#loading"), false);
    show($("#dashboard"));
    return report(error);
  }
  $("#session").textContent = state.claims.exp ? t("session_until", { time: clock(new Date(state.claims.exp * 1000)) }) : t("signed_in");
  show($("#sign-out"));
  show($("#loading"), false);
  show($("#dashboard"));
  drawChart(); // now that the chart's box has a width
  $("#error").hidden = true;
  await Promise.all([
    loadLeads(true).catch((e) => report(e)),
    loadSettings().catch((e) => report(e)),
    loadCaptureKey().catch((e) => report(e)),
    loadAlerts(),
    loadDeliveries(),
  ]);
  document.body.dataset.ready = "true";
}

// ---- stats ----

async function loadStats() {
  const query = state.range ? `from=${state.range.from}&to=${state.range.to}` : `days=${state.days}`;
  const stats = await getJson(`/v1/dashboard/stats?${query}`);
  renderStats(stats);
  state.refreshedAt = Date.now();
  $("#updated").textContent = t("updated_at", { time: clock(new Date()) });
}

/** Reads the figures again when they are older than a minute and the tab is visible. */
function refreshIfStale() {
  if (document.visibilityState !== "visible" || !state.claims || $("#dashboard").hidden) return;
  if (Date.now() - state.refreshedAt < REFRESH_MS - 1000) return;
  loadStats().catch((e) => report(e));
}

function step(name, value, rate, sub, delta) {
  const li = $(`#funnel li[data-step="${name}"]`);
  li.querySelector(".count").textContent = count(value);
  li.dataset.value = value;
  li.querySelector(".rate").textContent = rate;
  li.querySelector(".sub").textContent = sub;
  const shown = li.querySelector(".delta");
  shown.textContent = delta.text;
  shown.dataset.trend = delta.trend;
  shown.dataset.previous = delta.previous;
}

/**
 * A period figure beside the previous period's: the figure, then ▲/▼ and the change, or "new",
 * or "same". The funnel's counts are all-time totals, so the line names the period figure too.
 */
function delta(now, before, days, format = count) {
  const base = { previous: before, trend: "same", now: format(now), before: format(before), days };
  if (now === before) return { ...base, text: t("delta_same", base) };
  if (before === 0) return { ...base, trend: "up", text: t("delta_new", base) };
  const change = percent(Math.abs(now - before) / before);
  const up = now > before;
  return { ...base, trend: up ? "up" : "down", text: t(up ? "delta_up" : "delta_down", { ...base, change }) };
}

/**
 * Revenue beside the previous period's, one comparison per currency as sold: amounts in two
 * currencies are never added. The trend is "up" or "down" only when every currency agrees.
 */
function revenueDelta(now, before, days) {
  const cents = (list) => new Map((Array.isArray(list) ? list : []).map((m) => [m.currency ?? "", Number(m.cents) || 0]));
  const a = cents(now);
  const b = cents(before);
  const currencies = [...new Set([...a.keys(), ...b.keys()])];
  if (currencies.length === 0) return { previous: "", trend: "same", text: t("delta_no_sales", { days }) };
  const parts = currencies.map((currency) => {
    const code = currency || null;
    return delta(a.get(currency) ?? 0, b.get(currency) ?? 0, days, (c) => money(c, code));
  });
  const trends = new Set(parts.map((p) => p.trend).filter((trend) => trend !== "same"));
  return {
    previous: moneys(before),
    trend: trends.size === 1 ? [...trends][0] : trends.size === 0 ? "same" : "mixed",
    text: parts.map((p) => p.text).join(" · "),
  };
}

function kpi(name, label, value, text, kind, compared) {
  return el(
    "div",
    { "data-kpi": name, "data-value": value, class: kind },
    el("dt", {}, label),
    el("dd", {}, text),
    compared ? el("dd", { class: "delta", "data-trend": compared.trend, "data-previous": compared.previous }, compared.text) : null,
  );
}

function renderStats(s) {
  const f = s.funnel;
  const now = s.period;
  const before = s.previous;
  const days = before.days;
  const revenue = moneys(now.revenue) || t("no_revenue");
  step("capture", f.capture, t("all_leads"), t("capture_sub", { month: count(s.leads.this_month), week: count(s.leads.last_7_days) }), delta(now.leads, before.leads, days));
  step("nurture", f.nurture, t("of_captured", { share: share(f.nurture, f.capture) }), t("emails_sent_sub", { n: count(s.emails.sent) }), delta(now.emails_sent, before.emails_sent, days));
  step("convert", f.convert, t("of_captured", { share: share(f.convert, f.capture) }), t("converted_sub", { n: count(s.conversions.in_window) }), delta(now.conversions, before.conversions, days));
  step("retain", f.retain, t("of_converted", { share: share(f.retain, f.convert) }), t("revenue_sub", { money: revenue }), revenueDelta(now.revenue, before.revenue, days));
  fill(
    $("#kpis"),
    kpi("captured", t("kpi_captured"), now.leads, count(now.leads), "", delta(now.leads, before.leads, days)),
    kpi("emails_sent", t("kpi_emails_sent"), s.emails.sent, count(s.emails.sent), "", delta(now.emails_sent, before.emails_sent, days)),
    kpi("emails_opened", t("kpi_opened"), s.emails.opened, count(s.emails.opened), "", delta(now.emails_opened, before.emails_opened, days)),
    kpi("emails_clicked", t("kpi_clicked"), s.emails.clicked, count(s.emails.clicked), "", delta(now.emails_clicked, before.emails_clicked, days)),
    kpi("open_rate", t("kpi_open_rate"), s.emails.open_rate, percent(s.emails.open_rate)),
    kpi("click_rate", t("kpi_click_rate"), s.emails.click_rate, percent(s.emails.click_rate)),
    kpi("conversion_rate", t("kpi_conversion_rate"), s.conversions.rate, percent(s.conversions.rate)),
    // Each currency as sold, side by side: amounts in different currencies are never added.
    kpi("revenue", t("kpi_revenue"), s.revenue_cents, moneys(now.revenue) || t("no_revenue"), "", revenueDelta(now.revenue, before.revenue, days)),
  );
  const sync = s.sync;
  fill(
    $("#health"),
    kpi("synced", t("synced"), sync.synced, count(sync.synced), "good"),
    kpi("pending", t("pending"), sync.pending, count(sync.pending), sync.pending > 0 ? "warn" : ""),
    kpi("failed", t("failed"), sync.failed, count(sync.failed), sync.failed > 0 ? "bad" : ""),
    kpi("held", t("held"), sync.held, count(sync.held), sync.held > 0 ? "warn" : ""),
    kpi("spam", t("spam"), s.spam, count(s.spam)),
  );
  $("#lead-total").textContent = count(s.leads.total);
  $("#lead-total").dataset.value = s.leads.total;
  $("#window").textContent = t("window", { from: day(s.window.from), to: day(s.window.to) });
  $("#window").dataset.from = s.window.from;
  $("#window").dataset.to = s.window.to;
  if (!state.range) {
    $("#range-from").value = s.window.from;
    $("#range-to").value = s.window.to;
  }
  renderBreakdowns(s.breakdowns);
  state.daily = s.daily;
  if (state.chartIndex !== null && state.chartIndex >= s.daily.length) state.chartIndex = null;
  fill($("#chart-table tbody"), chartRows(s.daily, el));
  drawChart();
}

function drawChart() {
  fill($("#chart"), dailyChart(state.daily, $("#chart").clientWidth || 640));
  markChartDay();
}

/** Highlights the day the keyboard is on and reads it out. */
function markChartDay() {
  const days = state.daily ?? [];
  for (const bar of document.querySelectorAll("#chart rect.bar.active")) bar.classList.remove("active");
  if (state.chartIndex === null || !days[state.chartIndex]) {
    $("#chart-readout").textContent = "";
    return;
  }
  document.querySelector(`#chart rect.bar[data-index="${state.chartIndex}"]`)?.classList.add("active");
  $("#chart-readout").textContent = dayLine(days[state.chartIndex]);
}

function chartKey(event) {
  const last = (state.daily?.length ?? 0) - 1;
  if (last < 0) return;
  const at = state.chartIndex ?? last + 1;
  const next = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: last }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  state.chartIndex = Math.min(last, Math.max(0, next));
  markChartDay();
}

// ---- breakdowns ----

/** A breakdown's title: its word, or the API's name for a breakdown the words do not know. */
function facetName(facet) {
  const word = t(`facet_${facet}`);
  return word === `facet_${facet}` ? facet : word;
}

/**
 * Every breakdown the stats answer, the known ones first. A row of a breakdown the lead list
 * filters by (FACETS) is a button that lists its leads; the active one is pressed.
 */
function renderBreakdowns(breakdowns) {
  const names = Object.keys(breakdowns ?? {}).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const groups = names.map((facet) => {
    const buckets = Array.isArray(breakdowns[facet]) ? breakdowns[facet] : [];
    const rows = buckets.map((b) => {
      const value = b.value ?? t("no_value");
      const text = t(plural("bucket", b.leads), { value, n: count(b.leads) });
      // A row without a value is no filter the list can apply: it is shown, not offered.
      if (b.value === null || !FACETS.includes(facet)) return el("li", { "data-value": b.value ?? "" }, el("span", { class: "muted" }, text));
      const pressed = state.facet?.name === facet && state.facet.value === b.value;
      return el(
        "li",
        { "data-value": b.value },
        el("button", { type: "button", class: "link", "data-facet": facet, "data-value": b.value, "data-leads": b.leads, "aria-pressed": String(pressed) }, text),
      );
    });
    return el(
      "div",
      { class: "breakdown", "data-breakdown": facet },
      el("h3", {}, facetName(facet)),
      rows.length ? el("ul", {}, rows) : el("p", { class: "muted" }, t("no_breakdown")),
    );
  });
  fill($("#breakdowns"), groups);
}

const rank = (facet) => (FACETS.includes(facet) ? FACETS.indexOf(facet) : FACETS.length);

/** Lists the leads of one breakdown row (one at a time), or every lead again with `null`. */
function filterByFacet(facet) {
  state.facet = facet;
  for (const button of document.querySelectorAll("#breakdowns button[data-facet]")) {
    const on = Boolean(facet) && button.dataset.facet === facet.name && button.dataset.value === facet.value;
    button.setAttribute("aria-pressed", String(on));
  }
  show($("#lead-facet"), Boolean(facet));
  $("#lead-facet-text").textContent = facet ? t("filter_active", { facet: facetName(facet.name), value: facet.value }) : "";
  loadLeads(true);
}

// ---- leads ----

function leadRow(lead) {
  const open = el("button", { type: "button", class: "link", "data-open": lead.id }, lead.email);
  return el(
    "tr",
    { "data-id": lead.id },
    el("td", { "data-label": t("col_email"), class: "email" }, open),
    el("td", { "data-label": t("col_name") }, lead.name ?? ""),
    el("td", { "data-label": t("col_ib_type") }, lead.ib_type ?? ""),
    el("td", { "data-label": t("col_volume") }, lead.monthly_leads ?? lead.volume ?? ""),
    el("td", { "data-label": t("col_stage") }, el("span", { class: `badge stage-${lead.stage}` }, stageName(lead.stage))),
    el("td", { "data-label": t("col_sync") }, el("span", { class: `badge sync-${lead.sync_status}` }, t(`sync_${lead.sync_status}`))),
    el("td", { "data-label": t("col_consent"), class: "consent" }, lead.consent ? t("yes") : t("no")),
    el("td", { "data-label": t("col_captured_at"), class: "captured" }, el("time", { datetime: lead.created_at }, when(lead.created_at))),
  );
}

/** The list's filters as query parameters; the CSV export sends the same. */
function listParams() {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  if (state.stage) params.set("stage", state.stage);
  for (const name of LIST_FILTERS) {
    if (state.filters[name]) params.set(name, state.filters[name]);
  }
  if (state.facet) params.set(state.facet.name, state.facet.value);
  return params;
}

/** A tag as the IB types it: its suffix (webinar) or the whole tag; the API matches whole tags. */
function wholeTag(text) {
  const prefix = state.me?.tag_prefix ?? "";
  return text && prefix && !text.startsWith(prefix) ? `${prefix}${text}` : text;
}

function readFilters() {
  state.q = $("#lead-q").value.trim();
  state.stage = $("#lead-stage").value;
  state.filters = {
    from: $("#lead-from").value,
    to: $("#lead-to").value,
    source: $("#lead-source").value,
    sync: $("#lead-sync").value,
    tag: wholeTag($("#lead-tag").value.trim()),
    sort: $("#lead-sort").value === "oldest" ? "oldest" : "",
  };
  const oldest = state.filters.sort === "oldest";
  $("#captured-col").setAttribute("aria-sort", oldest ? "ascending" : "descending");
  $("#sort-arrow").textContent = oldest ? "▲" : "▼";
}

async function loadLeads(reset) {
  const seq = ++state.leadsSeq;
  const params = listParams();
  params.set("limit", String(PAGE_SIZE));
  if (!reset && state.cursor) params.set("cursor", state.cursor);
  $("#load-more").disabled = true;
  try {
    const page = await getJson(`/v1/dashboard/leads?${params}`);
    if (seq !== state.leadsSeq) return; // a newer search answered first
    const body = $("#leads tbody");
    if (reset) fill(body);
    body.append(...page.leads.map(leadRow));
    state.cursor = page.next_cursor;
    show($("#load-more"), Boolean(page.next_cursor));
    show($("#leads-empty"), body.children.length === 0);
    $("#leads").dataset.rows = body.children.length;
    $("#lead-status").hidden = true;
  } catch (error) {
    report(error, $("#lead-status"));
  } finally {
    $("#load-more").disabled = false;
  }
}

function field(label, value) {
  if (value === null || value === undefined || value === "") return [];
  return [el("dt", {}, label), el("dd", {}, value)];
}

function describe(detail) {
  if (!detail || typeof detail !== "object") return "";
  return Object.entries(detail)
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(" · ");
}

async function openLead(id) {
  const dialog = $("#lead-dialog");
  state.lead = id;
  $("#lead-error").hidden = true;
  show($("#erase-confirm"), false);
  show($("#erase"));
  show($("#retry-sync"), false);
  let lead;
  try {
    lead = await getJson(`/v1/dashboard/leads/${encodeURIComponent(id)}`);
  } catch (error) {
    return report(error);
  }
  $("#lead-title").textContent = lead.email;
  show($("#retry-sync"), lead.sync_status === "failed");
  fill(
    $("#lead-fields"),
    field(t("f_name"), lead.name),
    field(t("f_phone"), lead.phone),
    field(t("f_ib_type"), lead.ib_type),
    field(t("f_monthly_leads"), lead.monthly_leads),
    field(t("f_broker_network"), lead.broker_network),
    field(t("f_stage"), stageName(lead.stage)),
    field(t("f_sync"), t("f_sync_value", { status: t(`sync_${lead.sync_status}`), n: count(lead.sync_attempts ?? 0) })),
    // Why a held lead is not sent: no consent under the tenant's rule, or over the plan's quota.
    field(t("f_held"), lead.held_for ? t(`held_${lead.held_for}`) : null),
    field(t("f_sync_error"), lead.sync_error),
    field(t("f_form"), lead.form),
    field(t("f_source"), lead.source ? t(`source_${lead.source}`) : null),
    field(t("f_utm"), [lead.utm_source, lead.utm_medium, lead.utm_campaign, lead.utm_term, lead.utm_content].filter(Boolean).join(" / ")),
    field(t("f_ad_click"), [["gclid", lead.gclid], ["fbclid", lead.fbclid], ["ttclid", lead.ttclid]]
      .filter(([, id]) => id).map(([name, id]) => `${name} ${id}`).join(" · ")),
    field(t("f_referrer"), lead.referrer),
    field(t("f_page"), lead.page_url),
    field(t("f_consent"), lead.consent ? t("yes") : t("no")),
    field(t("f_emails"), t("f_emails_value", { sent: count(lead.emails_sent ?? 0), opened: count(lead.emails_opened ?? 0), clicked: count(lead.emails_clicked ?? 0) })),
    // Each currency as sold; a lead's sales in two currencies are two amounts.
    field(t("f_sales"), lead.sales ? `${count(lead.sales)} · ${moneys(lead.revenue) || money(lead.revenue_cents)}` : null),
    field(t("f_tags"), (lead.tags ?? []).join(", ")),
    // Stored, but not synced: the tenant's tag budget on the shared Systeme.io account is spent.
    field(t("f_kept_back"), (lead.tags_kept_back ?? []).join(", ")),
    field(t("f_captured"), when(lead.created_at)),
    field(t("f_updated"), when(lead.updated_at)),
  );
  fill(
    $("#lead-timeline"),
    (lead.timeline ?? []).map((entry) =>
      el("li", { "data-kind": entry.kind }, el("strong", {}, entry.kind.replace(/_/g, " ")), " ", el("time", { datetime: entry.at }, when(entry.at)), el("div", { class: "muted" }, describe(entry.detail))),
    ),
  );
  if (!dialog.open) dialog.showModal();
}

/** Queues a failed lead for the next sync batch, then shows it again. */
async function retrySync() {
  const id = state.lead;
  let lead;
  try {
    lead = await (await call(`/v1/dashboard/leads/${encodeURIComponent(id)}/retry`, { method: "POST" })).json();
  } catch (error) {
    return report(error, $("#lead-error"));
  }
  const row = document.querySelector(`#leads tbody tr[data-id="${CSS.escape(id)}"]`);
  if (row) row.replaceWith(leadRow(lead));
  await openLead(id);
  flash($("#lead-status"), t("retry_queued"));
  loadStats().catch((e) => report(e));
}

async function eraseLead() {
  const id = state.lead;
  try {
    await call(`/v1/dashboard/leads/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch (error) {
    return report(error, $("#lead-error"));
  }
  $("#lead-dialog").close();
  document.querySelector(`#leads tbody tr[data-id="${CSS.escape(id)}"]`)?.remove();
  const rows = $("#leads tbody").children.length;
  $("#leads").dataset.rows = rows;
  show($("#leads-empty"), rows === 0);
  flash($("#lead-status"), t("erased"));
  loadStats().catch((e) => report(e));
}

async function downloadCsv() {
  const status = $("#csv-status");
  try {
    // The file holds what the list shows: the same search, filters and order.
    const params = listParams();
    const resp = await call(`/v1/dashboard/leads.csv${params.size ? `?${params}` : ""}`);
    const blob = await resp.blob();
    const name = `leads-${new Date().toISOString().slice(0, 10)}.csv`;
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    flash(status, t("downloaded", { name, kb: count(Math.ceil(blob.size / 1024)) }));
  } catch (error) {
    report(error, status);
  }
}

// ---- settings ----

function fillSettings(settings) {
  $("#allowed-origins").value = (settings.allowed_origins ?? []).join("\n");
  $("#thank-you-url").value = settings.thank_you_url ?? "";
  $("#sync-requires-consent").checked = settings.sync_requires_consent === true;
  $("#tag-rules").value = Object.entries(settings.tag_rules ?? {})
    .map(([suffix, effect]) => `${suffix} = ${effect}`)
    .join("\n");
  const funnels = settings.funnel_ids ?? [];
  $("#funnel-ids").textContent = funnels.length ? funnels.join(", ") : t("funnel_ids_none");
  $("#funnel-ids").dataset.value = funnels.join(",");
  // The captcha secret is write-only: the API says only whether one is saved.
  state.captcha = settings.captcha ?? null;
  $("#captcha-provider").value = state.captcha?.provider ?? "";
  $("#captcha-site-key").value = state.captcha?.site_key ?? "";
  $("#captcha-secret").value = "";
  $("#min-fill-seconds").value = String(settings.min_fill_seconds ?? 0);
  showCaptchaFields();
  state.settings = settings;
  renderWorkflows();
  renderSnippet();
}

/** The key fields only with a provider chosen; the secret may stay empty while it is the saved one's. */
function showCaptchaFields() {
  const provider = $("#captcha-provider").value;
  show($("#captcha-keys"), provider !== "");
  const kept = Boolean(state.captcha?.secret_set) && state.captcha.provider === provider;
  $("#captcha-secret").placeholder = t(kept ? "captcha_secret_kept" : "captcha_secret_needed");
}

// ---- workflows ----

/**
 * The tenant's tag rules (its own, then the built-in ones it did not replace) as workflows, then
 * its alert rules ("When … → notify host").
 */
function renderWorkflows() {
  const settings = state.settings ?? {};
  const own = settings.tag_rules ?? {};
  const all = settings.effective_tag_rules ?? own;
  const prefix = state.me?.tag_prefix ?? "";
  const rules = Object.entries(all).sort(([a], [b]) => Number(b in own) - Number(a in own) || a.localeCompare(b));
  fill(
    $("#workflows"),
    rules.map(([suffix, effect]) =>
      el(
        "li",
        { "data-rule": suffix, "data-effect": effect, "data-own": String(suffix in own) },
        el("span", {}, t("workflow_rule", { tag: `${prefix}${suffix}` })),
        " → ",
        el("strong", {}, t(`effect_${effect}`)),
        " ",
        el("span", { class: "badge" }, t(suffix in own ? "workflow_yours" : "workflow_builtin")),
      ),
    ),
    (state.alerts?.rules ?? []).map((rule) => {
      const on = rule.enabled !== false && rule.status !== "disabled_failing";
      return el(
        "li",
        { "data-alert": rule.id, "data-enabled": String(on) },
        el("span", {}, t("workflow_alert", { when: whenText(rule.when) })),
        " → ",
        el("strong", {}, t("workflow_notify", { host: hostOf(rule.destination?.url) })),
        " ",
        el("span", { class: "badge" }, t(on ? "workflow_alert_badge" : "workflow_alert_off")),
      );
    }),
  );
}

async function loadSettings() {
  fillSettings(await getJson("/v1/dashboard/settings"));
}

function settingsError(name, text) {
  const target = $(`#error-${CSS.escape(name)}`) ?? $("#error-settings");
  target.textContent = text;
  target.hidden = false;
  // "captcha: site_key: …" marks the site key; otherwise the field's first input.
  const part = text.split(":")[1]?.trim() ?? "";
  const field = document.querySelector(`#settings [data-field="${CSS.escape(name)}"]`);
  const input = field && (field.querySelector(`[name="${CSS.escape(`${name}.${part}`)}"]`) ?? field.querySelector(":is(input, textarea, select)"));
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", target.id);
    input.focus();
  }
}

function clearSettingsErrors() {
  for (const p of document.querySelectorAll("#settings .field-error")) p.hidden = true;
  for (const i of document.querySelectorAll("#settings [aria-invalid]")) i.removeAttribute("aria-invalid");
}

async function saveSettings(event) {
  event.preventDefault();
  clearSettingsErrors();
  const lines = (text) => text.split("\n").map((l) => l.trim()).filter(Boolean);
  const tagRules = {};
  for (const [i, line] of lines($("#tag-rules").value).entries()) {
    const match = /^(.+?)\s*=\s*([a-z_]+)$/.exec(line);
    if (!match) return settingsError("tag_rules", t("tag_rules_line", { line: i + 1 }));
    tagRules[match[1]] = match[2];
  }
  // A number input reads "" for text it cannot parse: say so rather than save 0.
  if ($("#min-fill-seconds").validity.badInput) return settingsError("min_fill_seconds", t("min_fill_seconds_invalid"));
  // Funnel ids are the operator's: the PUT leaves them out, so they stay as they are.
  const body = {
    allowed_origins: lines($("#allowed-origins").value),
    thank_you_url: $("#thank-you-url").value.trim() || null,
    tag_rules: tagRules,
    sync_requires_consent: $("#sync-requires-consent").checked,
    // An empty number is 0 (off); anything else goes as typed and the API says what is wrong.
    min_fill_seconds: $("#min-fill-seconds").value.trim() === "" ? 0 : Number($("#min-fill-seconds").value),
  };
  // Off is null; on sends the secret only when one was typed, so a saved one is kept.
  const provider = $("#captcha-provider").value;
  if (provider) {
    const secret = $("#captcha-secret").value.trim();
    body.captcha = { provider, site_key: $("#captcha-site-key").value.trim(), ...(secret ? { secret } : {}) };
  } else {
    body.captcha = null;
  }
  try {
    const saved = await (await call("/v1/dashboard/settings", { method: "PUT", json: body })).json();
    fillSettings(saved);
    flash($("#settings-status"), t("saved"));
  } catch (error) {
    if (error instanceof ApiProblem && !error.signsOut && [400, 409, 422].includes(error.status)) {
      // The API's field errors start with the field's name: "thank_you_url: must be …".
      return settingsError(error.detail.split(":")[0].trim(), error.detail);
    }
    report(error, $("#error-settings"));
  }
}

// ---- alerts ----

/** The `when` fields each event takes, as the API names them; the editor shows only these. */
const ALERT_FIELDS = {
  "lead.captured": ["volume", "ib_type", "utm_source", "form", "tag"],
  "lead.stage": ["stage"],
  "lead.opened": ["opens"],
  sale: ["min_amount_cents", "currency"],
  digest: ["timezone"],
};

/** The browser's time zone, the digest's default. */
function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** The host a destination URL names; the URL itself if it cannot be read. */
function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return String(url ?? "");
  }
}

const conditions = new Intl.ListFormat(LANGUAGE, { style: "long", type: "conjunction" });

/** What fires a rule, as the end of a sentence that starts "When": "a new lead is captured with volume high (500+)". */
function whenText(when) {
  switch (when?.event) {
    case "lead.captured": {
      const parts = [];
      if (when.volume) parts.push(t(`cond_volume_${when.volume}`));
      for (const name of ["ib_type", "utm_source", "form", "tag"]) {
        if (when[name]) parts.push(t(`cond_${name}`, { value: when[name] }));
      }
      return parts.length ? t("when_captured_with", { conditions: conditions.format(parts) }) : t("when_captured");
    }
    case "lead.stage":
      return t("when_stage", { stage: stageName(when.stage).toLowerCase() });
    case "lead.opened":
      return t(plural("when_opened", when.opens), { n: count(when.opens) });
    case "sale": {
      const currency = typeof when.currency === "string" && when.currency ? when.currency : null;
      return t(currency ? "when_sale" : "when_sale_any", { amount: money(when.min_amount_cents, currency) });
    }
    case "digest":
      return t("when_digest", { timezone: when.timezone || "UTC" });
    default:
      return t("when_unknown", { event: String(when?.event ?? "") });
  }
}

/** A word of ours for a value of the API's; the value itself when the words do not know it. */
function wordOr(key, value) {
  const word = t(key);
  return word === key ? String(value ?? "") : word;
}

async function loadAlerts() {
  try {
    state.alerts = await getJson("/v1/dashboard/alerts");
  } catch (error) {
    return report(error, $("#alert-error"));
  }
  $("#alert-error").hidden = true;
  renderAlerts();
}

function renderAlerts() {
  const alerts = state.alerts ?? { rules: [] };
  const rules = Array.isArray(alerts.rules) ? alerts.rules : [];
  fill($("#alert-rules"), rules.map(ruleItem));
  show($("#alert-rules-empty"), rules.length === 0);
  const limits = alerts.limits ?? {};
  const today = Number(alerts.deliveries_today) || 0;
  $("#alert-limits").textContent = alerts.limits
    ? t("alert_limits", { rules: count(rules.length), max_rules: count(limits.rules), today: count(today), max_today: count(limits.deliveries_per_day) })
    : "";
  $("#alert-limits").dataset.deliveriesToday = today;
  // The secret box, once shown, stays until the IB hides it; otherwise the page says whether one is set.
  const secretShown = !$("#alert-secret-box").hidden;
  show($("#alert-secret-set"), Boolean(alerts.signing_secret_set) && !secretShown);
  show($("#alert-rotate"), Boolean(alerts.signing_secret_set) || secretShown);
  renderWorkflows();
}

function ruleStatus(rule) {
  if (rule.status === "disabled_failing") {
    return el(
      "p",
      { class: "rule-status bad", "data-status": rule.status },
      el("strong", {}, t("alert_status_disabled_failing")),
      " ",
      el("span", { class: "muted" }, t("alert_status_disabled_failing_hint")),
    );
  }
  if (rule.failing_since) {
    return el("p", { class: "rule-status warn", "data-status": rule.status ?? "" }, t("alert_status_failing_since", { at: when(rule.failing_since) }));
  }
  const word = rule.enabled === false ? t("alert_status_off") : wordOr(`alert_status_${rule.status}`, rule.status);
  return el("p", { class: "rule-status muted", "data-status": rule.status ?? "" }, word);
}

function ruleItem(rule) {
  const id = rule.id;
  const on = rule.enabled !== false && rule.status !== "disabled_failing";
  const destination = rule.destination ?? {};
  const switchId = `alert-on-${id}`;
  return el(
    "li",
    { class: "rule", "data-id": id, "data-enabled": String(rule.enabled !== false), "data-status": rule.status ?? "" },
    el(
      "div",
      { class: "rule-head" },
      el("strong", { class: "rule-name" }, rule.name),
      el(
        "label",
        { class: "switch", for: switchId },
        el("input", { id: switchId, type: "checkbox", role: "switch", class: "rule-enabled", "data-id": id, checked: on, "aria-label": t("alert_on", { name: rule.name }) }),
        el("span", { "aria-hidden": "true" }, t(on ? "alert_state_on" : "alert_state_off")),
      ),
    ),
    el("p", { class: "rule-when" }, t("alert_fires", { when: whenText(rule.when) })),
    el(
      "p",
      { class: "rule-destination muted" },
      t("alert_destination", { host: hostOf(destination.url), format: wordOr(`format_short_${destination.format}`, destination.format) }),
    ),
    ruleStatus(rule),
    el(
      "div",
      { class: "rule-actions" },
      el("button", { type: "button", class: "secondary rule-test", "data-id": id }, t("alert_test")),
      el("button", { type: "button", class: "secondary rule-edit", "data-id": id }, t("alert_edit")),
      el("button", { type: "button", class: "danger rule-delete", "data-id": id }, t("alert_delete")),
    ),
    el(
      "div",
      { class: "confirm rule-delete-confirm", role: "alertdialog", "aria-labelledby": `alert-delete-warning-${id}`, hidden: true },
      el("p", { id: `alert-delete-warning-${id}` }, t("alert_delete_warning", { name: rule.name })),
      el("button", { type: "button", class: "danger rule-delete-yes", "data-id": id }, t("alert_delete_yes")),
      el("button", { type: "button", class: "secondary rule-delete-no", "data-id": id }, t("cancel")),
    ),
  );
}

const ruleById = (id) => (state.alerts?.rules ?? []).find((r) => r.id === id);

/** What a PUT replaces a rule with: the rule as read, with `changes`. */
const ruleBody = (rule, changes = {}) => ({ name: rule.name, enabled: rule.enabled !== false, when: rule.when, destination: rule.destination, ...changes });

/** The switch: a PUT with `enabled` toggled (switching a failing rule on saves it again). */
async function toggleRule(input) {
  const rule = ruleById(input.dataset.id);
  if (!rule) return;
  input.disabled = true;
  try {
    await call(`/v1/dashboard/alerts/${encodeURIComponent(rule.id)}`, { method: "PUT", json: ruleBody(rule, { enabled: input.checked }) });
    await loadAlerts();
  } catch (error) {
    input.checked = !input.checked;
    input.disabled = false;
    report(error, $("#alert-error"));
  }
}

async function deleteRule(id) {
  try {
    await call(`/v1/dashboard/alerts/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch (error) {
    return report(error, $("#alert-error"));
  }
  if (state.alertEditing === id) closeAlertForm();
  flash($("#alert-status"), t("alert_deleted"));
  await loadAlerts();
  $("#alert-new").focus();
}

/** "Send test": the API answers the delivery after its first attempt; the log shows it. */
async function testRule(button) {
  const rule = ruleById(button.dataset.id);
  if (!rule) return;
  button.disabled = true;
  try {
    const delivery = await (await call(`/v1/dashboard/alerts/${encodeURIComponent(rule.id)}/test`, { method: "POST" })).json();
    flash($("#alert-status"), t("alert_test_sent", { host: hostOf(rule.destination?.url), status: deliveryOutcome(delivery) }), delivery.status === "delivered" ? "ok" : "warn");
  } catch (error) {
    report(error, $("#alert-error"));
  } finally {
    button.disabled = false;
  }
  await Promise.all([loadDeliveries(), loadAlerts()]);
}

/** "delivered, HTTP 200" or "failed, connection refused". */
function deliveryOutcome(delivery) {
  const status = wordOr(`delivery_${delivery.status}`, delivery.status);
  if (delivery.last_status_code !== null && delivery.last_status_code !== undefined) return t("alert_test_code", { status, code: delivery.last_status_code });
  if (delivery.last_error) return t("alert_test_error", { status, error: wordOr(`error_${delivery.last_error}`, delivery.last_error) });
  return status;
}

// ---- the alert editor ----

function alertFields() {
  return document.querySelectorAll("#alert-form .field[data-field]");
}

/** Shows the condition fields of the chosen event only. */
function showAlertFields() {
  const event = $("#alert-event").value;
  for (const field of document.querySelectorAll("#alert-when .field[data-events]")) {
    show(field, field.dataset.events.split(" ").includes(event));
  }
}

function clearAlertErrors() {
  for (const p of document.querySelectorAll("#alert-form .field-error")) p.hidden = true;
  for (const i of document.querySelectorAll("#alert-form [aria-invalid]")) {
    i.removeAttribute("aria-invalid");
    i.removeAttribute("aria-describedby");
  }
}

/**
 * Shows `text` beside the field the API named: the longest field name the detail starts with
 * ("when.opens: …", "destination.url must …"), else at the form.
 */
function alertError(text, name = null) {
  const named = name ?? /^[a-z_]+(?:\.[a-z_]+)*/.exec(String(text))?.[0] ?? "";
  let field = null;
  for (let candidate = named; candidate && !field; candidate = candidate.includes(".") ? candidate.slice(0, candidate.lastIndexOf(".")) : "") {
    const found = document.querySelector(`#alert-form .field[data-field="${CSS.escape(candidate)}"]`);
    if (found && !found.hidden) field = found;
  }
  const target = field ? field.querySelector(".field-error") : $("#alert-form-error");
  clearTimeout(target._timer);
  target.textContent = text;
  target.hidden = false;
  if (!target.id) target.id = `alert-error-${field.dataset.field.replace(/\./g, "-")}`;
  const input = field?.querySelector(":is(input, textarea, select)");
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", target.id);
    input.focus();
  }
}

function openAlertForm(rule = null) {
  state.alertEditing = rule?.id ?? null;
  clearAlertErrors();
  const when = rule?.when ?? { event: "lead.captured" };
  $("#alert-form-title").textContent = rule ? t("alert_form_edit", { name: rule.name }) : t("alert_form_new");
  $("#alert-name").value = rule?.name ?? "";
  $("#alert-event").value = ALERT_FIELDS[when.event] ? when.event : "lead.captured";
  $("#alert-volume").value = when.volume ?? "";
  $("#alert-ib-type").value = when.ib_type ?? "";
  $("#alert-utm-source").value = when.utm_source ?? "";
  $("#alert-form-name").value = when.form ?? "";
  $("#alert-tag").value = when.tag ?? "";
  $("#alert-stage").value = when.stage ?? "engaged";
  $("#alert-opens").value = String(when.opens ?? 1);
  $("#alert-amount").value = typeof when.min_amount_cents === "number" ? amountText(when.min_amount_cents) : "";
  $("#alert-currency").value = when.currency ?? "";
  $("#alert-timezone").value = when.timezone ?? browserTimeZone();
  $("#alert-url").value = rule?.destination?.url ?? "";
  $("#alert-format").value = rule?.destination?.format ?? "json";
  showAlertFields();
  show($("#alert-form"));
  $("#alert-name").focus();
}

function closeAlertForm() {
  state.alertEditing = null;
  clearAlertErrors();
  show($("#alert-form"), false);
}

/** Cents as the IB would type the amount: 50000 → "500", 49990 → "499.90". */
function amountText(cents) {
  const whole = Math.trunc(cents / 100);
  const rest = Math.abs(cents % 100);
  return rest ? `${whole}.${String(rest).padStart(2, "0")}` : String(whole);
}

/**
 * A typed decimal amount as integer cents, without floating point: "500" → 50000, "499.9" →
 * 49990, "1,234.50" or "1 234,50" → 123450; null when it is no amount.
 */
function amountCents(text) {
  let s = String(text).replace(/[\s\u00a0\u202f']/g, "");
  if (!s) return null;
  // The last "." or "," followed by one or two digits is the decimal mark; others group thousands.
  const mark = /[.,](\d{1,2})$/.exec(s);
  let fraction = "";
  if (mark) {
    fraction = mark[1];
    s = s.slice(0, mark.index);
  }
  s = s.replace(/[.,](?=\d{3}(?:[.,]|$))/g, "");
  if (!/^\d{1,13}$/.test(s)) return null;
  return Number(s) * 100 + Number(fraction.padEnd(2, "0"));
}

/** The form as the API's rule; `{error}` when a field cannot be sent as typed. */
function alertBody() {
  const event = $("#alert-event").value;
  const whenBody = { event };
  const text = (id) => $(id).value.trim();
  if (event === "lead.captured") {
    for (const [name, id] of [["volume", "#alert-volume"], ["ib_type", "#alert-ib-type"], ["utm_source", "#alert-utm-source"], ["form", "#alert-form-name"], ["tag", "#alert-tag"]]) {
      if (text(id)) whenBody[name] = text(id);
    }
  } else if (event === "lead.stage") {
    whenBody.stage = $("#alert-stage").value;
  } else if (event === "lead.opened") {
    // A number input reads "" for text it cannot parse: say so rather than send nothing.
    // A fraction would reach the API as no whole number, which it refuses without naming the field.
    const opens = Number(text("#alert-opens"));
    if ($("#alert-opens").validity.badInput || text("#alert-opens") === "" || !Number.isInteger(opens)) return { error: t("alert_opens_invalid") };
    whenBody.opens = opens;
  } else if (event === "sale") {
    const cents = amountCents($("#alert-amount").value);
    if (cents === null) return { error: t("alert_amount_invalid") };
    whenBody.min_amount_cents = cents;
    if (text("#alert-currency")) whenBody.currency = text("#alert-currency").toUpperCase();
  } else if (event === "digest") {
    whenBody.timezone = text("#alert-timezone") || "UTC";
  }
  const editing = state.alertEditing ? ruleById(state.alertEditing) : null;
  return {
    rule: {
      name: text("#alert-name"),
      enabled: editing ? editing.enabled !== false : true,
      when: whenBody,
      destination: { url: text("#alert-url"), format: $("#alert-format").value },
    },
  };
}

async function saveAlert(event) {
  event.preventDefault();
  clearAlertErrors();
  const { rule, error } = alertBody();
  if (error) return alertError(error);
  const id = state.alertEditing;
  const save = $("#alert-save");
  save.disabled = true;
  try {
    const path = id ? `/v1/dashboard/alerts/${encodeURIComponent(id)}` : "/v1/dashboard/alerts";
    const saved = await (await call(path, { method: id ? "PUT" : "POST", json: rule })).json();
    // The first rule answers the tenant's signing secret, once.
    if (typeof saved?.signing_secret === "string") showSecret(saved.signing_secret);
    closeAlertForm();
    flash($("#alert-status"), t(id ? "alert_saved" : "alert_created"));
    await loadAlerts();
  } catch (error) {
    if (error instanceof ApiProblem && !error.signsOut && [400, 409, 422].includes(error.status)) {
      if (error.code === "destination_refused") return alertError(error.detail, "destination.url");
      if (error.code === "alert_rule_limit") {
        const max = state.alerts?.limits?.rules;
        return alertError(max ? `${t("alert_limit_reached", { max: count(max) })} (${error.detail})` : error.detail, "");
      }
      return alertError(error.detail);
    }
    report(error, $("#alert-form-error"));
  } finally {
    save.disabled = false;
  }
}

// ---- the signing secret ----

function showSecret(secret) {
  state.secretTenant = subOf(token());
  $("#alert-secret").value = secret;
  $("#alert-secret-status").hidden = true;
  show($("#alert-secret-box"));
  show($("#alert-secret-set"), false);
  show($("#alert-rotate"));
}

function clearSecret() {
  state.secretTenant = null;
  $("#alert-secret").value = "";
  show($("#alert-secret-box"), false);
}

function hideSecret() {
  clearSecret();
  renderAlerts();
}

async function rotateSecret() {
  show($("#alert-rotate-confirm"), false);
  try {
    const body = await (await call("/v1/dashboard/alerts/secret", { method: "POST" })).json();
    showSecret(body.signing_secret);
    flash($("#alert-status"), t("alert_rotated"), "warn");
    $("#alert-secret").focus();
  } catch (error) {
    report(error, $("#alert-error"));
  }
}

async function copySecret() {
  try {
    await navigator.clipboard.writeText($("#alert-secret").value);
    flash($("#alert-secret-status"), t("copied"));
  } catch {
    $("#alert-secret").select();
    flash($("#alert-secret-status"), t("copy_select"));
  }
}

// ---- the delivery log ----

function deliveryRow(d) {
  const code = d.last_status_code !== null && d.last_status_code !== undefined ? String(d.last_status_code) : d.last_error ? wordOr(`error_${d.last_error}`, d.last_error) : "";
  return el(
    "tr",
    { "data-id": d.id, "data-rule": d.rule_id ?? "", "data-status": d.status },
    el("td", { "data-label": t("col_time"), class: "time" }, el("time", { datetime: d.created_at }, when(d.created_at))),
    el("td", { "data-label": t("col_alert"), class: "rule" }, d.rule_name ?? t("deleted_alert")),
    el("td", { "data-label": t("col_event"), class: "event", "data-event": d.event }, wordOr(`event_name_${d.event}`, d.event)),
    el("td", { "data-label": t("col_status"), class: "status" }, el("span", { class: `badge delivery-${d.status}` }, wordOr(`delivery_${d.status}`, d.status))),
    el("td", { "data-label": t("col_code"), class: "code", "data-code": d.last_status_code ?? "" }, code),
    el("td", { "data-label": t("col_attempts"), class: "attempts" }, count(d.attempts)),
    el("td", { "data-label": t("col_next_retry"), class: "next" }, d.next_attempt_at ? el("time", { datetime: d.next_attempt_at }, when(d.next_attempt_at)) : t("no_retry")),
    el(
      "td",
      { "data-label": t("col_actions"), class: "actions" },
      el("button", { type: "button", class: "secondary redeliver", "data-id": d.id, "aria-label": t("redeliver_label", { id: d.id }) }, t("redeliver")),
    ),
  );
}

async function loadDeliveries() {
  let body;
  try {
    body = await getJson("/v1/dashboard/alerts/deliveries");
  } catch (error) {
    return report(error, $("#delivery-status"));
  }
  const list = Array.isArray(body?.deliveries) ? body.deliveries : [];
  fill($("#deliveries tbody"), list.map(deliveryRow));
  $("#deliveries").dataset.rows = list.length;
  show($("#deliveries-empty"), list.length === 0);
  if ($("#delivery-status").dataset.kind === "error") $("#delivery-status").hidden = true;
}

async function redeliver(button) {
  button.disabled = true;
  try {
    const delivery = await (await call(`/v1/dashboard/alerts/deliveries/${encodeURIComponent(button.dataset.id)}/redeliver`, { method: "POST" })).json();
    flash($("#delivery-status"), t("redelivered", { status: deliveryOutcome(delivery) }));
  } catch (error) {
    report(error, $("#delivery-status"));
  } finally {
    button.disabled = false;
  }
  await loadDeliveries();
}

// ---- capture key and snippet ----

/** Text safe inside a double-quoted HTML attribute. */
const attr = (text) => String(text).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function snippet(edge, key, captcha) {
  // With the tenant's captcha on, the form names its provider and site key: the script shows the widget.
  const widget = captcha ? ` data-clientflow-captcha="${attr(captcha.provider)}" data-clientflow-sitekey="${attr(captcha.site_key)}"` : "";
  return `<form data-clientflow${widget} method="post" action="${edge}/v1/leads?key=${key}">
  <label>Email <input type="email" name="email" required placeholder="you@example.com" autocomplete="email"></label>
  <label>Name <input name="name" placeholder="Your name" autocomplete="name"></label>
  <label>You are <select name="ib_type">
    <option value="forex-ib">Forex IB</option>
    <option value="crypto-affiliate">Crypto affiliate</option>
    <option value="cfd-partner">CFD partner</option>
  </select></label>
  <label>Leads per month <select name="monthly_leads">
    <option>0-100</option><option>100-500</option><option>500+</option>
  </select></label>
  <input type="hidden" name="form" value="demo-request">
  <label><input type="checkbox" name="consent" value="true"> I agree to be contacted</label>
  <input type="text" name="_gotcha" tabindex="-1" autocomplete="off" aria-hidden="true" hidden>
  <button>Request a demo</button>
</form>
<script src="${edge}/embed/v1.js" defer></script>`;
}

function renderSnippet() {
  $("#snippet").value = state.captureToken ? snippet(location.origin, state.captureToken, state.captcha) : "";
}

async function loadCaptureKey() {
  const body = await getJson("/v1/dashboard/capture-key");
  state.captureToken = body.capture_token;
  renderSnippet();
}

async function rotateKey() {
  show($("#rotate-confirm"), false);
  try {
    const body = await (await call("/v1/dashboard/capture-key", { method: "POST" })).json();
    state.captureToken = body.capture_token;
    renderSnippet();
    flash($("#rotate-status"), t("rotated"), "warn");
  } catch (error) {
    report(error, $("#rotate-status"));
  }
}

async function copySnippet() {
  const text = $("#snippet").value;
  try {
    await navigator.clipboard.writeText(text);
    flash($("#copy-status"), t("copied"));
  } catch {
    $("#snippet").select();
    flash($("#copy-status"), t("copy_select"));
  }
}

// ---- wiring ----

function wire() {
  $("#sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setToken($("#token-input").value.trim());
    $("#token-input").value = "";
    boot();
  });
  $("#sign-out").addEventListener("click", () => signIn(null));
  for (const button of document.querySelectorAll(".period button")) {
    button.addEventListener("click", () => {
      state.days = Number(button.dataset.days);
      state.range = null;
      $("#range-error").hidden = true;
      for (const b of document.querySelectorAll(".period button")) b.setAttribute("aria-pressed", String(b === button));
      loadStats().catch((e) => report(e));
    });
  }
  $("#range").addEventListener("submit", (event) => {
    event.preventDefault();
    const from = $("#range-from").value;
    const to = $("#range-to").value;
    if (!from || !to || from > to) {
      $("#range-error").textContent = t("range_invalid");
      $("#range-error").hidden = false;
      return;
    }
    $("#range-error").hidden = true;
    state.range = { from, to };
    for (const b of document.querySelectorAll(".period button")) b.setAttribute("aria-pressed", "false");
    loadStats().catch((error) => {
      // The API's word on a range it refuses (more than 365 days, say) goes beside the range.
      if (error instanceof ApiProblem && !error.signsOut && error.status < 500) {
        $("#range-error").textContent = error.detail;
        $("#range-error").hidden = false;
        return;
      }
      report(error);
    });
  });
  $("#lead-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    readFilters();
    loadLeads(true);
  });
  for (const id of ["#lead-stage", "#lead-source", "#lead-sync", "#lead-sort", "#lead-from", "#lead-to"]) {
    $(id).addEventListener("change", () => $("#lead-filter").requestSubmit());
  }
  $("#sort-captured").addEventListener("click", () => {
    $("#lead-sort").value = $("#lead-sort").value === "oldest" ? "newest" : "oldest";
    $("#lead-filter").requestSubmit();
  });
  $("#breakdowns").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-facet]");
    if (!button) return;
    filterByFacet({ name: button.dataset.facet, value: button.dataset.value });
    $("#leads-title").scrollIntoView({ block: "start" });
  });
  $("#lead-facet-clear").addEventListener("click", () => filterByFacet(null));
  $("#chart").addEventListener("keydown", chartKey);
  $("#chart").addEventListener("focus", () => {
    if (state.chartIndex === null && state.daily?.length) {
      state.chartIndex = state.daily.length - 1;
      markChartDay();
    }
  });
  setInterval(refreshIfStale, REFRESH_MS);
  document.addEventListener("visibilitychange", refreshIfStale);
  $("#load-more").addEventListener("click", () => loadLeads(false));
  $("#leads").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (row) openLead(row.dataset.id);
  });
  $("#lead-close").addEventListener("click", () => $("#lead-dialog").close());
  $("#erase").addEventListener("click", () => {
    show($("#erase"), false);
    show($("#erase-confirm"));
    $("#erase-no").focus();
  });
  $("#erase-no").addEventListener("click", () => {
    show($("#erase-confirm"), false);
    show($("#erase"));
  });
  $("#erase-yes").addEventListener("click", eraseLead);
  $("#retry-sync").addEventListener("click", retrySync);
  $("#csv").addEventListener("click", downloadCsv);
  $("#settings").addEventListener("submit", saveSettings);
  $("#captcha-provider").addEventListener("change", showCaptchaFields);
  $("#copy").addEventListener("click", copySnippet);
  $("#rotate").addEventListener("click", () => {
    show($("#rotate-confirm"));
    $("#rotate-no").focus();
  });
  $("#rotate-no").addEventListener("click", () => show($("#rotate-confirm"), false));
  $("#rotate-yes").addEventListener("click", rotateKey);
  $("#alert-new").addEventListener("click", () => openAlertForm(null));
  $("#alert-cancel").addEventListener("click", () => {
    closeAlertForm();
    $("#alert-new").focus();
  });
  $("#alert-event").addEventListener("change", () => {
    clearAlertErrors();
    showAlertFields();
  });
  $("#alert-form").addEventListener("submit", saveAlert);
  $("#alert-rules").addEventListener("change", (event) => {
    if (event.target.matches("input.rule-enabled")) toggleRule(event.target);
  });
  $("#alert-rules").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-id]");
    if (!button) return;
    const item = button.closest("li.rule");
    const confirm = item.querySelector(".rule-delete-confirm");
    if (button.classList.contains("rule-test")) testRule(button);
    else if (button.classList.contains("rule-edit")) openAlertForm(ruleById(button.dataset.id));
    else if (button.classList.contains("rule-delete")) {
      show(confirm);
      confirm.querySelector(".rule-delete-no").focus();
    } else if (button.classList.contains("rule-delete-no")) {
      show(confirm, false);
      item.querySelector(".rule-delete").focus();
    } else if (button.classList.contains("rule-delete-yes")) deleteRule(button.dataset.id);
  });
  $("#alert-secret-copy").addEventListener("click", copySecret);
  $("#alert-secret-hide").addEventListener("click", hideSecret);
  $("#alert-rotate").addEventListener("click", () => {
    show($("#alert-rotate-confirm"));
    $("#alert-rotate-no").focus();
  });
  $("#alert-rotate-no").addEventListener("click", () => show($("#alert-rotate-confirm"), false));
  $("#alert-rotate-yes").addEventListener("click", rotateSecret);
  $("#deliveries-refresh").addEventListener("click", () => Promise.all([loadDeliveries(), loadAlerts()]));
  $("#deliveries").addEventListener("click", (event) => {
    const button = event.target.closest("button.redeliver");
    if (button) redeliver(button);
  });
  let resizing;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => state.daily && drawChart(), 150);
  });
  window.addEventListener("hashchange", () => {
    if (location.hash.includes("token=")) boot();
  });
}

translatePage();
wire();
boot().catch((error) => {
  show($("#loading"), false);
  signIn(t("could_not_start", { detail: error?.message ?? error }));
});
