// Interactive apps: submit a launch form, and keep the My sessions cards up to date.
//
// Requests go through window.Ondemand.api (portal.js: the X-XSRFToken header JupyterHub requires
// on every call, GETs too); the Share dialog is share.js (window.OndemandShare).
(function () {
  "use strict";

  const api = window.Ondemand.api;

  // --- the launch form -------------------------------------------------------------------

  function formValues(form) {
    const values = { app: form.dataset.app };
    form.querySelectorAll("[data-widget]").forEach((input) => {
      const widget = input.dataset.widget;
      if (input.disabled || widget === "hidden_field") return;
      if (widget === "check_box") values[input.name] = input.checked;
      else if (widget === "number_field") values[input.name] = input.value.trim();
      else values[input.name] = input.value;
    });
    return values;
  }

  function clearErrors(form) {
    form.querySelectorAll(".is-invalid").forEach((el) => el.classList.remove("is-invalid"));
    form.querySelectorAll("[data-error-for]").forEach((el) => (el.textContent = ""));
    document.getElementById("session-form-error").hidden = true;
  }

  function showError(form, error) {
    const input = error.field ? form.querySelector('[name="' + CSS.escape(error.field) + '"]') : null;
    const slot = error.field ? form.querySelector('[data-error-for="' + CSS.escape(error.field) + '"]') : null;
    if (input && slot) {
      input.classList.add("is-invalid");
      slot.textContent = error.message;
      input.focus();
      return;
    }
    const alert = document.getElementById("session-form-error");
    alert.textContent = error.message;
    alert.hidden = false;
  }

  function initForm(form) {
    // Partitions, accounts and which fields exist depend on the cluster: show its form.
    const cluster = form.querySelector('select[name="cluster"]');
    if (cluster) {
      cluster.addEventListener("change", () => {
        const url = new URL(window.location.href);
        url.searchParams.set("cluster", cluster.value);
        window.location.assign(url.toString());
      });
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector('button[type="submit"]');
      clearErrors(form);
      button.disabled = true;
      try {
        const reply = await api("POST", form.dataset.api, formValues(form));
        window.location.assign(reply.sessions_url || form.dataset.sessionsUrl);
      } catch (error) {
        showError(form, error);
        button.disabled = false;
      }
    });
  }

  // --- My sessions -----------------------------------------------------------------------

  const BADGES = {
    running: "text-bg-success",
    starting: "text-bg-warning",
    queued: "text-bg-warning",
    stopping: "text-bg-secondary",
    stopped: "text-bg-secondary",
  };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(label, icon, className, onClick) {
    const b = el("button", "btn btn-sm " + className);
    b.type = "button";
    b.append(el("i", "bi bi-" + icon + " me-1"), document.createTextNode(label));
    b.addEventListener("click", onClick);
    return b;
  }

  function link(label, icon, className, href, newTab) {
    const a = el("a", "btn btn-sm " + className);
    a.href = href;
    if (newTab) {
      a.target = "_blank";
      a.rel = "noopener";
    }
    a.append(el("i", "bi bi-" + icon + " me-1"), document.createTextNode(label));
    return a;
  }

  function when(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso;
    return date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }

  function fromNow(iso) {
    const minutes = Math.round((new Date(iso).getTime() - Date.now()) / 60000);
    if (!Number.isFinite(minutes) || minutes < 1) return "";
    if (minutes < 60) return " (in " + minutes + " min)";
    return " (in " + Math.floor(minutes / 60) + " h " + String(minutes % 60).padStart(2, "0") + " min)";
  }

  function ordinal(n) {
    const tens = n % 100;
    const suffix = tens >= 11 && tens <= 13 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th";
    return n + suffix;
  }

  // What the scheduler says about the session's job, as [label, value] rows.
  function jobRows(session) {
    const rows = [];
    const job = session.job;
    if (session.started) rows.push(["Started", when(session.started)]);
    if (!job) return rows;
    rows.push(["Job", job.id + (job.partition ? " on " + job.partition : "") + ": " + job.state_text]);
    if (job.node) rows.push(["Node", job.node]);
    if (job.time_left) rows.push(["Time left", job.time_left]);
    if (job.state === "PENDING") {
      if (job.queue_position) {
        const place = job.queue_position === 1 ? "next in line" : ordinal(job.queue_position) + " in line";
        rows.push(["In queue", place + (job.partition ? " in " + job.partition : "")]);
      }
      rows.push(["Expected start", job.expected_start ? when(job.expected_start) + fromNow(job.expected_start) : "not estimated yet"]);
      if (job.reason_text) rows.push(["Waiting", job.reason_text]);
    }
    return rows;
  }

  function details(session) {
    const dl = el("dl", "row small mb-2 ondemand-session-details");
    jobRows(session).forEach(([label, value]) => {
      const dt = el("dt", "col-sm-4", label);
      const dd = el("dd", "col-sm-8", value);
      dt.dataset.field = label;
      dl.append(dt, dd);
    });
    return dl;
  }

  function thumbnail(session, oldThumbnails) {
    const old = oldThumbnails.get(session.name);
    // Same version: keep the image already shown (no new request, no flicker).
    if (old && old.getAttribute("src") === session.thumbnail_url) return old;
    const img = el("img", "ondemand-session-thumbnail rounded border float-end ms-3 mb-2");
    img.src = session.thumbnail_url;
    img.alt = "Screenshot of " + session.title + " " + session.name;
    img.dataset.session = session.name;
    return img;
  }

  function card(session, list, oldThumbnails) {
    const apiUrl = list.dataset.api + "/" + encodeURIComponent(session.name);
    const col = el("div", "col");
    const c = el("div", "card h-100 ondemand-session-card");
    c.dataset.session = session.name;
    const body = el("div", "card-body");
    const title = el("h2", "h5 card-title d-flex align-items-center gap-2");
    title.append(el("i", "bi bi-" + session.icon + " text-primary"), el("span", "me-auto", session.title));
    title.append(el("span", "badge " + (BADGES[session.state] || "text-bg-secondary"), session.state));
    body.append(title);
    if (session.thumbnail_url) body.append(thumbnail(session, oldThumbnails));
    const meta = el("p", "small text-body-secondary mb-2", session.name + " · " + session.message);
    body.append(meta);
    if (session.scheduler === "unreachable") {
      const warn = el("p", "small text-warning-emphasis mb-2 ondemand-scheduler-unreachable");
      warn.append(el("i", "bi bi-exclamation-triangle me-1"), document.createTextNode("Scheduler unreachable: the job's state is unknown right now."));
      body.append(warn);
    }
    body.append(details(session));
    const actions = el("div", "d-flex flex-wrap gap-2 clearfix");
    const act = (method, url, confirmText) => async (event) => {
      if (confirmText && !window.confirm(confirmText)) return;
      event.currentTarget.disabled = true;
      try {
        await api(method, url, method === "POST" ? {} : undefined);
      } catch (error) {
        showListError(error);
      }
      refresh(list);
    };
    if (session.connect_url) actions.append(link("Connect", "box-arrow-up-right", "btn-primary", session.connect_url, true));
    if (session.progress_url) actions.append(link("Progress", "hourglass-split", "btn-outline-primary", session.progress_url, true));
    if (session.state === "running" || session.state === "starting") {
      actions.append(button("Cancel", "stop-circle", "btn-outline-warning", act("POST", apiUrl + "/stop")));
    }
    if (session.state === "stopped" && session.app) {
      actions.append(button("Relaunch", "arrow-repeat", "btn-outline-primary", act("POST", apiUrl + "/relaunch")));
    }
    actions.append(
      button("Delete", "trash", "btn-outline-danger", act("DELETE", apiUrl, "Delete session " + session.name + "? A running job is cancelled."))
    );
    actions.append(link("Folder", "folder2-open", "btn-outline-secondary", session.folder_url, false));
    if (session.log_url) actions.append(button("Output log", "terminal", "btn-outline-secondary", () => openLog(session, list)));
    if (session.state === "running") {
      actions.append(
        button("Share", "people", "btn-outline-secondary", () =>
          window.OndemandShare.open(list.dataset.api, session.name, session.title + " " + session.name)
        )
      );
    }
    body.append(actions);
    c.append(body);
    col.append(c);
    return col;
  }

  // --- the output log modal --------------------------------------------------------------

  let logTimer = null;

  async function loadLog(url) {
    const pre = document.getElementById("session-log-text");
    const meta = document.getElementById("session-log-meta");
    const alert = document.getElementById("session-log-error");
    // Follow the end of the log unless the reader scrolled up (the first load always ends there).
    const atBottom = !pre.textContent || pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    try {
      const log = await api("GET", url);
      alert.hidden = true;
      if (!log.exists) {
        meta.textContent = "No output.log yet: it appears when the job starts.";
        pre.textContent = "";
        return;
      }
      meta.textContent =
        (log.truncated ? "The last lines of " : "") + "output.log, " + log.size + " bytes" +
        (log.modified ? ", written " + when(log.modified) : "");
      if (pre.textContent !== log.text) {
        pre.textContent = log.text;
        if (atBottom) pre.scrollTop = pre.scrollHeight;
      }
    } catch (error) {
      alert.textContent = "Could not read the log: " + error.message;
      alert.hidden = false;
    }
  }

  function openLog(session, list) {
    const modalEl = document.getElementById("session-log");
    document.getElementById("session-log-title").lastChild.textContent = "Output log · " + session.name;
    document.getElementById("session-log-text").textContent = "";
    document.getElementById("session-log-meta").textContent = "Loading…";
    const interval = Math.max(1000, parseInt(list.dataset.pollMs, 10) || 5000);
    window.clearInterval(logTimer);
    loadLog(session.log_url);
    logTimer = window.setInterval(() => loadLog(session.log_url), Math.min(interval, 3000));
    modalEl.addEventListener("hidden.bs.modal", () => window.clearInterval(logTimer), { once: true });
    modalEl.addEventListener(
      "shown.bs.modal",
      () => {
        const pre = document.getElementById("session-log-text");
        pre.scrollTop = pre.scrollHeight; // a log loaded while hidden could not scroll
      },
      { once: true }
    );
    window.bootstrap.Modal.getOrCreateInstance(modalEl).show();
  }

  function showListError(error) {
    const alert = document.getElementById("sessions-error");
    alert.textContent = error ? "Could not update the sessions: " + error.message : "";
    alert.hidden = !error;
  }

  async function refresh(list) {
    try {
      const data = await api("GET", list.dataset.api);
      const oldThumbnails = new Map();
      list.querySelectorAll("img[data-session]").forEach((img) => oldThumbnails.set(img.dataset.session, img));
      const cards = data.sessions.map((s) => card(s, list, oldThumbnails));
      if (!cards.length) cards.push(el("p", "text-body-secondary", "No sessions yet."));
      list.replaceChildren(...cards);
      showListError(null);
    } catch (error) {
      showListError(error);
    }
  }

  function initList(list) {
    const interval = Math.max(1000, parseInt(list.dataset.pollMs, 10) || 5000);
    const shared = document.getElementById("sessions-shared");
    const update = () => {
      refresh(list);
      if (shared) window.OndemandShare.renderSharedWithMe(shared, shared.dataset.api);
    };
    update();
    window.setInterval(() => {
      if (!document.hidden) update();
    }, interval);
  }

  const form = document.getElementById("session-form");
  if (form) initForm(form);
  const list = document.getElementById("sessions-list");
  if (list) initList(list);
})();
