// The IB's dashboard: one page over /v1/dashboard/*. It starts signed out unless the tab holds a
// dashboard token, and every refusal of that token brings the sign-in message back with a reason.
// The header names the tenant signed in, and a link whose token names another tenant asks
// before it replaces the session, so a link cannot silently sign an IB into someone else's
// dashboard (whose form snippet would send the IB's leads there).

import { $, el, fill, show, count, percent, share, money, when, stageName, flash } from "./dom.js";
import { ApiProblem, takeTokenFromUrl, setToken, token, subOf, inspect, expiredText, call, getJson } from "./api.js";
import { dailyChart } from "./chart.js";

const PAGE_SIZE = 25;
const state = { days: 30, daily: null, claims: null, cursor: null, q: "", stage: "", leadsSeq: 0, lead: null, captureToken: null };

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
  for (const id of ["#kpis", "#health", "#chart", "#leads tbody", "#lead-fields", "#lead-timeline"]) fill($(id));
  $("#lead-total").textContent = "–";
  $("#window").textContent = "";
  $("#snippet").value = "";
  for (const id of ["#allowed-origins", "#thank-you-url", "#tag-rules"]) $(id).value = "";
  $("#funnel-ids").textContent = "";
  state.captureToken = null;
  state.cursor = null;
  state.daily = null;
  if ($("#lead-dialog").open) $("#lead-dialog").close();
}

/** Why the API refused the token, in words for the sign-in message. */
function refusal(problem) {
  if (problem.code === "token_expired") return expiredText(state.claims?.exp);
  return `This token was refused: ${problem.detail}`;
}

/** Shows an error where it belongs; a refused token signs out instead. */
function report(error, target = $("#error")) {
  if (error instanceof ApiProblem && error.signsOut) {
    signIn(refusal(error));
    return;
  }
  const detail = error instanceof ApiProblem ? error.detail : `Something went wrong in this page: ${error?.message ?? error}`;
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
  document.title = me ? `${me.name} · ClientFlow` : "ClientFlow · Dashboard";
  show($("#tenant"), Boolean(me));
}

async function loadMe() {
  showTenant(await getJson("/v1/dashboard/me"));
}

/** "Name (ib-xxxxxxxx-)" of a token's tenant, as the API names it; what the token says if refused. */
async function whoIs(raw) {
  try {
    const me = await getJson("/v1/dashboard/me", { as: raw });
    return `${me.name} (${me.tag_prefix})`;
  } catch {
    const sub = subOf(raw);
    return sub ? `tenant ${sub}` : "an unknown account";
  }
}

/** Asks whether a link's token of another tenant may replace the session; resolves true if so. */
async function confirmSwitch(incoming) {
  const [current, next] = await Promise.all([whoIs(token()), whoIs(incoming)]);
  $("#switch-detail").textContent = `This link signs you in to the dashboard of ${next}. You are signed in to the dashboard of ${current}.`;
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
  const until = state.claims.exp ? ` · session until ${new Date(state.claims.exp * 1000).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" })}` : "";
  $("#session").textContent = `Signed in${until}`;
  show($("#sign-out"));
  show($("#loading"), false);
  show($("#dashboard"));
  drawChart(); // now that the chart's box has a width
  $("#error").hidden = true;
  await Promise.all([
    loadLeads(true).catch((e) => report(e)),
    loadSettings().catch((e) => report(e)),
    loadCaptureKey().catch((e) => report(e)),
  ]);
  document.body.dataset.ready = "true";
}

// ---- stats ----

async function loadStats() {
  const stats = await getJson(`/v1/dashboard/stats?days=${state.days}`);
  renderStats(stats);
}

function step(name, value, rate, sub) {
  const li = $(`#funnel li[data-step="${name}"]`);
  li.querySelector(".count").textContent = count(value);
  li.dataset.value = value;
  li.querySelector(".rate").textContent = rate;
  li.querySelector(".sub").textContent = sub;
}

function kpi(name, label, value, text, kind) {
  return el("div", { "data-kpi": name, "data-value": value, class: kind }, el("dt", {}, label), el("dd", {}, text));
}

function renderStats(s) {
  const f = s.funnel;
  step("capture", f.capture, "all leads", `${count(s.leads.this_month)} this month · ${count(s.leads.last_7_days)} in 7 days`);
  step("nurture", f.nurture, `${share(f.nurture, f.capture)} of captured`, `${count(s.emails.sent)} emails sent`);
  step("convert", f.convert, `${share(f.convert, f.capture)} of captured`, `${count(s.conversions.in_window)} converted in period`);
  step("retain", f.retain, `${share(f.retain, f.convert)} of converted`, `${money(s.revenue_cents)} revenue in period`);
  fill(
    $("#kpis"),
    kpi("emails_sent", "Emails sent", s.emails.sent, count(s.emails.sent)),
    kpi("emails_opened", "Opened", s.emails.opened, count(s.emails.opened)),
    kpi("emails_clicked", "Clicked", s.emails.clicked, count(s.emails.clicked)),
    kpi("open_rate", "Open rate", s.emails.open_rate, percent(s.emails.open_rate)),
    kpi("click_rate", "Click rate", s.emails.click_rate, percent(s.emails.click_rate)),
    kpi("conversion_rate", "Conversion rate", s.conversions.rate, percent(s.conversions.rate)),
    kpi("revenue", "Revenue", s.revenue_cents, money(s.revenue_cents)),
  );
  const sync = s.sync;
  fill(
    $("#health"),
    kpi("synced", "Synced", sync.synced, count(sync.synced), "good"),
    kpi("pending", "Pending", sync.pending, count(sync.pending), sync.pending > 0 ? "warn" : ""),
    kpi("failed", "Failed", sync.failed, count(sync.failed), sync.failed > 0 ? "bad" : ""),
    kpi("held", "Held (over plan)", sync.held, count(sync.held), sync.held > 0 ? "warn" : ""),
    kpi("spam", "Spam blocked in period", s.spam, count(s.spam)),
  );
  $("#lead-total").textContent = count(s.leads.total);
  $("#lead-total").dataset.value = s.leads.total;
  $("#window").textContent = `${s.window.from} to ${s.window.to}`;
  state.daily = s.daily;
  drawChart();
}

function drawChart() {
  fill($("#chart"), dailyChart(state.daily, $("#chart").clientWidth || 640));
}

// ---- leads ----

function leadRow(lead) {
  const open = el("button", { type: "button", class: "link", "data-open": lead.id }, lead.email);
  return el(
    "tr",
    { "data-id": lead.id },
    el("td", { "data-label": "Email", class: "email" }, open),
    el("td", { "data-label": "Name" }, lead.name ?? ""),
    el("td", { "data-label": "IB type" }, lead.ib_type ?? ""),
    el("td", { "data-label": "Volume" }, lead.monthly_leads ?? lead.volume ?? ""),
    el("td", { "data-label": "Stage" }, el("span", { class: `badge stage-${lead.stage}` }, stageName(lead.stage))),
    el("td", { "data-label": "Sync" }, el("span", { class: `badge sync-${lead.sync_status}` }, lead.sync_status)),
    el("td", { "data-label": "Consent", class: "consent" }, lead.consent ? "yes" : "no"),
    el("td", { "data-label": "Captured" }, when(lead.created_at)),
  );
}

async function loadLeads(reset) {
  const seq = ++state.leadsSeq;
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (state.q) params.set("q", state.q);
  if (state.stage) params.set("stage", state.stage);
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
    field("Name", lead.name),
    field("Phone", lead.phone),
    field("IB type", lead.ib_type),
    field("Monthly leads", lead.monthly_leads),
    field("Broker network", lead.broker_network),
    field("Stage", stageName(lead.stage)),
    field("Sync", `${lead.sync_status} (${lead.sync_attempts ?? 0} attempts)`),
    // Why a held lead is not sent: no consent under the tenant's rule, or over the plan's quota.
    field("Held", { consent: "no consent (you sync only leads who consented)", quota: "over the plan's lead limit" }[lead.held_for]),
    field("Sync error", lead.sync_error),
    field("Form", lead.form),
    field("Source", lead.source),
    field("UTM", [lead.utm_source, lead.utm_medium, lead.utm_campaign, lead.utm_term, lead.utm_content].filter(Boolean).join(" / ")),
    field("Ad click", [["gclid", lead.gclid], ["fbclid", lead.fbclid], ["ttclid", lead.ttclid]]
      .filter(([, id]) => id).map(([name, id]) => `${name} ${id}`).join(" · ")),
    field("Referrer", lead.referrer),
    field("Page", lead.page_url),
    field("Consent", lead.consent ? "yes" : "no"),
    field("Emails", `${lead.emails_sent ?? 0} sent · ${lead.emails_opened ?? 0} opened · ${lead.emails_clicked ?? 0} clicked`),
    field("Sales", `${lead.sales ?? 0} · ${money(lead.revenue_cents)}`),
    field("Tags", (lead.tags ?? []).join(", ")),
    // Stored, but not synced: the tenant's tag budget on the shared Systeme.io account is spent.
    field("Kept back from Systeme.io", (lead.tags_kept_back ?? []).join(", ")),
    field("Captured", when(lead.created_at)),
    field("Updated", when(lead.updated_at)),
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
  flash($("#lead-status"), "Queued: the next sync sends this lead to Systeme.io again.");
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
  flash($("#lead-status"), "Lead erased with its timeline.");
  loadStats().catch((e) => report(e));
}

async function downloadCsv() {
  const status = $("#csv-status");
  try {
    // The file holds what the list shows: the same search and stage filter.
    const params = new URLSearchParams();
    if (state.q) params.set("q", state.q);
    if (state.stage) params.set("stage", state.stage);
    const resp = await call(`/v1/dashboard/leads.csv${params.size ? `?${params}` : ""}`);
    const blob = await resp.blob();
    const name = `leads-${new Date().toISOString().slice(0, 10)}.csv`;
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    flash(status, `Downloaded ${name} (${count(Math.ceil(blob.size / 1024))} KB).`);
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
  $("#funnel-ids").textContent = funnels.length ? funnels.join(", ") : "None assigned";
  $("#funnel-ids").dataset.value = funnels.join(",");
}

async function loadSettings() {
  fillSettings(await getJson("/v1/dashboard/settings"));
}

function settingsError(name, text) {
  const target = $(`#error-${name}`) ?? $("#error-settings");
  target.textContent = text;
  target.hidden = false;
  const input = document.querySelector(`#settings [data-field="${name}"] :is(input, textarea)`);
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
    if (!match) return settingsError("tag_rules", `tag_rules: line ${i + 1} must read "suffix = effect"`);
    tagRules[match[1]] = match[2];
  }
  // Funnel ids are the operator's: the PUT leaves them out, so they stay as they are.
  const body = {
    allowed_origins: lines($("#allowed-origins").value),
    thank_you_url: $("#thank-you-url").value.trim() || null,
    tag_rules: tagRules,
    sync_requires_consent: $("#sync-requires-consent").checked,
  };
  try {
    const saved = await (await call("/v1/dashboard/settings", { method: "PUT", json: body })).json();
    fillSettings(saved);
    flash($("#settings-status"), "Saved. The next form post uses these settings.");
  } catch (error) {
    if (error instanceof ApiProblem && !error.signsOut && [400, 409, 422].includes(error.status)) {
      // The API's field errors start with the field's name: "thank_you_url: must be …".
      return settingsError(error.detail.split(":")[0].trim(), error.detail);
    }
    report(error, $("#error-settings"));
  }
}

// ---- capture key and snippet ----

function snippet(edge, key) {
  return `<form data-clientflow method="post" action="${edge}/v1/leads?key=${key}">
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
  $("#snippet").value = state.captureToken ? snippet(location.origin, state.captureToken) : "";
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
    flash($("#rotate-status"), "New capture key active. Forms with the old key now fail: paste the new snippet into every landing page.", "warn");
  } catch (error) {
    report(error, $("#rotate-status"));
  }
}

async function copySnippet() {
  const text = $("#snippet").value;
  try {
    await navigator.clipboard.writeText(text);
    flash($("#copy-status"), "Copied.");
  } catch {
    $("#snippet").select();
    flash($("#copy-status"), "Selected: press Ctrl+C (⌘C) to copy.");
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
      for (const b of document.querySelectorAll(".period button")) b.setAttribute("aria-pressed", String(b === button));
      loadStats().catch((e) => report(e));
    });
  }
  $("#lead-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    state.q = $("#lead-q").value.trim();
    state.stage = $("#lead-stage").value;
    loadLeads(true);
  });
  $("#lead-stage").addEventListener("change", () => $("#lead-filter").requestSubmit());
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
  $("#copy").addEventListener("click", copySnippet);
  $("#rotate").addEventListener("click", () => {
    show($("#rotate-confirm"));
    $("#rotate-no").focus();
  });
  $("#rotate-no").addEventListener("click", () => show($("#rotate-confirm"), false));
  $("#rotate-yes").addEventListener("click", rotateKey);
  let resizing;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => state.daily && drawChart(), 150);
  });
  window.addEventListener("hashchange", () => {
    if (location.hash.includes("token=")) boot();
  });
}

wire();
boot().catch((error) => {
  show($("#loading"), false);
  signIn(`The dashboard could not start: ${error?.message ?? error}`);
});
