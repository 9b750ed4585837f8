// Every word the dashboard page shows, in one table: a translation is a copy of this file with
// the values replaced. index.html names its words by key (data-t, data-t-placeholder,
// data-t-aria-label); app.js and dom.js call t(). `{name}` in a value is filled from the call's
// values. Dates and numbers are not words: dom.js formats them in the browser's locale.

export const WORDS = {
  // header and sign-in
  "brand": "ClientFlow",
  "sign_out": "Sign out",
  "loading": "Loading…",
  "needs_js": "The dashboard needs JavaScript.",
  "signed_in": "Signed in",
  "session_until": "Signed in · session until {time}",
  "title_default": "ClientFlow · Dashboard",
  "title_tenant": "{name} · ClientFlow",
  "sign_in_title": "Sign in to your dashboard",
  "sign_in_intro": "Open this page from your ClientFlow account, or paste a dashboard token below.",
  "token_label": "Dashboard token",
  "open_dashboard": "Open dashboard",
  "refused": "This token was refused: {detail}",
  "could_not_start": "The dashboard could not start: {detail}",
  "page_error": "Something went wrong in this page: {detail}",
  "switch_title": "This link opens another dashboard",
  "switch_detail": "This link signs you in to the dashboard of {next}. You are signed in to the dashboard of {current}.",
  "switch_warning": "Only switch if you expected to. Anyone can send a link that signs you in to their dashboard, and its form snippet would send your leads to them.",
  "switch_yes": "Switch dashboards",
  "switch_no": "Stay signed in as",
  "unknown_account": "an unknown account",
  "tenant_of": "tenant {sub}",
  "token_malformed": "The token is malformed: it is not a signed ClientFlow token. Copy it again, whole.",
  "token_unreadable": "The token is malformed: its contents cannot be read. Copy it again, whole.",
  "token_scope": "This is a {scope} token, not a dashboard token.",
  "network": "The server could not be reached. Check your connection and try again.",
  "server_answered": "The server answered {status}.",
  "expired": "Your session expired. Open the dashboard again from your ClientFlow account.",
  "expired_at": "Your session expired at {at}. Open the dashboard again from your ClientFlow account.",

  // funnel and period
  "funnel_title": "Your funnel",
  "period": "Period",
  "days_7": "7 days",
  "days_30": "30 days",
  "days_90": "90 days",
  "range_from": "From",
  "range_to": "To",
  "range_apply": "Apply range",
  "range_invalid": "Pick a start date on or before the end date.",
  "step_capture": "1 Capture",
  "step_nurture": "2 Nurture",
  "step_convert": "3 Convert",
  "step_retain": "4 Retain",
  "all_leads": "all leads",
  "of_captured": "{share} of captured",
  "of_converted": "{share} of converted",
  "capture_sub": "{month} this month · {week} in 7 days",
  "emails_sent_sub": "{n} emails sent",
  "converted_sub": "{n} converted in period",
  "revenue_sub": "{money} revenue in period",
  "no_revenue": "no sales",
  "delta_up": "{now} in period ▲ {change} vs {before} in the previous {days} days",
  "delta_down": "{now} in period ▼ {change} vs {before} in the previous {days} days",
  "delta_same": "{now} in period, the same as in the previous {days} days",
  "delta_new": "{now} in period ▲ new (none in the previous {days} days)",
  "delta_no_sales": "no sales in this period or the previous {days} days",
  "window": "{from} to {to}",
  "updated_at": "Updated {time}",
  "kpi_captured": "Captured in period",
  "kpi_emails_sent": "Emails sent",
  "kpi_opened": "Opened",
  "kpi_clicked": "Clicked",
  "kpi_open_rate": "Open rate",
  "kpi_click_rate": "Click rate",
  "kpi_conversion_rate": "Conversion rate",
  "kpi_revenue": "Revenue",

  // chart
  "chart_title": "Daily captures and conversions",
  "chart_label": "{leads} captures and {conversions} conversions over {days} days. Use the arrow keys to read each day.",
  "chart_day": "{day}: {leads} captured, {conversions} converted",
  "chart_table": "Show the figures as a table",
  "chart_keys": "Arrow keys move from day to day; Home and End go to the first and last day.",
  "legend_captured": "captured",
  "legend_converted": "converted",
  "col_day": "Day",
  "col_captured": "Captured",
  "col_converted": "Converted",

  // breakdowns
  "breakdowns_title": "Where your leads come from",
  "breakdowns_hint": "Choose a row to list its leads.",
  "facet_ib_type": "IB type",
  "facet_volume": "Volume",
  "facet_utm_source": "utm_source",
  "no_value": "(none)",
  "bucket": "{value}: {n} leads",
  "bucket_one": "{value}: {n} lead",
  "no_breakdown": "No leads yet.",

  // health
  "health_title": "Sync health",
  "synced": "Synced",
  "pending": "Pending",
  "failed": "Failed",
  "held": "Held (over plan or without consent)",
  "spam": "Spam blocked in period",

  // leads
  "leads_title": "Your leads:",
  "leads_total": "total",
  "download_csv": "Download CSV",
  "downloaded": "Downloaded {name} ({kb} KB).",
  "search": "Search",
  "search_placeholder": "email or name",
  "stage": "Stage",
  "all_stages": "All stages",
  "captured_from": "Captured from",
  "captured_to": "Captured to",
  "source": "Source",
  "all_sources": "All sources",
  "source_capture": "Form",
  "source_systeme": "Systeme.io",
  "sync": "Sync",
  "all_sync": "Any sync status",
  "tag": "Tag",
  "tag_placeholder": "e.g. webinar",
  "sort": "Order",
  "sort_newest": "Newest first",
  "sort_oldest": "Oldest first",
  "filter_active": "Showing leads with {facet} = {value}",
  "filter_clear": "Show all leads",
  "col_email": "Email",
  "col_name": "Name",
  "col_ib_type": "IB type",
  "col_volume": "Volume",
  "col_stage": "Stage",
  "col_sync": "Sync",
  "col_consent": "Consent",
  "col_captured_at": "Captured",
  "sort_by_captured": "Sort by captured date",
  "no_leads": "No leads match.",
  "load_more": "Load more",
  "yes": "yes",
  "no": "no",
  "stage_new": "New",
  "stage_nurturing": "Nurturing",
  "stage_engaged": "Engaged",
  "stage_converted": "Converted",
  "stage_retained": "Retained",
  "sync_pending": "pending",
  "sync_synced": "synced",
  "sync_failed": "failed",
  "sync_held": "held",

  // one lead
  "lead": "Lead",
  "close": "Close",
  "timeline": "Timeline",
  "f_name": "Name",
  "f_phone": "Phone",
  "f_ib_type": "IB type",
  "f_monthly_leads": "Monthly leads",
  "f_broker_network": "Broker network",
  "f_stage": "Stage",
  "f_sync": "Sync",
  "f_sync_value": "{status} ({n} attempts)",
  "f_held": "Held",
  "held_consent": "no consent (you sync only leads who consented)",
  "held_quota": "over the plan's lead limit",
  "f_sync_error": "Sync error",
  "f_form": "Form",
  "f_source": "Source",
  "f_utm": "UTM",
  "f_ad_click": "Ad click",
  "f_referrer": "Referrer",
  "f_page": "Page",
  "f_consent": "Consent",
  "f_emails": "Emails",
  "f_emails_value": "{sent} sent · {opened} opened · {clicked} clicked",
  "f_sales": "Sales",
  "f_tags": "Tags",
  "f_kept_back": "Kept back from Systeme.io",
  "f_captured": "Captured",
  "f_updated": "Updated",
  "retry_sync": "Retry sync",
  "retry_queued": "Queued: the next sync sends this lead to Systeme.io again.",
  "erase": "Erase this lead…",
  "erase_warning": "Erase this lead and its timeline permanently? This cannot be undone. The Systeme.io contact is not touched.",
  "erase_yes": "Erase permanently",
  "cancel": "Cancel",
  "erased": "Lead erased with its timeline.",

  // workflows
  "workflows_title": "Workflows",
  "workflows_intro": "What a Systeme.io tag on one of your contacts does here. Change your own rules in Settings.",
  "workflow_rule": "When a contact gets the tag {tag}",
  "workflow_yours": "your rule",
  "workflow_builtin": "built in",
  "effect_email_sent": "count an email sent",
  "effect_email_opened": "count an email opened",
  "effect_email_clicked": "count a click",
  "effect_converted": "mark the lead converted",
  "effect_retained": "mark the lead retained",
  "effect_inactive": "mark the lead inactive",
  "effect_churned": "mark the lead churned",
  "effect_ignore": "do nothing",

  // settings
  "settings_title": "Settings",
  "allowed_origins": "Allowed origins",
  "allowed_origins_hint": "(one per line; empty allows any site)",
  "thank_you_url": "Thank-you URL",
  "thank_you_url_hint": "(https; where a plain form lands)",
  "tag_rules": "Tag rules",
  "tag_rules_hint": "(one per line: suffix = effect)",
  "tag_rules_effects": "Effects: email_sent, email_opened, email_clicked, converted, retained, inactive, churned, ignore.",
  "tag_rules_line": "tag_rules: line {line} must read \"suffix = effect\"",
  "consent_rule": "Sync only leads who consented",
  "consent_rule_hint": "Leads without consent are kept here, held, and never sent to Systeme.io; turning this off sends them.",
  "funnel_ids": "Systeme.io funnel ids",
  "funnel_ids_hint": "A sale in one of these funnels is yours alone. ClientFlow assigns them: ask support to add or remove one.",
  "funnel_ids_none": "None assigned",
  "save_settings": "Save settings",
  "saved": "Saved. The next form post uses these settings.",

  // form snippet and capture key
  "form_title": "Your landing-page form",
  "form_intro": "Paste this into your landing page. It posts leads straight to ClientFlow with your capture key; without JavaScript it still works and sends visitors to your thank-you URL.",
  "snippet": "Form snippet",
  "copy": "Copy",
  "copied": "Copied.",
  "copy_select": "Selected: press Ctrl+C (⌘C) to copy.",
  "capture_key": "Capture key",
  "rotate_intro": "Rotate the key if it was misused. Every form that uses the current key stops working at once; paste the new snippet into each landing page right after.",
  "rotate": "Rotate capture key…",
  "rotate_warning": "Rotate now? Old forms stop working immediately and their visitors see an error until you update them.",
  "rotate_yes": "Rotate key, old forms stop working",
  "rotated": "New capture key active. Forms with the old key now fail: paste the new snippet into every landing page.",
};

/** The language of the words above (the page's `lang`). */
export const LANGUAGE = "en";

/** The locale dates and numbers are written in: the browser's. */
export const LOCALE = (typeof navigator !== "undefined" && navigator.language) || LANGUAGE;

const plurals = new Intl.PluralRules(LANGUAGE);

/** The key of the words for `n` of something: `key_one` where the language says "one" and it exists. */
export function plural(key, n) {
  const form = `${key}_${plurals.select(Number(n) || 0)}`;
  return form in WORDS ? form : key;
}

/** The words under `key`, with `{name}`s filled from `values`; the key itself if missing. */
export function t(key, values = {}) {
  const text = WORDS[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** Puts the table's words into the page's marked elements. */
export function translatePage(root = document) {
  for (const node of root.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  for (const node of root.querySelectorAll("[data-t-placeholder]")) node.placeholder = t(node.dataset.tPlaceholder);
  for (const node of root.querySelectorAll("[data-t-aria-label]")) node.setAttribute("aria-label", t(node.dataset.tAriaLabel));
  document.documentElement.lang = LANGUAGE;
}
