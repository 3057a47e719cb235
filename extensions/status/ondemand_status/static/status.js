// The System status page: fills each cluster's card from GET api/ondemand/status (cached on
// the server, one sinfo + squeue per interval for every open page) and refreshes it every
// data-refresh-ms, not while the tab is hidden. Charts are Chart.js, updated in place.
(function () {
  "use strict";

  const root = document.getElementById("status-clusters");
  if (!root) return;
  const api = root.dataset.api;
  const refreshMs = Math.max(5000, Number(root.dataset.refreshMs) || 30000);
  const charts = new Map();
  let timer = null;

  const COLORS = {
    used: "#1d5c8f",
    free: "#3aa655",
    unavailable: "#adb5bd",
    gpuUsed: "#7a3e9d",
    gpuFree: "#c9a3de",
  };

  function field(section, name) {
    return section.querySelector('[data-field="' + name + '"]');
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function totals(section, t) {
    const items = [
      ["Nodes up / down", t.nodes_up + " / " + t.nodes_down],
      ["CPUs in use", t.cpus_used + " of " + t.cpus_total],
      ["Jobs running", String(t.jobs_running)],
      ["Jobs pending", String(t.jobs_pending)],
    ];
    if (t.gpus_total) items.splice(2, 0, ["GPUs in use", t.gpus_used + " of " + t.gpus_total]);
    const dl = field(section, "totals");
    dl.replaceChildren();
    for (const [label, value] of items) {
      const div = document.createElement("div");
      div.className = "col";
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      div.append(dt, dd);
      dl.append(div);
    }
  }

  function table(section, partitions) {
    const body = field(section, "partitions");
    body.replaceChildren();
    for (const p of partitions) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = p.name;
      if (p.default) {
        const badge = document.createElement("span");
        badge.className = "badge text-bg-light border ms-2 fw-normal";
        badge.textContent = "default";
        th.append(badge);
      }
      const gpus = p.gpus_total > 0;
      tr.append(
        th,
        cell(String(p.nodes_up), "text-end"),
        cell(String(p.nodes_down), "text-end" + (p.nodes_down ? " text-danger fw-semibold" : "")),
        cell(p.cpus_used + " of " + p.cpus_total, "text-end"),
        cell(String(p.cpus_free), "text-end"),
        cell(gpus ? p.gpus_used + " of " + p.gpus_total : "–", "text-end"),
        cell(gpus ? String(p.gpus_total - p.gpus_used) : "–", "text-end"),
        cell(String(p.jobs_running), "text-end"),
        cell(String(p.jobs_pending), "text-end" + (p.jobs_pending ? " fw-semibold" : ""))
      );
      body.append(tr);
    }
  }

  function chartData(partitions) {
    const datasets = [
      { label: "CPUs in use", stack: "cpus", backgroundColor: COLORS.used,
        data: partitions.map((p) => p.cpus_used) },
      { label: "CPUs free", stack: "cpus", backgroundColor: COLORS.free,
        data: partitions.map((p) => p.cpus_free) },
      { label: "CPUs unavailable", stack: "cpus", backgroundColor: COLORS.unavailable,
        data: partitions.map((p) => Math.max(0, p.cpus_total - p.cpus_used - p.cpus_free)) },
    ];
    if (partitions.some((p) => p.gpus_total > 0)) {
      datasets.push(
        { label: "GPUs in use", stack: "gpus", backgroundColor: COLORS.gpuUsed,
          data: partitions.map((p) => p.gpus_used) },
        { label: "GPUs free", stack: "gpus", backgroundColor: COLORS.gpuFree,
          data: partitions.map((p) => Math.max(0, p.gpus_total - p.gpus_used)) }
      );
    }
    return { labels: partitions.map((p) => p.name), datasets: datasets };
  }

  function drawChart(section, partitions) {
    const canvas = section.querySelector("canvas");
    const box = canvas.parentElement;
    box.style.height = 5 + 2.75 * Math.max(1, partitions.length) + "rem";
    const data = chartData(partitions);
    let chart = charts.get(section);
    if (chart && chart.data.datasets.length === data.datasets.length) {
      chart.data.labels = data.labels;
      chart.data.datasets.forEach((d, i) => (d.data = data.datasets[i].data));
      chart.update();
      return;
    }
    if (chart) chart.destroy();
    if (typeof Chart === "undefined") return; // the table still says it all
    chart = new Chart(canvas, {
      type: "bar",
      data: data,
      options: {
        indexAxis: "y",
        maintainAspectRatio: false,
        animation: { duration: 300 },
        scales: {
          x: { stacked: true, beginAtZero: true, ticks: { precision: 0 },
               title: { display: true, text: "CPUs (and GPUs)" } },
          y: { stacked: true },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
    charts.set(section, chart);
  }

  function show(section, cluster) {
    const state = field(section, "state");
    if (cluster.adapter !== "slurm") return;
    field(section, "loading").hidden = true;
    const unreachable = cluster.scheduler === "unreachable";
    field(section, "unreachable").hidden = !unreachable;
    field(section, "content").hidden = unreachable;
    state.className = "badge rounded-pill " + (unreachable ? "text-bg-warning" : "text-bg-success");
    state.textContent = unreachable ? "Scheduler unreachable" : "Up";
    if (unreachable) {
      field(section, "error").textContent = cluster.error ? "Slurm said: " + cluster.error : "";
      return;
    }
    totals(section, cluster.totals);
    table(section, cluster.partitions);
    drawChart(section, cluster.partitions);
  }

  async function refresh() {
    clearTimeout(timer);
    const error = document.getElementById("status-error");
    try {
      const data = await window.Ondemand.api("GET", api);
      error.hidden = true;
      for (const cluster of data.clusters) {
        const section = root.querySelector('[data-cluster="' + CSS.escape(cluster.id) + '"]');
        if (section) show(section, cluster);
      }
      const when = new Date();
      document.getElementById("status-updated").textContent =
        "Updated " + when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) +
        " · refreshes every " + Math.round(refreshMs / 1000) + " s";
    } catch (err) {
      error.textContent = "Could not load the system status: " + err.message;
      error.hidden = false;
    }
    timer = setTimeout(tick, refreshMs);
  }

  function tick() {
    if (document.hidden) {
      timer = setTimeout(tick, refreshMs);
      return;
    }
    refresh();
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  refresh();
})();
