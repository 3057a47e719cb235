// The job composer: the user's job folders (GET api/ondemand/composer/jobs, refreshed every
// data-poll-ms while the tab is visible), their settings, Submit, Stop and Delete, and new jobs
// from a template, a job or a directory. Calls go through window.Ondemand.api (portal.js).
(function () {
  "use strict";

  const api = window.Ondemand.api;
  const root = document.getElementById("composer");
  if (!root) return;
  const apiUrl = root.dataset.api;
  const pollMs = Number(root.dataset.pollMs) || 5000;
  const form = document.getElementById("composer-settings");
  let jobs = [];
  let selected = (window.location.hash.match(/^#job-([0-9]+)$/) || [])[1] || null;
  let formFor = null; // the job whose values the settings form holds (never overwritten while edited)
  let timer = null;

  const BADGES = {
    PENDING: "text-bg-warning",
    RUNNING: "text-bg-success",
    COMPLETING: "text-bg-info",
    FAILED: "text-bg-danger",
    TIMEOUT: "text-bg-danger",
    OUT_OF_MEMORY: "text-bg-danger",
    UNKNOWN: "text-bg-warning",
  };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function jobUrl(number) {
    return apiUrl + "/jobs/" + encodeURIComponent(number);
  }

  function stateOf(job) {
    if (!job.last_job) return { state: "NEW", text: "not submitted" };
    return { state: job.last_job.state, text: job.last_job.id + ": " + job.last_job.state_text };
  }

  function badgeClass(state) {
    return "badge " + (BADGES[state] || "text-bg-secondary");
  }

  function notice(message, isError) {
    const error = document.getElementById("composer-error");
    const ok = document.getElementById("composer-notice");
    error.hidden = ok.hidden = true;
    if (!message) return;
    const target = isError ? error : ok;
    target.textContent = message;
    target.hidden = false;
  }

  // --- the list -------------------------------------------------------------------------

  function renderList() {
    const list = document.getElementById("composer-jobs");
    if (!jobs.length) {
      list.replaceChildren(el("div", "list-group-item text-body-secondary", "No jobs yet: make one with New job."));
    } else {
      list.replaceChildren(
        ...jobs.map((job) => {
          const item = el("button", "list-group-item list-group-item-action d-flex align-items-center gap-2");
          item.type = "button";
          item.dataset.job = job.number;
          if (job.number === selected) {
            item.classList.add("active");
            item.setAttribute("aria-current", "true");
          }
          const text = el("div", "me-auto text-truncate");
          text.append(el("div", "fw-semibold text-truncate", job.title), el("div", "small text-body-secondary", "#" + job.number + " · " + job.script));
          const state = stateOf(job);
          item.append(text, el("span", badgeClass(state.state), state.state === "NEW" ? "new" : job.last_job.state_text));
          item.addEventListener("click", () => select(job.number));
          return item;
        }),
      );
    }
    document.getElementById("new-from-job").disabled = !selected;
  }

  // --- the selected job -----------------------------------------------------------------

  function setLink(a, href, text) {
    a.href = href;
    a.textContent = text;
  }

  function renderDetails() {
    const job = jobs.find((j) => j.number === selected);
    document.getElementById("composer-details").hidden = !job;
    document.getElementById("composer-empty").hidden = !!job;
    if (!job) return;
    document.getElementById("composer-title").textContent = job.title;
    const state = stateOf(job);
    const badge = document.getElementById("composer-state");
    badge.className = badgeClass(state.state);
    badge.textContent = state.state === "NEW" ? "not submitted" : state.text;
    setLink(document.getElementById("composer-folder"), job.folder_url, job.folder);
    document.getElementById("composer-script").textContent = job.script + (job.script_exists ? "" : " (missing)");
    document.getElementById("composer-edit").href = job.script_url;
    const lastJob = document.getElementById("composer-last");
    lastJob.textContent = job.last_job ? "Job " + job.last_job.id + " on " + job.last_job.cluster + ": " + job.last_job.state_text : "never submitted";
    const output = document.getElementById("composer-output");
    if (job.last_job && job.last_job.output_url) {
      const a = el("a", "", "slurm-" + job.last_job.id + ".out");
      a.href = job.last_job.output_url;
      a.id = "composer-output-link";
      output.replaceChildren(a);
    } else {
      output.textContent = job.last_job ? "not written yet" : "none yet";
    }
    const active = !!(job.last_job && job.last_job.active);
    document.getElementById("composer-submit").disabled = active;
    document.getElementById("composer-stop").disabled = !active;
    document.getElementById("composer-delete").disabled = active;
    if (formFor !== job.number) fillForm(job);
  }

  function fillForm(job) {
    formFor = job.number;
    clearErrors();
    form.elements.title.value = job.title;
    const cluster = form.elements.cluster;
    if (job.cluster && [...cluster.options].some((o) => o.value === job.cluster)) cluster.value = job.cluster;
    form.elements.partition.value = job.partition;
    form.elements.account.value = job.account;
    form.elements.time_limit.value = job.time_limit;
    form.elements.script.value = job.script;
    loadPartitions();
  }

  function settings() {
    const values = {};
    ["title", "cluster", "partition", "account", "time_limit", "script"].forEach((name) => {
      if (form.elements[name]) values[name] = form.elements[name].value;
    });
    return values;
  }

  function clearErrors() {
    form.querySelectorAll(".is-invalid").forEach((e) => e.classList.remove("is-invalid"));
  }

  function showError(error) {
    const input = error.field && form.elements[error.field];
    const slot = error.field && form.querySelector('[data-error-for="' + CSS.escape(error.field) + '"]');
    if (input && slot) {
      input.classList.add("is-invalid");
      slot.textContent = error.message;
    }
    notice(error.message, true);
  }

  async function loadPartitions() {
    const cluster = form.elements.cluster.value;
    const list = document.getElementById("partitions");
    list.replaceChildren();
    if (!cluster) return;
    try {
      const data = await api("GET", apiUrl + "/partitions?cluster=" + encodeURIComponent(cluster));
      list.replaceChildren(...data.partitions.map((p) => {
        const o = el("option");
        o.value = p.name;
        o.label = p.name + (p.default ? " (default)" : "") + ", up to " + p.max_time;
        return o;
      }));
    } catch (error) {
      // the partition stays a free text field; sbatch says if it does not exist
    }
  }

  function select(number) {
    selected = number;
    history.replaceState(null, "", number ? "#job-" + number : window.location.pathname);
    notice("");
    renderList();
    renderDetails();
  }

  function replace(job) {
    const i = jobs.findIndex((j) => j.number === job.number);
    if (i >= 0) jobs[i] = job;
    else jobs.unshift(job);
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const data = await api("GET", apiUrl + "/jobs");
      jobs = data.jobs;
      if (selected && !jobs.some((j) => j.number === selected)) selected = null;
      if (!selected && jobs.length) selected = jobs[0].number;
      renderList();
      renderDetails();
    } catch (error) {
      notice("Could not load your jobs: " + error.message, true);
    }
    timer = setTimeout(function tick() {
      if (document.hidden) timer = setTimeout(tick, pollMs);
      else refresh();
    }, pollMs);
  }

  async function save() {
    clearErrors();
    const data = await api("PATCH", jobUrl(selected), settings());
    replace(data.job);
    formFor = null;
    return data.job;
  }

  async function act(button, work) {
    button.disabled = true;
    notice("");
    try {
      await work();
    } catch (error) {
      showError(error);
    } finally {
      renderList();
      renderDetails();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(form.querySelector('button[type="submit"]'), async () => {
      await save();
      notice("Settings saved.");
    });
  });
  form.elements.cluster.addEventListener("change", loadPartitions);

  document.getElementById("composer-submit").addEventListener("click", (event) =>
    act(event.currentTarget, async () => {
      await save();
      const data = await api("POST", jobUrl(selected) + "/submit", {});
      replace(data.job);
      notice("Submitted as job " + data.job.last_job.id + ".");
    }),
  );

  document.getElementById("composer-stop").addEventListener("click", (event) =>
    act(event.currentTarget, async () => {
      const data = await api("POST", jobUrl(selected) + "/stop", {});
      replace(data.job);
      notice("Job stopped.");
    }),
  );

  const deleteModal = document.getElementById("delete-job");
  document.getElementById("composer-delete").addEventListener("click", () => {
    const job = jobs.find((j) => j.number === selected);
    document.getElementById("delete-job-text").textContent =
      "Delete job #" + job.number + " (" + job.title + ") and its folder " + job.folder + " with everything in it, output included? This cannot be undone.";
    deleteModal.querySelector("[data-modal-error]").hidden = true;
    bootstrap.Modal.getOrCreateInstance(deleteModal).show();
  });
  document.getElementById("delete-job-confirm").addEventListener("click", async () => {
    try {
      await api("DELETE", jobUrl(selected));
      jobs = jobs.filter((j) => j.number !== selected);
      bootstrap.Modal.getOrCreateInstance(deleteModal).hide();
      select(jobs.length ? jobs[0].number : null);
      notice("Job deleted.");
    } catch (error) {
      const slot = deleteModal.querySelector("[data-modal-error]");
      slot.textContent = error.message;
      slot.hidden = false;
    }
  });

  // --- new jobs -------------------------------------------------------------------------

  async function create(body, modal) {
    const slot = modal ? modal.querySelector("[data-modal-error]") : null;
    if (slot) slot.hidden = true;
    try {
      const data = await api("POST", apiUrl + "/jobs", body);
      replace(data.job);
      if (modal) bootstrap.Modal.getOrCreateInstance(modal).hide();
      formFor = null;
      select(data.job.number);
      notice("Created job #" + data.job.number + " in " + data.job.folder + ".");
    } catch (error) {
      if (slot) {
        slot.textContent = error.message;
        slot.hidden = false;
      } else {
        notice(error.message, true);
      }
    }
  }

  const templateModal = document.getElementById("new-from-template");
  templateModal.querySelectorAll("[data-template]").forEach((b) =>
    b.addEventListener("click", () => create({ from: "template", template: b.dataset.template }, templateModal)),
  );
  document.getElementById("new-from-job").addEventListener("click", () => create({ from: "job", job: selected }, null));
  const directoryModal = document.getElementById("new-from-directory");
  document.getElementById("directory-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const f = event.currentTarget;
    create({ from: "directory", path: f.elements.path.value.trim(), script: f.elements.script.value.trim() }, directoryModal);
  });

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  refresh();
})();
