// The dashboard's System status card: one line per cluster (CPUs in use, jobs running and
// pending, or "Scheduler unreachable") from GET api/ondemand/status, refreshed every
// data-refresh-ms while the tab is visible. The full page is status/.
(function () {
  "use strict";

  const card = document.getElementById("ondemand-status-widget");
  if (!card) return;
  const list = card.querySelector("[data-status-list]");
  const refreshMs = Math.max(5000, Number(card.dataset.refreshMs) || 30000);

  function row(cluster) {
    const li = document.createElement("li");
    li.className = "list-group-item";
    li.dataset.cluster = cluster.id;
    const head = document.createElement("div");
    head.className = "d-flex align-items-center gap-2";
    const title = document.createElement("span");
    title.className = "fw-semibold me-auto text-truncate";
    title.textContent = cluster.title;
    const badge = document.createElement("span");
    badge.className = "badge rounded-pill";
    head.append(title, badge);
    li.append(head);
    if (cluster.adapter !== "slurm") {
      badge.className += " text-bg-secondary";
      badge.textContent = "No scheduler";
      return li;
    }
    if (cluster.scheduler === "unreachable") {
      badge.className += " text-bg-warning";
      badge.textContent = "Scheduler unreachable";
      return li;
    }
    const t = cluster.totals;
    badge.className += " text-bg-success";
    badge.textContent = "Up";
    const pct = t.cpus_total ? Math.round((100 * t.cpus_used) / t.cpus_total) : 0;
    const bar = document.createElement("div");
    bar.className = "progress mt-2";
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-label", "CPUs in use on " + cluster.title);
    bar.setAttribute("aria-valuenow", String(pct));
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.style.height = "0.5rem";
    const fill = document.createElement("div");
    fill.className = "progress-bar";
    fill.style.width = pct + "%";
    bar.append(fill);
    const text = document.createElement("div");
    text.className = "small text-body-secondary mt-1";
    text.dataset.field = "summary";
    text.textContent =
      t.cpus_used + " of " + t.cpus_total + " CPUs in use · " +
      t.jobs_running + " running, " + t.jobs_pending + " pending" +
      (t.nodes_down ? " · " + t.nodes_down + " node(s) down" : "");
    li.append(bar, text);
    return li;
  }

  async function refresh() {
    if (!document.hidden) {
      try {
        const data = await window.Ondemand.api("GET", card.dataset.api);
        list.replaceChildren(...data.clusters.map(row));
        if (!data.clusters.length) {
          const li = document.createElement("li");
          li.className = "list-group-item text-body-secondary";
          li.textContent = "No cluster is configured.";
          list.append(li);
        }
      } catch (err) {
        const li = document.createElement("li");
        li.className = "list-group-item text-danger small";
        li.textContent = "Could not load the system status: " + err.message;
        list.replaceChildren(li);
      }
    }
    setTimeout(refresh, refreshMs);
  }

  refresh();
})();
