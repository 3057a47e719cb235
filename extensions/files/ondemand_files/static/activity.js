// The activity panel of the directory page: one row per upload or background job (copy, move),
// each with a progress bar, a status line, a cancel button while it runs and the per-item
// errors it reported.
(function () {
  "use strict";

  const OF = window.OndemandFiles;
  const { el, icon } = OF;

  const panel = document.getElementById("files-activity");
  const list = panel.querySelector(".files-activity-list");
  const clearButton = panel.querySelector("[data-files-clear-activity]");

  const VARIANT_ICONS = {
    running: "arrow-repeat",
    success: "check-circle-fill",
    warning: "exclamation-triangle-fill",
    danger: "x-circle-fill",
    secondary: "dash-circle",
  };

  function updatePanel() {
    const rows = list.children.length;
    panel.hidden = rows === 0;
    clearButton.hidden = !list.querySelector(".files-task-finished");
  }

  class Task {
    // `iconName`: Bootstrap Icons name for the kind of work; `onCancel`: shows a cancel button.
    // `tooltip`: the full text behind a short title (e.g. the destination path).
    constructor({ title, tooltip = title, iconName = "gear", onCancel = null }) {
      this.finished = false;
      this.bar = el("div", { class: "progress-bar", style: "width: 0%" });
      this.progress = el(
        "div",
        {
          class: "progress files-task-progress",
          role: "progressbar",
          "aria-label": title,
          "aria-valuemin": "0",
          "aria-valuemax": "100",
          "aria-valuenow": "0",
        },
        this.bar
      );
      this.statusIcon = icon(VARIANT_ICONS.running, "files-task-spin text-primary");
      this.status = el("span", { class: "files-task-status small text-body-secondary" });
      this.errors = el("ul", { class: "files-task-errors small text-danger mb-0 mt-1 ps-3", hidden: true });
      this.cancelButton = el(
        "button",
        { type: "button", class: "btn btn-sm btn-outline-secondary files-task-cancel", "aria-label": "Cancel " + title },
        icon("x-lg"),
        el("span", { class: "d-none d-sm-inline ms-1", text: "Cancel" })
      );
      this.cancelButton.hidden = !onCancel;
      if (onCancel) this.cancelButton.addEventListener("click", () => onCancel());
      this.row = el(
        "li",
        { class: "list-group-item files-task" },
        el(
          "div",
          { class: "d-flex align-items-center gap-2" },
          icon(iconName, "text-body-secondary flex-shrink-0"),
          el("span", { class: "files-task-title text-truncate flex-grow-1", title: tooltip, text: OF.displayName(title) }),
          this.status,
          this.statusIcon,
          this.cancelButton
        ),
        this.progress,
        this.errors
      );
      list.append(this.row);
      updatePanel();
    }

    // `fraction` in [0, 1], or null for an indeterminate (striped, animated) bar.
    setProgress(fraction, text) {
      if (this.finished) return;
      if (fraction === null) {
        this.bar.classList.add("progress-bar-striped", "progress-bar-animated");
        this.bar.style.width = "100%";
        this.progress.removeAttribute("aria-valuenow");
      } else {
        const percent = Math.max(0, Math.min(100, fraction * 100));
        this.bar.classList.remove("progress-bar-striped", "progress-bar-animated");
        this.bar.style.width = percent.toFixed(1) + "%";
        this.progress.setAttribute("aria-valuenow", String(Math.round(percent)));
      }
      if (text !== undefined) this.status.textContent = text;
    }

    setStatus(text) {
      this.status.textContent = text;
    }

    addErrors(errors) {
      for (const { path, message } of errors) {
        this.errors.append(el("li", { class: "text-break", text: path ? path + ": " + message : message }));
      }
      this.errors.hidden = this.errors.children.length === 0;
    }

    // variant: "success", "warning" (done with errors), "danger" (failed), "secondary" (cancelled
    // or skipped).
    finish(variant, text) {
      this.finished = true;
      this.cancelButton.hidden = true;
      this.statusIcon.className = "bi bi-" + VARIANT_ICONS[variant] + " text-" + variant;
      this.status.textContent = text;
      this.status.className = "files-task-status small text-" + (variant === "secondary" ? "body-secondary" : variant + "-emphasis");
      this.bar.classList.remove("progress-bar-striped", "progress-bar-animated");
      this.bar.classList.add("bg-" + variant);
      if (variant === "success") this.bar.style.width = "100%";
      this.row.classList.add("files-task-finished");
      updatePanel();
    }

    remove() {
      this.row.remove();
      updatePanel();
    }
  }

  clearButton.addEventListener("click", () => {
    list.querySelectorAll(".files-task-finished").forEach((row) => row.remove());
    updatePanel();
  });

  OF.activity = {
    add: (options) => new Task(options),
    panel,
  };
})();
