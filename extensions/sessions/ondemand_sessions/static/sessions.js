// Interactive apps: submit a launch form, and keep the My sessions cards up to date.
//
// Every request (GETs too: JupyterHub requires it behind the hub) sends the X-XSRFToken header
// with the value jupyter-server put in the _xsrf cookie when it rendered the page.
(function () {
  "use strict";

  function xsrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function api(method, url, body) {
    const headers = { "X-XSRFToken": xsrfToken() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      // not JSON (a proxy's error page): keep the HTTP status
    }
    if (!response.ok) {
      const error = new Error((data && data.message) || response.status + " " + response.statusText);
      error.field = data && data.field;
      throw error;
    }
    return data;
  }

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

  function card(session, list) {
    const apiUrl = list.dataset.api + "/" + encodeURIComponent(session.name);
    const col = el("div", "col");
    const c = el("div", "card h-100 ondemand-session-card");
    c.dataset.session = session.name;
    const body = el("div", "card-body");
    const title = el("h2", "h5 card-title d-flex align-items-center gap-2");
    title.append(el("i", "bi bi-" + session.icon + " text-primary"), el("span", "me-auto", session.title));
    title.append(el("span", "badge " + (BADGES[session.state] || "text-bg-secondary"), session.state));
    body.append(title);
    const meta = el("p", "small text-body-secondary mb-2", session.name + " · " + session.message);
    body.append(meta);
    const actions = el("div", "d-flex flex-wrap gap-2");
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
    body.append(actions);
    c.append(body);
    col.append(c);
    return col;
  }

  function showListError(error) {
    const alert = document.getElementById("sessions-error");
    alert.textContent = error ? "Could not update the sessions: " + error.message : "";
    alert.hidden = !error;
  }

  async function refresh(list) {
    try {
      const data = await api("GET", list.dataset.api);
      const cards = data.sessions.map((s) => card(s, list));
      if (!cards.length) cards.push(el("p", "text-body-secondary", "No sessions yet."));
      list.replaceChildren(...cards);
      showListError(null);
    } catch (error) {
      showListError(error);
    }
  }

  function initList(list) {
    const interval = Math.max(1000, parseInt(list.dataset.pollMs, 10) || 5000);
    refresh(list);
    window.setInterval(() => {
      if (!document.hidden) refresh(list);
    }, interval);
  }

  const form = document.getElementById("session-form");
  if (form) initForm(form);
  const list = document.getElementById("sessions-list");
  if (list) initList(list);
})();
