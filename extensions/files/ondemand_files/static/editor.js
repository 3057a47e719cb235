// The editor page: Ace with the file's mode, loaded from GET api/content and saved with
// PUT api/content and the etag it was read with. A file that changed on disk since is never
// overwritten silently: the 412 reply opens a dialog (overwrite, reload from disk, cancel).
(function () {
  "use strict";

  const OF = window.OndemandFiles;
  const { request, ApiError } = OF;

  const root = document.getElementById("editor-app");
  const config = OF.readConfig(root);
  const urls = OF.makeUrls(config);
  const path = config.path;

  const editorEl = document.getElementById("editor");
  const loadingEl = document.getElementById("editor-loading");
  const refusalEl = document.getElementById("editor-refusal");
  const saveButton = document.getElementById("editor-save");
  const dirtyBadge = document.getElementById("editor-dirty");
  const statusEl = document.getElementById("editor-status");
  const cursorEl = document.getElementById("editor-cursor");
  const wrapToggle = document.getElementById("editor-wrap");
  const conflictModalEl = document.getElementById("editor-conflict-modal");
  const baseTitle = document.title;

  let editor = null;
  let etag = null;
  let saving = false;
  let savedRevision = null; // the undo manager's revision matching the file on disk

  // ---- Ace ----

  // Modes and themes load on demand from the directory ace.js came from.
  function aceBasePath() {
    const url = new URL(root.dataset.aceUrl, window.location.href);
    return url.origin + url.pathname.replace(/[^/]*$/, "");
  }

  function createEditor(content) {
    ace.config.set("basePath", aceBasePath());
    editor = ace.edit(editorEl, {
      mode: "ace/mode/" + (root.dataset.aceMode || "text"),
      value: content,
      fontSize: "14px",
      fontFamily: getComputedStyle(document.body).getPropertyValue("--bs-font-monospace") || "monospace",
      showPrintMargin: false,
      useSoftTabs: true,
      tabSize: 4,
      wrap: wrapToggle.checked,
      // Ace rewrites the input's aria-label as the cursor moves; this keeps the file's name in it
      textInputAriaLabel: "Contents of " + OF.basename(path),
    });
    editor.textInput.setAriaLabel(); // apply textInputAriaLabel now, not at the first keystroke
    editor.renderer.setScrollMargin(8, 8);
    editor.session.setUndoManager(new ace.UndoManager());
    editor.commands.addCommand({
      name: "save",
      bindKey: { win: "Ctrl-S", mac: "Command-S" },
      exec: () => save(),
    });
    editor.session.on("change", renderDirty);
    editor.selection.on("changeCursor", renderCursor);
    markClean();
    renderCursor();
    editor.focus();
  }

  function setContent(content) {
    editor.session.setValue(content); // also resets the undo history
    markClean();
  }

  // ---- dirty state ----

  function markClean() {
    savedRevision = editor.session.getUndoManager().getRevision();
    renderDirty();
  }

  function isDirty() {
    return editor !== null && editor.session.getUndoManager().getRevision() !== savedRevision;
  }

  function renderDirty() {
    const dirty = isDirty();
    dirtyBadge.hidden = !dirty;
    document.title = (dirty ? "● " : "") + baseTitle;
    saveButton.classList.toggle("btn-primary", dirty);
    saveButton.classList.toggle("btn-outline-primary", !dirty);
  }

  function renderCursor() {
    const { row, column } = editor.getCursorPosition();
    cursorEl.textContent = "Line " + (row + 1) + ", column " + (column + 1);
  }

  function setStatus(text, variant) {
    statusEl.textContent = text;
    statusEl.className = "small " + (variant ? "text-" + variant + "-emphasis fw-semibold" : "text-body-secondary");
  }

  window.addEventListener("beforeunload", (event) => {
    if (isDirty()) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // ---- load ----

  function refuse(title, message, hint) {
    loadingEl.hidden = true;
    editorEl.hidden = true;
    refusalEl.querySelector(".editor-refusal-title").textContent = title;
    refusalEl.querySelector(".editor-refusal-message").textContent = message;
    const hintEl = refusalEl.querySelector(".editor-refusal-hint");
    hintEl.textContent = hint || "";
    hintEl.hidden = !hint;
    refusalEl.hidden = false;
    // nothing to save or wrap: only the download and the way back remain
    saveButton.hidden = true;
    wrapToggle.closest(".form-switch").hidden = true;
  }

  async function fetchContent() {
    return request(urls.api("content", { path }));
  }

  async function load() {
    let data;
    try {
      data = await fetchContent();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 413) {
        refuse("This file is too large to edit here", error.message, "Download it to work on it on your computer.");
      } else if (error.status === 415) {
        refuse("This file cannot be edited as text", error.message, "Download it to open it with a program that understands it.");
      } else {
        refuse("Could not open this file", error.message);
      }
      return;
    }
    etag = data.etag;
    loadingEl.hidden = true;
    editorEl.hidden = false;
    createEditor(data.content);
    saveButton.disabled = false;
    setStatus("Opened " + OF.humanSize(data.size));
  }

  // ---- save ----

  async function put(withEtag) {
    return request(urls.api("content"), {
      method: "PUT",
      json: { path, content: editor.getValue(), etag: withEtag },
    });
  }

  async function save(overrideEtag) {
    if (!editor || saving) return;
    saving = true;
    OF.setBusy(saveButton, true);
    setStatus("Saving…");
    const revision = editor.session.getUndoManager().getRevision();
    try {
      const reply = await put(overrideEtag === undefined ? etag : overrideEtag);
      etag = reply.etag;
      // edits typed while the request was out are still unsaved
      savedRevision = revision;
      renderDirty();
      setStatus("Saved at " + OF.clockFormat.format(new Date()), "success");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 412) {
        setStatus("Not saved: the file changed on disk", "danger");
        askConflict(error.data.etag);
      } else {
        setStatus("Not saved", "danger");
        OF.toast("Could not save: " + error.message, "danger");
      }
    } finally {
      saving = false;
      OF.setBusy(saveButton, false);
    }
  }

  // ---- the file changed on disk: ask ----

  let conflictEtag = null;

  function askConflict(diskEtag) {
    conflictEtag = diskEtag;
    OF.showModal(conflictModalEl);
  }

  conflictModalEl.querySelector("[data-editor-answer=overwrite]").addEventListener("click", () => {
    OF.hideModal(conflictModalEl);
    save(conflictEtag);
  });

  conflictModalEl.querySelector("[data-editor-answer=reload]").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    OF.setBusy(button, true);
    try {
      const data = await fetchContent();
      etag = data.etag;
      setContent(data.content);
      OF.hideModal(conflictModalEl);
      setStatus("Reloaded from disk", "success");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      OF.hideModal(conflictModalEl);
      OF.toast("Could not reload the file: " + error.message, "danger");
    } finally {
      OF.setBusy(button, false);
    }
  });

  conflictModalEl.addEventListener("hidden.bs.modal", () => {
    if (editor) editor.focus();
  });

  // ---- controls ----

  saveButton.addEventListener("click", () => save());

  // Ctrl/Cmd-S also when the focus is outside the editor (on a button, the page)
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "s") {
      event.preventDefault();
      save();
    }
  });

  wrapToggle.addEventListener("change", () => {
    if (editor) editor.session.setUseWrapMode(wrapToggle.checked);
    try {
      localStorage.setItem("ondemand-files.wrap", wrapToggle.checked ? "1" : "0");
    } catch (err) {
      // storage disabled: the choice lasts for this page only
    }
  });

  try {
    wrapToggle.checked = localStorage.getItem("ondemand-files.wrap") === "1";
  } catch (err) {
    // storage disabled: no wrapping
  }

  load();
})();
