// Active jobs: fill the table from GET api/ondemand/jobs and refresh it without reloading the
// page (every data-poll-ms, not while the tab is hidden); details and Cancel in dialogs.
// Calls go through window.Ondemand.api (portal.js: the XSRF header JupyterHub requires).
(function () {
  "use strict";

  const api = window.Ondemand.api;
  const table = document.getElementById("jobs-table");
  if (!table) return;
  const apiUrl = table.dataset.api;
  const pollMs = Number(table.dataset.pollMs) || 5000;
  const filter = document.getElementById("jobs-filter");
  let scope = "mine";
  let last = null;
  let timer = null;

  const BADGES = {
    PENDING: "text-bg-warning",
    RUNNING: "text-bg-success",
    COMPLETING: "text-bg-info",
    COMPLETED: "text-bg-secondary",
    CANCELLED: "text-bg-secondary",
    FAILED: "text-bg-danger",
    TIMEOUT: "text-bg-danger",
    OUT_OF_MEMORY: "text-bg-danger",
    NODE_FAIL: "text-bg-danger",
  };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function cell(text, className) {
    return el("td", className, text === null || text === undefined ? "" : text);
  }

  function badge(state, text) {
    return el("span", "badge " + (BADGES[state] || "text-bg-light border"), text);
  }

  function jobUrl(job) {
    return apiUrl + "/" + encodeURIComponent(job.cluster) + "/" + encodeURIComponent(job.id);
  }

  function matches(job) {
    const words = filter.value.trim().toLowerCase();
    if (!words) return true;
    const text = [job.id, job.name, job.user, job.partition, job.state_text, job.cluster_title].join(" ");
    return text.toLowerCase().includes(words);
  }

  function row(job, showUser) {
    const tr = el("tr");
    tr.dataset.jobId = job.id;
    tr.dataset.cluster = job.cluster;
    const idCell = el("td");
    const details = el("button", "btn btn-link btn-sm p-0 ondemand-job-id", job.id);
    details.type = "button";
    details.title = "Details of job " + job.id;
    details.addEventListener("click", () => showDetails(job));
    idCell.append(details);
    tr.append(idCell, cell(job.name, "ondemand-job-name"));
    if (showUser) tr.append(cell(job.user));
    const state = el("td");
    state.append(badge(job.state, job.state_text));
    if (job.time_left) state.append(el("div", "small text-body-secondary", job.time_left + " left"));
    tr.append(
      cell(job.cluster_title),
      cell(job.partition),
      state,
      cell((job.elapsed || "0:00") + " / " + (job.time_limit || "–")),
      cell(job.nodes),
      cell(job.reason_text || "", "ondemand-job-reason small"),
    );
    const actions = el("td", "text-end");
    if (job.cancellable) {
      const b = el("button", "btn btn-outline-danger btn-sm");
      b.type = "button";
      b.append(el("i", "bi bi-x-octagon me-1"), document.createTextNode("Cancel"));
      b.addEventListener("click", () => confirmCancel(job));
      actions.append(b);
    }
    tr.append(actions);
    return tr;
  }

  function render(data) {
    last = data;
    const showUser = data.scope === "all";
    document.querySelectorAll('[data-col="user"]').forEach((th) => (th.hidden = !showUser));
    const rows = document.getElementById("jobs-rows");
    const shown = data.jobs.filter(matches);
    rows.replaceChildren(...shown.map((job) => row(job, showUser)));
    if (!shown.length) {
      const empty = el("td", "text-body-secondary", data.jobs.length ? "No job matches the filter." : "No queued or running jobs.");
      empty.colSpan = 10;
      const tr = el("tr");
      tr.append(empty);
      rows.append(tr);
    }
    document.getElementById("jobs-count").textContent = data.jobs.length + (data.jobs.length === 1 ? " job" : " jobs");
    document.getElementById("jobs-updated").textContent = "Updated " + new Date().toLocaleTimeString();
    const clusters = document.getElementById("jobs-clusters");
    clusters.replaceChildren(
      ...data.clusters
        .filter((c) => c.scheduler !== "ok")
        .map((c) => {
          const alert = el("div", "alert alert-warning py-2 ondemand-scheduler-down");
          alert.setAttribute("role", "status");
          alert.append(el("strong", "", "Scheduler unreachable on " + c.title + ": "), document.createTextNode(c.message || "no answer"));
          alert.append(document.createTextNode(". Jobs there are not shown; they are not lost. The page keeps trying."));
          return alert;
        }),
    );
    renderHistory(data);
  }

  function renderHistory(data) {
    const notes = document.getElementById("history-notes");
    notes.replaceChildren(
      ...data.history_notes.map((n) => {
        const p = el("div", "alert alert-secondary py-2 small ondemand-history-note");
        p.append(
          el("strong", "", n.title + ": "),
          document.createTextNode("completed jobs cannot be shown because this cluster keeps no job accounting (sacct says: " + n.note + "). Queued and running jobs are above; a job's output is in its folder."),
        );
        return p;
      }),
    );
    const card = document.getElementById("history-card");
    const anyAccounting = data.clusters.some((c) => c.accounting);
    card.hidden = !anyAccounting;
    const rows = document.getElementById("history-rows");
    rows.replaceChildren(
      ...data.history.filter(matches).map((job) => {
        const tr = el("tr");
        tr.dataset.jobId = job.id;
        const state = el("td");
        state.append(badge(job.state, job.state_text));
        tr.append(cell(job.id), cell(job.name, "ondemand-job-name"), cell(job.cluster_title), state, cell(job.end), cell(job.elapsed), cell(job.node_list));
        return tr;
      }),
    );
    if (anyAccounting && !data.history.length) {
      const td = el("td", "text-body-secondary", "No completed jobs in the last 7 days.");
      td.colSpan = 7;
      const tr = el("tr");
      tr.append(td);
      rows.append(tr);
    }
  }

  function showError(message) {
    const alert = document.getElementById("jobs-error");
    alert.textContent = message || "";
    alert.hidden = !message;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      render(await api("GET", apiUrl + (scope === "all" ? "?scope=all" : "")));
      showError("");
    } catch (error) {
      showError("Could not load the jobs: " + error.message);
    }
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (document.hidden) schedule();
      else refresh();
    }, pollMs);
  }

  // --- details --------------------------------------------------------------------------

  const detailsModal = document.getElementById("job-details");
  async function showDetails(job) {
    document.getElementById("job-details-title").textContent = "Job " + job.id + ": " + job.name;
    const fields = document.getElementById("job-details-fields");
    const error = document.getElementById("job-details-error");
    fields.replaceChildren(el("dd", "col-12 text-body-secondary", "Loading…"));
    error.hidden = true;
    const folder = document.getElementById("job-details-folder");
    folder.hidden = !job.composer_job;
    if (job.composer_job) folder.href = table.dataset.composerUrl + "#job-" + job.composer_job;
    bootstrap.Modal.getOrCreateInstance(detailsModal).show();
    try {
      const data = await api("GET", jobUrl(job));
      fields.replaceChildren(
        ...Object.entries(data.fields).flatMap(([key, value]) => {
          const dt = el("dt", "col-sm-4", key);
          const dd = el("dd", "col-sm-8", value);
          dt.dataset.field = key;
          return [dt, dd];
        }),
      );
    } catch (err) {
      fields.replaceChildren();
      error.textContent = err.message;
      error.hidden = false;
    }
  }

  // --- cancel ---------------------------------------------------------------------------

  const cancelModal = document.getElementById("job-cancel");
  let cancelling = null;
  function confirmCancel(job) {
    cancelling = job;
    document.getElementById("job-cancel-text").textContent =
      "Cancel job " + job.id + " (" + job.name + ", " + job.state_text + ")? Slurm stops it at once; this cannot be undone.";
    document.getElementById("job-cancel-error").hidden = true;
    document.getElementById("job-cancel-confirm").disabled = false;
    bootstrap.Modal.getOrCreateInstance(cancelModal).show();
  }
  document.getElementById("job-cancel-confirm").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      await api("POST", jobUrl(cancelling) + "/cancel", {});
      bootstrap.Modal.getOrCreateInstance(cancelModal).hide();
      refresh();
    } catch (err) {
      const error = document.getElementById("job-cancel-error");
      error.textContent = err.message;
      error.hidden = false;
    }
  });

  // --- controls -------------------------------------------------------------------------

  document.getElementById("jobs-refresh").addEventListener("click", refresh);
  filter.addEventListener("input", () => last && render(last));
  document.querySelectorAll('input[name="jobs-scope"]').forEach((input) =>
    input.addEventListener("change", () => {
      scope = input.value;
      refresh();
    }),
  );
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  refresh();
})();
