// The portal's only script (the CSP forbids inline ones). It enhances server-rendered pages:
// copy buttons, confirmations, auto-submitting selects and live run updates. Data from the
// server is only ever written with textContent.
"use strict";

document.addEventListener("click", (ev) => {
  const btn = ev.target.closest("[data-copy]");
  if (!btn) return;
  navigator.clipboard.writeText(btn.dataset.copy).then(() => {
    const label = btn.textContent;
    btn.textContent = "Copied";
    setTimeout(() => { btn.textContent = label; }, 1500);
  });
});

document.addEventListener("submit", (ev) => {
  const form = ev.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) ev.preventDefault();
});

document.addEventListener("change", (ev) => {
  if (ev.target.matches("[data-autosubmit]")) ev.target.form.requestSubmit();
});

function setStatus(el, status) {
  if (!el) return;
  el.textContent = status;
  el.className = el.className.replace(/\bst-\S+/g, "").trim() + " st-" + status;
}

function liveRun(head) {
  const id = head.dataset.runId;
  const es = new EventSource("/runs/" + encodeURIComponent(id) + "/events");
  es.onmessage = (msg) => {
    const run = JSON.parse(msg.data);
    setStatus(document.getElementById("run-status"), run.status);
    for (const t of run.tables || []) {
      const sec = document.querySelector('.run-table[data-table="' + CSS.escape(t.name) + '"]');
      if (!sec) continue;
      setStatus(sec.querySelector('[data-field="status"]'), t.status);
      sec.querySelector('[data-field="rows"]').textContent = t.rows;
      sec.querySelector('[data-field="error"]').textContent = t.error || "";
      for (const st of t.stages || []) {
        const li = sec.querySelector('[data-stage="' + CSS.escape(st.Name) + '"]');
        if (!li) continue;
        li.className = "stage st-" + st.State;
        li.querySelector('[data-field="state"]').textContent = st.State;
        li.querySelector('[data-field="duration"]').textContent = st.State === "pending" ? "" : st.Duration.toFixed(1) + " s";
        li.querySelector('[data-field="stage-error"]').textContent = st.Error || "";
      }
    }
    if (run.status === "succeeded" || run.status === "failed") {
      es.close();
      // Reload once so the page shows what fits a finished run (e.g. the Retry button).
      setTimeout(() => window.location.reload(), 300);
    }
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const head = document.querySelector("[data-run-live]");
  if (head) liveRun(head);
});
