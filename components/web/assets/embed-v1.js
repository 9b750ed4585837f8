/*! ClientFlow form embed v1. Include on a landing page (EDGE is your ClientFlow Edge origin):
 *    <form data-clientflow method="post" action="EDGE/v1/leads?key=CAPTURE_KEY"> … </form>
 *    <script src="EDGE/embed/v1.js" defer></script>
 *  Each such form is posted with fetch() and shows its answer inline. Without JavaScript the
 *  same form still posts and lands on the tenant's thank-you URL (303).
 *  Optional attributes: data-clientflow-success="…" (the thank-you text);
 *  data-clientflow-redirect="off" (stay on the page instead of going to the tenant's thank-you
 *  URL); data-clientflow-error-FIELD="…" on the form, or data-clientflow-error="…" on a field
 *  (the text shown next to that field when the API refuses its value).
 *  Spam rules the tenant sets in its settings: with a captcha on, the form carries
 *  data-clientflow-captcha="turnstile" | "hcaptcha" and data-clientflow-sitekey="SITE_KEY", and
 *  the script shows the provider's widget (data-clientflow-error-captcha="…" overrides the text
 *  shown when the check fails); every post says how long the form was shown (_fill_ms), which
 *  the tenant's minimum fill time is checked against.
 *  The form carries data-clientflow-state="sending" | "sent" | "error" for styling.
 */
(function () {
  "use strict";
  if (window.ClientFlow && window.ClientFlow.version === 1) return;

  var SUCCESS = "Thank you! We will be in touch soon.";
  var CAPTCHA_FAILED = "Please complete the verification again, then send the form.";
  /** The field that says how long the form was shown before it was sent, in milliseconds. */
  var FILL_MS = "_fill_ms";
  /** What each captcha provider's widget needs: its script, its element's class and token field. */
  var CAPTCHAS = {
    turnstile: { script: "https://challenges.cloudflare.com/turnstile/v0/api.js", widget: "cf-turnstile", token: "cf-turnstile-response" },
    hcaptcha: { script: "https://js.hcaptcha.com/1/api.js", widget: "h-captcha", token: "h-captcha-response" },
  };
  var RETRY = "We could not send your request just now. Please check your connection and try again in a moment.";

  function messageBox(form) {
    var box = form.querySelector("[data-clientflow-message]");
    if (!box) {
      box = document.createElement("p");
      box.setAttribute("data-clientflow-message", "");
      box.setAttribute("role", "status");
      box.setAttribute("aria-live", "polite");
      box.hidden = true;
      form.appendChild(box);
    }
    return box;
  }

  function say(form, state, text) {
    var box = messageBox(form);
    form.setAttribute("data-clientflow-state", state);
    box.setAttribute("data-clientflow-message", state);
    box.setAttribute("role", state === "error" ? "alert" : "status");
    box.textContent = text;
    box.hidden = false;
  }

  function hidden(form, name, value) {
    if (form.elements.namedItem(name)) return;
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }

  /** The honeypot: present, empty and out of sight (bots fill it; people never see it). */
  function honeypot(form) {
    var trap = form.elements.namedItem("_gotcha");
    if (!trap) {
      trap = document.createElement("input");
      trap.type = "text";
      trap.name = "_gotcha";
      form.appendChild(trap);
    }
    trap.tabIndex = -1;
    trap.autocomplete = "off";
    trap.setAttribute("aria-hidden", "true");
    trap.hidden = true;
  }

  /** The form's captcha provider, when it names one the script knows and a site key. */
  function captchaOf(form) {
    var provider = CAPTCHAS[form.getAttribute("data-clientflow-captcha")];
    return provider && form.getAttribute("data-clientflow-sitekey") ? provider : null;
  }

  /** Shows the provider's widget before the submit button, loading its script once. */
  function captcha(form) {
    var provider = captchaOf(form);
    if (!provider) return;
    if (!form.querySelector("." + provider.widget)) {
      var widget = document.createElement("div");
      widget.className = provider.widget;
      widget.setAttribute("data-sitekey", form.getAttribute("data-clientflow-sitekey"));
      var button = form.querySelector("button, input[type=submit]");
      if (button) button.insertAdjacentElement("beforebegin", widget);
      else form.appendChild(widget);
    }
    if (!document.querySelector('script[src^="' + provider.script + '"]')) {
      var script = document.createElement("script");
      script.src = provider.script;
      script.async = true;
      script.defer = true;
      document.head.appendChild(script);
    }
  }

  /** A token is good for one check: after one is used, the widget asks for a new one. */
  function resetCaptcha(form) {
    var provider = captchaOf(form);
    var widget = provider && form.querySelector("." + provider.widget);
    if (!widget) return;
    try {
      if (provider.widget === "cf-turnstile" && window.turnstile) window.turnstile.reset(widget);
      if (provider.widget === "h-captcha" && window.hcaptcha) window.hcaptcha.reset();
    } catch (e) {
      // A widget that is not rendered yet has nothing to reset.
    }
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(36).slice(2);
  }

  /** What a visitor reads next to a refused field, unless the form says otherwise. */
  var FIELD_ERRORS = {
    email: "Please enter a valid email address.",
    name: "Please shorten your name.",
    phone: "Please enter a phone number (digits, spaces, + - ( ) .).",
    consent: "Please tick or untick the box again.",
    tags: "Please choose fewer options.",
  };
  var FIELD_ERROR = "Please check this field.";
  var CHECK_FIELDS = "Please check the highlighted field.";

  /** The field a `422 invalid_field` names: its `detail` starts with `name: `. */
  function refusedField(form, problem) {
    if (!problem || problem.code !== "invalid_field" || typeof problem.detail !== "string") return null;
    var name = problem.detail.split(":")[0].trim();
    var field = name && form.elements.namedItem(name);
    if (!field || field.type === "hidden" || field.name === "_gotcha") return null;
    return field.nodeType ? field : field[0] || null;
  }

  function clearFieldErrors(form) {
    form.querySelectorAll("[data-clientflow-field-error]").forEach(function (note) {
      var field = form.elements.namedItem(note.getAttribute("data-clientflow-field-error"));
      if (field && field.removeAttribute) {
        field.removeAttribute("aria-invalid");
        field.removeAttribute("aria-errormessage");
      }
      note.remove();
    });
  }

  /** Shows `field`'s message right after it (after its label when the label wraps it). */
  function showFieldError(form, field) {
    var name = field.name;
    var text = field.getAttribute("data-clientflow-error") ||
      form.getAttribute("data-clientflow-error-" + name) ||
      FIELD_ERRORS[name] || FIELD_ERROR;
    var note = document.createElement("span");
    note.id = "clientflow-error-" + name + "-" + Math.random().toString(36).slice(2, 8);
    note.setAttribute("data-clientflow-field-error", name);
    note.textContent = text;
    var anchor = field.closest("label") || field;
    anchor.insertAdjacentElement("afterend", note);
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-errormessage", note.id);
    field.focus();
    return text;
  }

  function problemText(body, status) {
    if (body && typeof body.detail === "string") return body.detail;
    return "The form could not be sent (error " + status + ").";
  }

  function attach(form) {
    if (form.__clientflow) return;
    form.__clientflow = true;
    honeypot(form);
    captcha(form);
    var shownAt = Date.now();
    // Where the visitor came from, unless the page already says so.
    var params = new URLSearchParams(location.search);
    ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid", "ttclid"]
      .forEach(function (name) {
        if (params.get(name)) hidden(form, name, params.get(name).slice(0, 200));
      });
    hidden(form, "page_url", location.href.split("#")[0]);
    if (/^https?:\/\//.test(document.referrer)) hidden(form, "referrer", document.referrer.slice(0, 2000));

    // One Idempotency-Key per distinct body: a retry of the same answers is never a second
    // lead, and a changed answer is a new request.
    var lastBody = null;
    var key = null;
    var sending = false;
    // How long the form was shown when these answers were first sent: a retry of the same
    // answers sends the same time, so it is the same body under the same key.
    var lastAnswers = null;
    var fillMs = 0;

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (sending) return;
      var data = new FormData(form);
      var answers = new FormData(form);
      [FILL_MS, "cf-turnstile-response", "h-captcha-response", "g-recaptcha-response"]
        .forEach(function (name) { answers.delete(name); });
      var answersText = new URLSearchParams(answers).toString();
      if (answersText !== lastAnswers) {
        lastAnswers = answersText;
        fillMs = Date.now() - shownAt;
      }
      data.set(FILL_MS, String(fillMs));
      var body = new URLSearchParams(data).toString();
      if (body !== lastBody) {
        lastBody = body;
        key = uuid();
      }
      sending = true;
      clearFieldErrors(form);
      form.setAttribute("aria-busy", "true");
      say(form, "sending", "Sending…");
      var buttons = form.querySelectorAll("button, input[type=submit]");
      buttons.forEach(function (b) { b.disabled = true; });
      var done = function () {
        sending = false;
        form.removeAttribute("aria-busy");
        buttons.forEach(function (b) { b.disabled = false; });
      };
      fetch(form.action, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
          "idempotency-key": key,
        },
        body: body,
      })
        .then(function (resp) {
          if (resp.ok) {
            return resp.json().catch(function () { return null; }).then(function (answer) {
              done();
              lastBody = null;
              lastAnswers = null;
              form.reset();
              resetCaptcha(form);
              say(form, "sent", form.getAttribute("data-clientflow-success") || SUCCESS);
              var sent = new CustomEvent("clientflow:sent", { bubbles: true, cancelable: true });
              form.dispatchEvent(sent);
              // The tenant's thank-you page (its ad-conversion pixels run there), unless the
              // form opts out or a listener cancelled the event.
              var url = answer && answer.thank_you_url;
              if (typeof url === "string" && /^https:\/\//.test(url) && !sent.defaultPrevented &&
                  form.getAttribute("data-clientflow-redirect") !== "off") {
                form.setAttribute("data-clientflow-state", "redirecting");
                location.assign(url);
              }
            });
          }
          return resp.json().catch(function () { return null; }).then(function (problem) {
            done();
            // 503: storage busy; 409 idempotency_key_in_progress: this very submission is still
            // being stored (a retry came in while the first try was running). Both: try again.
            if (resp.status === 503 || (problem && problem.code === "idempotency_key_in_progress")) {
              say(form, "error", RETRY);
            } else if (problem && problem.code === "captcha_failed") {
              // The typed values stay; the visitor completes a fresh check and sends again.
              resetCaptcha(form);
              say(form, "error", form.getAttribute("data-clientflow-error-captcha") || CAPTCHA_FAILED);
            } else if (refusedField(form, problem)) {
              // The typed values stay; the message sits next to the field it is about.
              showFieldError(form, refusedField(form, problem));
              say(form, "error", form.getAttribute("data-clientflow-error") || CHECK_FIELDS);
            } else if (resp.status === 429) {
              var wait = resp.headers.get("retry-after");
              say(form, "error", "Too many attempts from your connection. Please try again" + (wait ? " in " + wait + " seconds." : " later."));
            } else {
              say(form, "error", "Sorry, this form could not be sent: " + problemText(problem, resp.status));
            }
            form.dispatchEvent(new CustomEvent("clientflow:error", { bubbles: true, detail: { status: resp.status, problem: problem } }));
          });
        })
        .catch(function () {
          // A network failure, or a refusal the browser hides (CORS): the visitor may retry
          // with the same key, so a lead that did arrive is not stored twice.
          done();
          say(form, "error", RETRY);
          form.dispatchEvent(new CustomEvent("clientflow:error", { bubbles: true, detail: { status: 0 } }));
        });
    });
  }

  function scan() {
    document.querySelectorAll("form[data-clientflow]").forEach(attach);
  }

  window.ClientFlow = { version: 1, attach: attach };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
