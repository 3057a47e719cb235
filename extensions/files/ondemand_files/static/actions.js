// What the directory page does to files: the toolbar and row menus (new file, new folder,
// download, rename, copy, move, delete, permissions) and the progress of background jobs.
(function () {
  "use strict";

  const OF = window.OndemandFiles;
  const { el, icon, request, ApiError } = OF;
  const listing = OF.listing;
  const urls = listing.urls;
  const root = listing.root;

  // ---- helpers ----

  function download(url) {
    const link = el("a", { href: url, download: "", hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
  }

  function downloadEntry(entry) {
    download(listing.isDirectory(entry) ? urls.zip(entry.path) : urls.fs(entry.path));
  }

  function itemsLabel(entries) {
    return entries.length === 1 ? "“" + entries[0].name + "”" : OF.plural(entries.length, "item");
  }

  // The outcome of delete/chmod: {"status": "ok"|"partial", "errors": [...]}.
  function reportBulk(reply, entries, doneText, failedText) {
    const errors = (reply && reply.errors) || [];
    if (errors.length === 0) {
      OF.toast(doneText, "success");
      return;
    }
    const lines = errors.slice(0, 10).map((e) => OF.basename(e.path || "") + ": " + e.message);
    if (errors.length > 10) lines.push("…and " + (errors.length - 10) + " more");
    OF.toast(failedText + " (" + errors.length + " of " + entries.length + ")", "danger", lines);
  }

  function showModalError(modalEl, message) {
    const slot = modalEl.querySelector(".files-modal-error");
    slot.textContent = message;
    slot.hidden = !message;
  }

  // ---- new file, new folder, rename ----

  function createIn(kind) {
    const folder = kind === "folder";
    OF.askName({
      title: folder ? "New folder" : "New file",
      label: folder ? "Folder name" : "File name",
      submitLabel: "Create",
      validate: OF.validateName,
      submit: async (name) => {
        const path = OF.joinPath(listing.dir, name);
        await request(urls.api(folder ? "mkdir" : "newfile"), { method: "POST", json: { path } });
        return path;
      },
    }).then((path) => {
      if (!path) return;
      OF.toast("Created " + (folder ? "folder" : "file") + " “" + OF.basename(path) + "”.", "success");
      listing.reload({ highlight: [path] });
    });
  }

  function rename([entry]) {
    OF.askName({
      title: "Rename",
      label: "New name",
      value: entry.name,
      submitLabel: "Rename",
      selectStem: !listing.isDirectory(entry),
      validate: (name) => (name === entry.name ? "Enter a different name." : OF.validateName(name)),
      submit: async (name) => {
        const reply = await request(urls.api("rename"), { method: "POST", json: { path: entry.path, name } });
        return (reply && reply.path) || OF.joinPath(OF.dirname(entry.path), name);
      },
    }).then((path) => {
      if (!path) return;
      listing.clearSelection();
      listing.reload({ highlight: [path] });
    });
  }

  // ---- copy and move: background jobs ----

  function transfer(op, entries) {
    const verb = op === "copy" ? "Copy" : "Move";
    OF.askName({
      title: verb + " " + itemsLabel(entries) + " to…",
      label: "Destination folder",
      value: listing.dir,
      submitLabel: verb,
      help: "An absolute path to an existing folder. The items keep their names.",
      validate: (dest) => {
        if (!dest.startsWith("/")) return "Enter an absolute path, starting with “/”.";
        if (dest.includes("\0")) return "A path cannot contain a NUL character.";
        const here = entries.every((e) => OF.dirname(e.path) === dest.replace(/(.)\/+$/, "$1"));
        return here ? "The items are already in this folder; choose another one." : "";
      },
      submit: async (dest) => {
        const paths = entries.map((e) => e.path);
        const reply = await request(urls.api(op), { method: "POST", json: { paths, dest } });
        return { job: reply.job, dest };
      },
    }).then((started) => {
      if (!started) return;
      listing.clearSelection();
      trackJob(started.job, op, verb + " " + itemsLabel(entries) + " to " + started.dest);
    });
  }

  function jobProgressText(job) {
    let text = OF.numberFormat.format(job.items_done || 0) + " of " + OF.plural(job.items_total || 0, "item");
    if (job.bytes_total > 0) text += " · " + OF.humanSize(job.bytes_done || 0) + " of " + OF.humanSize(job.bytes_total);
    return text;
  }

  // Poll GET api/jobs/<id> until the job ends, showing its progress and per-item errors.
  async function trackJob(id, op, title) {
    const task = OF.activity.add({ title, iconName: op === "copy" ? "copy" : "arrows-move" });
    task.setProgress(null, "Starting…");
    let shownErrors = 0;
    let failures = 0;
    let delay = 300;
    for (;;) {
      let job;
      try {
        job = await request(urls.api("jobs/" + OF.encodeSegment(String(id))));
        failures = 0;
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        failures++;
        if (error.status === 404 || failures > 5) {
          task.finish("danger", "Lost track of this job: " + error.message);
          listing.reload();
          return;
        }
        await OF.sleep(1000 * failures);
        continue;
      }
      const errors = job.errors || [];
      task.addErrors(errors.slice(shownErrors));
      shownErrors = errors.length;
      if (job.state === "running") {
        const fraction =
          job.bytes_total > 0
            ? job.bytes_done / job.bytes_total
            : job.items_total > 0
              ? job.items_done / job.items_total
              : null;
        task.setProgress(fraction, jobProgressText(job));
        await OF.sleep(delay);
        delay = Math.min(1000, delay * 1.5);
        continue;
      }
      const past = op === "copy" ? "Copied" : "Moved";
      const total = job.items_total || 0;
      if (job.state === "done" && errors.length === 0) {
        task.finish("success", past + " " + OF.plural(total, "item"));
      } else if (job.state === "done") {
        task.finish("warning", past + " " + (total - errors.length) + " of " + total + "; " + errors.length + " failed");
      } else {
        task.finish("danger", job.message || (op === "copy" ? "Copy failed" : "Move failed"));
      }
      listing.reload();
      return;
    }
  }

  // ---- delete ----

  const deleteModalEl = document.getElementById("files-delete-modal");
  const MAX_LISTED = 100;

  async function confirmDelete(entries) {
    await OF.whenHidden(deleteModalEl); // the previous confirmation's listener is gone only then
    const list = deleteModalEl.querySelector(".files-delete-list");
    const items = entries.slice(0, MAX_LISTED).map((entry) =>
      el(
        "li",
        { class: "list-group-item d-flex align-items-center gap-2 text-break" },
        icon(listing.isDirectory(entry) ? "folder-fill" : "file-earmark", "files-icon files-icon-" + (listing.isDirectory(entry) ? "directory" : "file")),
        el("span", { text: entry.name })
      )
    );
    if (entries.length > MAX_LISTED) {
      items.push(el("li", { class: "list-group-item text-body-secondary", text: "…and " + (entries.length - MAX_LISTED) + " more" }));
    }
    list.replaceChildren(...items);
    deleteModalEl.querySelector(".files-delete-summary").textContent =
      "Delete " + itemsLabel(entries) + " permanently? Folders are deleted with everything in them. This cannot be undone.";
    const button = deleteModalEl.querySelector("[data-files-confirm]");
    button.querySelector(".files-button-label").textContent = "Delete " + OF.plural(entries.length, "item");
    showModalError(deleteModalEl, "");

    const onConfirm = async () => {
      OF.setBusy(button, true);
      try {
        const reply = await request(urls.api("delete"), { method: "POST", json: { paths: entries.map((e) => e.path) } });
        OF.hideModal(deleteModalEl);
        listing.clearSelection();
        reportBulk(reply, entries, "Deleted " + itemsLabel(entries) + ".", "Some items could not be deleted");
        listing.reload();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showModalError(deleteModalEl, error.message);
      } finally {
        OF.setBusy(button, false);
      }
    };
    button.addEventListener("click", onConfirm);
    deleteModalEl.addEventListener("hidden.bs.modal", () => button.removeEventListener("click", onConfirm), { once: true });
    bootstrap.Modal.getOrCreateInstance(deleteModalEl).show();
  }

  // ---- permissions ----

  const chmodModalEl = document.getElementById("files-chmod-modal");
  const chmodForm = chmodModalEl.querySelector("form");
  const octalInput = chmodForm.elements.mode;
  const bitBoxes = Array.from(chmodForm.querySelectorAll("[data-bit]"));
  const symbolicEl = chmodModalEl.querySelector(".files-chmod-symbolic");
  const octalFeedback = document.getElementById("files-chmod-feedback");
  let chmodEntries = [];

  function setOctalInvalid(invalid) {
    octalInput.classList.toggle("is-invalid", invalid);
    octalFeedback.hidden = !invalid;
  }

  function symbolic(bits) {
    return "rwxrwxrwx".replace(/./g, (letter, i) => (bits & (256 >> i) ? letter : "-"));
  }

  function bitsToOctal() {
    const bits = bitBoxes.reduce((sum, box) => sum + (box.checked ? Number(box.dataset.bit) : 0), 0);
    const special = octalInput.value.length === 4 ? octalInput.value[0] : "0";
    octalInput.value = special + bits.toString(8).padStart(3, "0");
    setOctalInvalid(false);
    symbolicEl.textContent = symbolic(bits);
  }

  function octalToBits() {
    const value = octalInput.value.trim();
    const valid = /^[0-7]{3,4}$/.test(value);
    setOctalInvalid(!valid && value !== "");
    if (!valid) return;
    const bits = parseInt(value.slice(-3), 8);
    bitBoxes.forEach((box) => (box.checked = Boolean(bits & Number(box.dataset.bit))));
    symbolicEl.textContent = symbolic(bits);
  }

  bitBoxes.forEach((box) => box.addEventListener("change", bitsToOctal));
  octalInput.addEventListener("input", octalToBits);

  function changePermissions(entries) {
    chmodEntries = entries;
    octalInput.value = OF.modeToOctal(entries[0].mode) || "0644";
    octalToBits();
    chmodModalEl.querySelector(".files-chmod-target").textContent =
      entries.length === 1
        ? "Permissions of “" + entries[0].name + "” (currently " + (entries[0].mode || "unknown") + ")."
        : "The same permissions for " + OF.plural(entries.length, "item") + " (not recursive).";
    showModalError(chmodModalEl, "");
    OF.showModal(chmodModalEl);
  }

  chmodModalEl.addEventListener("shown.bs.modal", () => octalInput.focus());

  chmodForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = octalInput.value.trim();
    if (!/^[0-7]{3,4}$/.test(value)) {
      setOctalInvalid(true);
      octalInput.focus();
      return;
    }
    const button = chmodForm.querySelector("[type=submit]");
    const entries = chmodEntries;
    OF.setBusy(button, true);
    try {
      const mode = value.padStart(4, "0");
      const reply = await request(urls.api("chmod"), { method: "POST", json: { paths: entries.map((e) => e.path), mode } });
      OF.hideModal(chmodModalEl);
      listing.clearSelection();
      reportBulk(reply, entries, "Permissions of " + itemsLabel(entries) + " set to " + mode + ".", "Some permissions could not be changed");
      listing.reload();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showModalError(chmodModalEl, error.message);
    } finally {
      OF.setBusy(button, false);
    }
  });

  // ---- dispatch: toolbar buttons and row menus ----

  const ACTIONS = {
    download: (entries) => downloadEntry(entries[0]),
    rename,
    copy: (entries) => transfer("copy", entries),
    move: (entries) => transfer("move", entries),
    chmod: changePermissions,
    delete: confirmDelete,
  };

  function menuLink(label, iconName, href, extra) {
    return el("li", {}, el("a", { class: "dropdown-item", href, ...extra }, icon(iconName, "me-2"), label));
  }

  function menuButton(label, iconName, action, entry, danger) {
    const button = el("button", { type: "button", class: "dropdown-item" + (danger ? " text-danger" : "") }, icon(iconName, "me-2"), label);
    button.addEventListener("click", () => ACTIONS[action]([entry]));
    return el("li", {}, button);
  }

  // The items of a row's "⋮" menu (listing.js builds the menu when it opens).
  OF.rowMenuItems = function (entry) {
    const items = [];
    if (listing.isDirectory(entry)) {
      items.push(menuLink("Open", "folder2-open", urls.fs(entry.path)));
      items.push(menuLink("Download as zip", "file-earmark-zip", urls.zip(entry.path), { download: "" }));
    } else if (listing.isOpenable(entry)) {
      items.push(menuLink("View", "eye", urls.view(entry.path), { target: "_blank", rel: "noopener" }));
      items.push(menuLink("Edit", "pencil-square", urls.edit(entry.path)));
      items.push(menuLink("Download", "download", urls.fs(entry.path), { download: "" }));
    }
    if (items.length) items.push(el("li", {}, el("hr", { class: "dropdown-divider" })));
    items.push(menuButton("Rename…", "input-cursor-text", "rename", entry));
    items.push(menuButton("Copy to…", "copy", "copy", entry));
    items.push(menuButton("Move to…", "arrows-move", "move", entry));
    items.push(menuButton("Permissions…", "shield-lock", "chmod", entry));
    items.push(el("li", {}, el("hr", { class: "dropdown-divider" })));
    items.push(menuButton("Delete…", "trash3", "delete", entry, true));
    return items;
  };

  const toolbar = document.getElementById("files-toolbar");
  const selectionCount = document.getElementById("files-selection-count");

  function updateToolbar() {
    const entries = listing.selectedEntries();
    toolbar.querySelectorAll("[data-files-needs]").forEach((button) => {
      const needs = button.dataset.filesNeeds;
      button.disabled = needs === "one" ? entries.length !== 1 : entries.length === 0;
    });
    if (entries.length === 1 && !listing.isOpenable(entries[0])) {
      toolbar.querySelector("[data-files-action=download]").disabled = true;
    }
    const download = toolbar.querySelector("[data-files-action=download] .files-button-label");
    download.textContent = entries.length === 1 && listing.isDirectory(entries[0]) ? "Download zip" : "Download";
    selectionCount.hidden = entries.length === 0;
    selectionCount.querySelector(".files-selection-text").textContent = OF.numberFormat.format(entries.length) + " selected";
  }

  toolbar.addEventListener("click", (event) => {
    const button = event.target.closest("[data-files-action]");
    if (!button || button.disabled) return;
    const action = button.dataset.filesAction;
    if (action === "new-file") return createIn("file");
    if (action === "new-folder") return createIn("folder");
    if (action === "clear-selection") return listing.clearSelection();
    const entries = listing.selectedEntries();
    if (entries.length) ACTIONS[action](entries);
  });

  root.addEventListener("files:selection", updateToolbar);
  updateToolbar();

  // ---- the path bar: Enter goes to the directory typed ----

  const pathForm = document.getElementById("files-pathbar");
  const pathInput = pathForm.elements.path;
  const pathFeedback = pathForm.querySelector(".invalid-feedback");

  function pathError(message) {
    pathFeedback.textContent = message;
    pathInput.classList.add("is-invalid");
  }

  pathInput.addEventListener("input", () => pathInput.classList.remove("is-invalid"));
  pathInput.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      pathInput.value = listing.dir;
      pathInput.classList.remove("is-invalid");
    }
  });

  pathForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    let path = pathInput.value.trim();
    if (!path.startsWith("/")) return pathError("Enter an absolute path, starting with “/”.");
    path = path.replace(/\/{2,}/g, "/").replace(/(.)\/$/, "$1");
    try {
      const info = await request(urls.fs(path, { limit: 1 }));
      if (info && Array.isArray(info.entries)) {
        window.location.assign(urls.fs(info.path || path));
      } else {
        pathError("“" + path + "” is a file, not a folder.");
      }
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      pathError(error.message);
    }
  });
})();
