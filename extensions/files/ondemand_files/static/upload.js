// Uploads on the directory page: the Upload buttons (files, a folder) and drag and drop of files
// and folders. Each file goes up in resumable chunks (POST api/uploads, then PUT chunks with
// Content-Range through XMLHttpRequest for progress events); a dropped connection resumes from
// the offset the server reports.
(function () {
  "use strict";

  const OF = window.OndemandFiles;
  const { request, ApiError } = OF;
  const listing = OF.listing;
  const urls = listing.urls;
  const root = listing.root;

  const CHUNK = Number(root.dataset.maxUploadChunk) || 64 * 1024 * 1024;
  const PARALLEL = 3; // files at a time
  const MAX_ATTEMPTS = 5; // per chunk, after a network error or a 5xx
  const RETRYABLE = new Set([0, 408, 429, 500, 502, 503, 504]);

  const summary = document.getElementById("files-upload-summary");
  const summaryBar = summary.querySelector(".progress-bar");
  const summaryProgress = summary.querySelector(".progress");
  const summaryText = summary.querySelector(".files-upload-summary-text");

  class Cancelled extends Error {}

  // ---- the batch: everything queued since the queue was last empty ----

  const queue = [];
  let running = 0;
  let batch = null;
  let reloadTimer = null;

  function newBatch() {
    return { items: [], done: 0, failed: 0, skipped: 0, conflictPolicy: null, paths: [] };
  }

  function renderSummary() {
    if (!batch) return;
    const total = batch.items.reduce((sum, item) => sum + item.size, 0);
    const sent = batch.items.reduce((sum, item) => sum + item.sent, 0);
    const finished = batch.done + batch.failed + batch.skipped;
    const count = batch.items.length;
    const percent = total > 0 ? (sent / total) * 100 : finished === count ? 100 : 0;
    summary.hidden = false;
    summaryBar.style.width = percent.toFixed(1) + "%";
    summaryProgress.setAttribute("aria-valuenow", String(Math.round(percent)));
    let text;
    if (finished < count) {
      text = "Uploading " + OF.numberFormat.format(finished + 1) + " of " + OF.plural(count, "file") + " · " +
        OF.humanSize(sent) + " of " + OF.humanSize(total);
    } else {
      text = "Uploaded " + OF.plural(batch.done, "file");
      if (batch.skipped) text += ", skipped " + batch.skipped;
      if (batch.failed) text += ", " + batch.failed + " failed";
    }
    summaryText.textContent = text;
    summaryBar.classList.toggle("bg-success", finished === count && batch.failed === 0);
    summaryBar.classList.toggle("bg-warning", finished === count && batch.failed > 0);
  }

  // Refresh the listing now and then while files arrive, and once at the end.
  function scheduleReload(final) {
    clearTimeout(reloadTimer);
    const highlight = final && batch ? batch.paths.filter((p) => OF.dirname(p) === listing.dir) : [];
    reloadTimer = setTimeout(() => listing.reload({ highlight }), final ? 0 : 1500);
  }

  // ---- one file ----

  class UploadItem {
    constructor(file, path, relativePath) {
      this.file = file;
      this.path = path;
      this.size = file.size;
      this.sent = 0;
      this.sessionId = null;
      this.xhr = null;
      this.cancelled = false;
      this.task = OF.activity.add({
        title: relativePath,
        tooltip: path,
        iconName: "file-earmark-arrow-up",
        onCancel: () => this.cancel(),
      });
      this.task.setProgress(0, "Waiting…");
    }

    progress(sent) {
      this.sent = sent;
      const fraction = this.size > 0 ? sent / this.size : 0;
      this.task.setProgress(fraction, OF.humanSize(sent) + " of " + OF.humanSize(this.size));
      renderSummary();
    }

    cancel() {
      this.cancelled = true;
      if (this.xhr) this.xhr.abort();
    }
  }

  // POST api/uploads; a 409 asks whether to overwrite (once per batch when asked to).
  async function openSession(item) {
    const create = (overwrite) =>
      request(urls.api("uploads"), { method: "POST", json: { path: item.path, size: item.size, overwrite } });
    try {
      return await create(false);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 409) throw error;
    }
    if ((await resolveConflict(item)) === "skip") return null;
    return create(true);
  }

  // Empty files have no bytes to send in chunks: one PUT of an empty body creates them.
  async function putEmpty(item) {
    const put = (overwrite) =>
      request(urls.fs(item.path, { overwrite: overwrite ? "1" : "" }), { method: "PUT" });
    try {
      await put(false);
      return true;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 409) throw error;
    }
    if ((await resolveConflict(item)) === "skip") return false;
    await put(true);
    return true;
  }

  function putChunk(item, first, end) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      item.xhr = xhr;
      xhr.open("PUT", urls.api("uploads/" + OF.encodeSegment(String(item.sessionId))));
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("Content-Range", "bytes " + first + "-" + (end - 1) + "/" + item.size);
      xhr.setRequestHeader("X-XSRFToken", OF.xsrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", (event) => item.progress(first + event.loaded));
      xhr.addEventListener("load", () => {
        item.xhr = null;
        if (xhr.status >= 200 && xhr.status < 300) {
          try {
            resolve(JSON.parse(xhr.responseText));
          } catch (err) {
            reject(new ApiError(xhr.status, "The server sent an unexpected reply."));
          }
        } else {
          reject(OF.errorFromReply(xhr.status, xhr.statusText, xhr.responseText));
        }
      });
      xhr.addEventListener("error", () => {
        item.xhr = null;
        reject(new ApiError(0, "The connection was interrupted."));
      });
      xhr.addEventListener("abort", () => {
        item.xhr = null;
        reject(new Cancelled());
      });
      xhr.send(item.file.slice(first, end));
    });
  }

  // Send the chunks from `offset`; after a network error wait (1, 2, 4, 8 s) and resume from
  // the offset the server has.
  async function sendChunks(item, offset) {
    let attempts = 0;
    for (;;) {
      if (item.cancelled) throw new Cancelled();
      const end = Math.min(offset + CHUNK, item.size);
      try {
        const reply = await putChunk(item, offset, end);
        attempts = 0;
        if (!(reply.offset > offset)) throw new ApiError(500, "The server did not accept the data.");
        offset = reply.offset;
        item.progress(offset);
        if (reply.done || offset >= item.size) return reply;
        continue;
      } catch (error) {
        if (error instanceof Cancelled || item.cancelled) throw new Cancelled();
        if (!(error instanceof ApiError)) throw error;
        attempts++;
        if (error.status === 409 && typeof error.data.offset === "number" && attempts < MAX_ATTEMPTS) {
          offset = error.data.offset; // out of step with the server: continue from its offset
          continue;
        }
        if (!RETRYABLE.has(error.status) || attempts >= MAX_ATTEMPTS) throw error;
        item.task.setStatus(error.message + " Retrying…");
        await OF.sleep(1000 * 2 ** (attempts - 1));
        if (item.cancelled) throw new Cancelled();
        try {
          const session = await request(urls.api("uploads/" + OF.encodeSegment(String(item.sessionId))));
          offset = session.offset;
        } catch (statusError) {
          if (!(statusError instanceof ApiError)) throw statusError;
          if (statusError.status === 404 || statusError.status === 410) throw statusError;
          // still offline: try the chunk again from where we were
        }
      }
    }
  }

  function discardSession(item) {
    if (!item.sessionId) return;
    request(urls.api("uploads/" + OF.encodeSegment(String(item.sessionId))), { method: "DELETE" }).catch(() => {
      // the server drops abandoned sessions itself
    });
  }

  async function runItem(item) {
    if (item.cancelled) return finishItem(item, "cancelled");
    item.task.setProgress(0, "Starting…");
    try {
      if (item.size === 0) {
        if (!(await putEmpty(item))) return finishItem(item, "skipped");
      } else {
        const session = await openSession(item);
        if (!session) return finishItem(item, "skipped");
        if (item.cancelled) {
          item.sessionId = session.id;
          throw new Cancelled();
        }
        item.sessionId = session.id;
        await sendChunks(item, session.offset || 0);
      }
      finishItem(item, "done");
    } catch (error) {
      if (error instanceof Cancelled) {
        discardSession(item);
        return finishItem(item, "cancelled");
      }
      if (!(error instanceof ApiError)) throw error;
      if (error.status !== 410) discardSession(item);
      finishItem(item, "failed", error.status === 410 ? "The upload expired on the server; upload the file again." : error.message);
    }
  }

  function finishItem(item, outcome, message) {
    if (outcome === "done") {
      batch.done++;
      item.sent = item.size;
      batch.paths.push(item.path);
      item.task.finish("success", OF.humanSize(item.size) + " uploaded");
      scheduleReload(false);
    } else if (outcome === "skipped") {
      batch.skipped++;
      item.sent = item.size;
      item.task.finish("secondary", "Skipped: already exists");
    } else if (outcome === "cancelled") {
      batch.skipped++;
      item.sent = item.size;
      item.task.finish("secondary", "Cancelled");
    } else {
      batch.failed++;
      item.sent = item.size;
      item.task.finish("danger", "Failed");
      item.task.addErrors([{ message }]);
    }
    renderSummary();
  }

  function pump() {
    while (running < PARALLEL && queue.length) {
      const item = queue.shift();
      running++;
      runItem(item).finally(() => {
        running--;
        pump();
      });
    }
    if (running === 0 && queue.length === 0 && batch) {
      scheduleReload(true);
      renderSummary();
      batch = null;
    }
  }

  document.querySelector("[data-files-clear-activity]").addEventListener("click", () => {
    if (!batch) summary.hidden = true;
  });

  // ---- overwrite or skip: one question at a time, even with uploads in parallel ----

  const conflictModalEl = document.getElementById("files-conflict-modal");
  let conflictChain = Promise.resolve();

  function resolveConflict(item) {
    const ask = async () => {
      if (batch.conflictPolicy) return batch.conflictPolicy;
      await OF.whenHidden(conflictModalEl); // the previous answer's listeners are gone only then
      return new Promise((resolve) => {
        conflictModalEl.querySelector(".files-conflict-name").textContent = item.path;
        const applyAll = conflictModalEl.querySelector("#files-conflict-all");
        applyAll.checked = false;
        let answer = "skip";
        const onClick = (event) => {
          const button = event.target.closest("[data-files-answer]");
          if (!button) return;
          answer = button.dataset.filesAnswer;
          OF.hideModal(conflictModalEl);
        };
        conflictModalEl.addEventListener("click", onClick);
        conflictModalEl.addEventListener(
          "hidden.bs.modal",
          () => {
            conflictModalEl.removeEventListener("click", onClick);
            if (applyAll.checked) batch.conflictPolicy = answer;
            resolve(answer);
          },
          { once: true }
        );
        bootstrap.Modal.getOrCreateInstance(conflictModalEl).show();
      });
    };
    const answer = conflictChain.then(ask);
    conflictChain = answer.catch(() => "skip");
    return answer;
  }

  // ---- queueing: directories first (POST api/mkdir), then the files ----

  // `files`: [{file, relativePath}] with paths relative to the current directory; `dirs`:
  // relative directories to create (parents before children), including empty ones.
  async function enqueue(files, dirs) {
    if (files.length === 0 && dirs.length === 0) return;
    const base = listing.dir;
    const failedDirs = new Map();
    const ordered = Array.from(new Set(dirs)).sort((a, b) => a.split("/").length - b.split("/").length);
    for (const dir of ordered) {
      const parent = OF.dirname("/" + dir).slice(1);
      if (parent && failedDirs.has(parent)) {
        failedDirs.set(dir, failedDirs.get(parent));
        continue;
      }
      try {
        await request(urls.api("mkdir"), { method: "POST", json: { path: OF.joinPath(base, dir) } });
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.status !== 409) failedDirs.set(dir, error.message); // 409: it is there already
      }
    }
    batch = batch || newBatch();
    for (const { file, relativePath } of files) {
      const item = new UploadItem(file, OF.joinPath(base, relativePath), relativePath);
      batch.items.push(item);
      const dirProblem = failedDirs.get(OF.dirname("/" + relativePath).slice(1));
      if (dirProblem) {
        finishItem(item, "failed", "Could not create its folder: " + dirProblem);
      } else {
        queue.push(item);
      }
    }
    if (ordered.length) listing.reload();
    renderSummary();
    pump();
  }

  function parentDirs(relativePath) {
    const parts = relativePath.split("/").slice(0, -1);
    return parts.map((_, i) => parts.slice(0, i + 1).join("/"));
  }

  // ---- the Upload buttons ----

  const fileInput = document.getElementById("files-upload-input");
  const folderInput = document.getElementById("files-upload-folder-input");

  document.querySelectorAll("[data-files-upload]").forEach((button) => {
    button.addEventListener("click", () => (button.dataset.filesUpload === "folder" ? folderInput : fileInput).click());
  });

  fileInput.addEventListener("change", () => {
    enqueue(Array.from(fileInput.files, (file) => ({ file, relativePath: file.name })), []);
    fileInput.value = "";
  });

  folderInput.addEventListener("change", () => {
    const files = Array.from(folderInput.files, (file) => ({ file, relativePath: file.webkitRelativePath || file.name }));
    enqueue(files, files.flatMap((f) => parentDirs(f.relativePath)));
    folderInput.value = "";
  });

  // ---- drag and drop ----

  const overlay = document.getElementById("files-drop-overlay");
  let dragDepth = 0;

  function carriesFiles(event) {
    return event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");
  }

  function readEntries(reader) {
    return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
  }

  function entryFile(entry) {
    return new Promise((resolve, reject) => entry.file(resolve, reject));
  }

  // Walk dropped FileSystemEntry trees into files and directories (relative paths).
  async function walk(entries) {
    const files = [];
    const dirs = [];
    const problems = [];
    const pending = entries.slice();
    while (pending.length) {
      const entry = pending.shift();
      const relativePath = entry.fullPath.replace(/^\/+/, "");
      try {
        if (entry.isFile) {
          files.push({ file: await entryFile(entry), relativePath });
        } else if (entry.isDirectory) {
          dirs.push(relativePath);
          const reader = entry.createReader();
          // readEntries returns at most ~100 entries per call: call until it returns none
          for (let batchEntries = await readEntries(reader); batchEntries.length; batchEntries = await readEntries(reader)) {
            pending.push(...batchEntries);
          }
        }
      } catch (error) {
        problems.push(relativePath + ": " + (error.message || "could not be read"));
      }
    }
    return { files, dirs, problems };
  }

  document.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth++;
    overlay.hidden = false;
  });

  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });

  document.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) overlay.hidden = true;
  });

  document.addEventListener("drop", async (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    overlay.hidden = true;
    const items = Array.from(event.dataTransfer.items || []).filter((item) => item.kind === "file");
    // the entries must be taken while the event is dispatched: the list is emptied after it
    const entries = items.map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
    if (entries.length && entries.every(Boolean)) {
      const { files, dirs, problems } = await walk(entries);
      if (problems.length) OF.toast("Some dropped items could not be read", "warning", problems.slice(0, 10));
      enqueue(files, dirs);
    } else {
      enqueue(Array.from(event.dataTransfer.files, (file) => ({ file, relativePath: file.name })), []);
    }
  });

  // ---- leaving the page would abort the uploads ----

  window.addEventListener("beforeunload", (event) => {
    if (running > 0 || queue.length > 0) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
