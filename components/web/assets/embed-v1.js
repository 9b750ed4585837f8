/*! ClientFlow form embed v1. Include on a landing page (EDGE is your ClientFlow Edge origin):
 *    <form data-clientflow method="post" action="EDGE/v1/leads?key=CAPTURE_KEY"> … </form>
 *    <script src="EDGE/embed/v1.js" defer></script>
 *  Each such form is posted with fetch() and shows its answer inline. Without JavaScript the
 *  same form still posts and lands on the tenant's thank-you URL (303).
 *  Optional attributes: data-clientflow-success="…" (the thank-you text).
 *  The form carries data-clientflow-state="sending" | "sent" | "error" for styling.
 */
(function () {
  "use strict";
  if (window.ClientFlow && window.ClientFlow.version === 1) return;

  var SUCCESS = "Thank you! We will be in touch soon.";
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

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(36).slice(2);
  }

  function problemText(body, status) {
    if (body && typeof body.detail === "string") return body.detail;
    return "The form could not be sent (error " + status + ").";
  }

  function attach(form) {
    if (form.__clientflow) return;
    form.__clientflow = true;
    honeypot(form);
    // Where the visitor came from, unless the page already says so.
    var params = new URLSearchParams(location.search);
    ["utm_source", "utm_medium", "utm_campaign"].forEach(function (name) {
      if (params.get(name)) hidden(form, name, params.get(name));
    });
    hidden(form, "page_url", location.href.split("#")[0]);

    // One Idempotency-Key per distinct body: a retry of the same answers is never a second
    // lead, and a changed answer is a new request.
    var lastBody = null;
    var key = null;
    var sending = false;

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (sending) return;
      var body = new URLSearchParams(new FormData(form)).toString();
      if (body !== lastBody) {
        lastBody = body;
        key = uuid();
      }
      sending = true;
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
            done();
            lastBody = null;
            form.reset();
            say(form, "sent", form.getAttribute("data-clientflow-success") || SUCCESS);
            form.dispatchEvent(new CustomEvent("clientflow:sent", { bubbles: true }));
            return;
          }
          return resp.json().catch(function () { return null; }).then(function (problem) {
            done();
            // 503: storage busy; 409 idempotency_key_in_progress: this very submission is still
            // being stored (a retry came in while the first try was running). Both: try again.
            if (resp.status === 503 || (problem && problem.code === "idempotency_key_in_progress")) {
              say(form, "error", RETRY);
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
