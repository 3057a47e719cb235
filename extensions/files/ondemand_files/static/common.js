// Shared helpers of the Files pages: URLs, the JSON API, formatting, toasts and modals.
//
// Loaded before the page scripts (files page: listing.js, actions.js, upload.js; editor.js);
// everything lives on window.OndemandFiles. Names and paths from the server are only ever put
// into the page with textContent or attributes, never as HTML.
(function () {
  "use strict";

  const OF = (window.OndemandFiles = window.OndemandFiles || {});

  // ---- configuration: data attributes of the page's root element ----

  // data-path is for display (undecodable bytes shown as U+FFFD); data-path-json holds the
  // exact path, which URLs and API calls need.
  function readConfig(root) {
    const d = root.dataset;
    let path = d.path;
    try {
      path = JSON.parse(d.pathJson);
    } catch (err) {
      // no exact path rendered: the display path is the same for UTF-8 names
    }
    return {
      path,
      fs: d.apiFs,
      api: d.apiApi,
      zip: d.apiZip,
      edit: d.apiEdit,
    };
  }

  // ---- paths and URLs ----

  // Percent-encode one path segment. Names that are not valid UTF-8 reach JavaScript as lone
  // surrogates U+DC80..U+DCFF (Python's surrogateescape); they are sent back as the raw byte.
  function encodeSegment(segment) {
    try {
      return encodeURIComponent(segment);
    } catch (error) {
      if (!(error instanceof URIError)) throw error;
    }
    let out = "";
    for (let i = 0; i < segment.length; i++) {
      const code = segment.charCodeAt(i);
      const next = segment.charCodeAt(i + 1);
      if (code >= 0xd800 && code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        out += encodeURIComponent(segment.slice(i, i + 2));
        i++;
      } else if (code >= 0xdc80 && code <= 0xdcff) {
        out += "%" + (code - 0xdc00).toString(16).toUpperCase();
      } else if (code >= 0xd800 && code <= 0xdfff) {
        out += "%EF%BF%BD"; // a lone surrogate no file name can contain
      } else {
        out += encodeURIComponent(segment[i]);
      }
    }
    return out;
  }

  function encodePath(path) {
    return path.split("/").map(encodeSegment).join("/");
  }

  function joinPath(dir, name) {
    return dir.endsWith("/") ? dir + name : dir + "/" + name;
  }

  function dirname(path) {
    const cut = path.lastIndexOf("/");
    return cut <= 0 ? "/" : path.slice(0, cut);
  }

  function basename(path) {
    return path.slice(path.lastIndexOf("/") + 1);
  }

  function query(params) {
    const parts = [];
    for (const [key, value] of Object.entries(params)) {
      if (value === undefined || value === null || value === "") continue;
      parts.push(encodeSegment(key) + "=" + encodeSegment(String(value)));
    }
    return parts.length ? "?" + parts.join("&") : "";
  }

  function makeUrls(config) {
    return {
      fs: (path, params) => config.fs + encodePath(path) + query(params || {}),
      view: (path) => config.fs + encodePath(path) + "?view=1",
      zip: (path) => config.zip + encodePath(path),
      edit: (path) => config.edit + encodePath(path),
      api: (endpoint, params) => config.api + "/" + endpoint + query(params || {}),
    };
  }

  // ---- names: the API's rules, checked before asking the server ----

  function validateName(name) {
    if (name === "") return "Enter a name.";
    if (name === "." || name === "..") return "“.” and “..” are not allowed as names.";
    if (name.includes("/")) return "A name cannot contain “/”.";
    if (name.includes("\0")) return "A name cannot contain a NUL character.";
    if (new TextEncoder().encode(name).length > 255) return "A name can be at most 255 bytes long.";
    return "";
  }

  // A name for one line of a table: a newline or carriage return as "↵", a tab as "→", other
  // control characters as "�" (the title attribute keeps the real name).
  const CONTROL_SYMBOLS = { "\n": "↵", "\r": "↵", "\t": "→" };

  // Bytes that are not UTF-8 arrive as lone surrogates (see encodeSegment): shown as "�".
  const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

  function displayName(name) {
    return name
      .replace(/[\x00-\x1f\x7f]/g, (c) => CONTROL_SYMBOLS[c] || "\ufffd")
      .replace(LONE_SURROGATE, "\ufffd");
  }

  // ---- the JSON API ----

  // the dashboard's portal.js (loaded by base.html before this file)
  const xsrfToken = window.Ondemand.xsrfToken;

  class ApiError extends Error {
    constructor(status, message, data) {
      super(message);
      this.name = "ApiError";
      this.status = status; // 0: the request never got an HTTP reply
      this.data = data || {};
    }
  }

  // An HTTP error reply as an ApiError: the API's {"message"} when it sent JSON, else the
  // status line (a proxy's error page, a login redirect...).
  function errorFromReply(status, statusText, text) {
    let data = {};
    try {
      data = JSON.parse(text);
    } catch (err) {
      // not JSON: keep the status line
    }
    const message = (data && data.message) || (status + " " + (statusText || "error")).trim();
    return new ApiError(status, message, data);
  }

  // fetch() a JSON endpoint. Resolves to the parsed reply (null for an empty body), rejects
  // with an ApiError; an AbortError passes through untouched.
  async function request(url, options = {}) {
    const method = options.method || "GET";
    // Every method: JupyterHub refuses cookie auth for a fetch() without the token, GETs too
    // (jupyterhub/_xsrf_utils.py), as JupyterLab does.
    const headers = { Accept: "application/json", "X-XSRFToken": xsrfToken() };
    let body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body,
        credentials: "same-origin",
        signal: options.signal,
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError(0, "Could not reach the server. Check your connection and try again.");
    }
    const text = await response.text();
    if (!response.ok) throw errorFromReply(response.status, response.statusText, text);
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch (err) {
      // e.g. a login page served with 200 after the session expired
      throw new ApiError(response.status, "The server sent an unexpected reply. Reload the page and try again.");
    }
  }

  // ---- formatting ----

  const SIZE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

  function humanSize(bytes) {
    if (typeof bytes !== "number" || !isFinite(bytes)) return "";
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < SIZE_UNITS.length - 1) {
      value /= 1024;
      unit++;
    }
    const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
    return parseFloat(value.toFixed(digits)) + " " + SIZE_UNITS[unit]; // "1 MiB", not "1.00 MiB"
  }

  const numberFormat = new Intl.NumberFormat();
  const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const clockFormat = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

  function plural(count, one, many) {
    return numberFormat.format(count) + " " + (count === 1 ? one : many || one + "s");
  }

  // "-rwsr-x--T" → "4750"
  function modeToOctal(mode) {
    if (typeof mode !== "string" || mode.length < 10) return "";
    let special = 0;
    let digits = "";
    for (let who = 0; who < 3; who++) {
      const [r, w, x] = mode.slice(1 + who * 3, 4 + who * 3);
      let value = (r === "r" ? 4 : 0) + (w === "w" ? 2 : 0);
      if (x === "x" || x === "s" || x === "t") value += 1;
      if (x === "s" || x === "S" || x === "t" || x === "T") special += 4 >> who;
      digits += value;
    }
    return special + digits;
  }

  // ---- elements ----

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function icon(name, extraClass) {
    return el("i", { class: "bi bi-" + name + (extraClass ? " " + extraClass : ""), "aria-hidden": "true" });
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // ---- toasts ----

  const TOAST_ICONS = {
    success: "check-circle-fill",
    danger: "exclamation-octagon-fill",
    warning: "exclamation-triangle-fill",
    info: "info-circle-fill",
  };

  // A toast in the corner. `details` (optional): lines listed under the message, e.g. the items
  // an operation failed on.
  function toast(message, variant = "info", details = []) {
    const container = document.getElementById("files-toasts");
    if (!container) return;
    const body = el("div", { class: "toast-body flex-grow-1 text-break" }, el("div", { text: message }));
    if (details.length) {
      const list = el("ul", { class: "small mb-0 mt-1 ps-3 files-toast-details" });
      details.forEach((line) => list.append(el("li", { text: line })));
      body.append(list);
    }
    const node = el(
      "div",
      {
        class: "toast align-items-start border-0 files-toast-" + variant,
        role: variant === "danger" ? "alert" : "status",
        "aria-live": variant === "danger" ? "assertive" : "polite",
        "aria-atomic": "true",
      },
      el(
        "div",
        { class: "d-flex align-items-start" },
        el("div", { class: "ps-3 pt-2 fs-5" }, icon(TOAST_ICONS[variant] || TOAST_ICONS.info, "text-" + variant)),
        body,
        el("button", { type: "button", class: "btn-close m-2", "data-bs-dismiss": "toast", "aria-label": "Close" })
      )
    );
    container.append(node);
    node.addEventListener("hidden.bs.toast", () => node.remove());
    const autohide = variant === "success" || variant === "info";
    bootstrap.Toast.getOrCreateInstance(node, { autohide, delay: 6000 }).show();
  }

  // ---- modals ----

  // Bootstrap ignores show() while a modal is still fading out and hide() while it is still
  // fading in: a quick reply (or a quick user) would lose the call. These wait for the fade.
  document.addEventListener("shown.bs.modal", (event) => (event.target.dataset.filesShown = "1"));
  document.addEventListener("hide.bs.modal", (event) => {
    delete event.target.dataset.filesShown;
    event.target.dataset.filesHiding = "1";
  });
  document.addEventListener("hidden.bs.modal", (event) => delete event.target.dataset.filesHiding);

  // Resolves once the modal is not fading out any more (at once if it is not).
  function whenHidden(modalEl) {
    if (!modalEl.dataset.filesHiding) return Promise.resolve();
    return new Promise((resolve) => modalEl.addEventListener("hidden.bs.modal", () => resolve(), { once: true }));
  }

  async function showModal(modalEl) {
    await whenHidden(modalEl);
    bootstrap.Modal.getOrCreateInstance(modalEl).show();
  }

  function hideModal(modalEl) {
    const modal = bootstrap.Modal.getOrCreateInstance(modalEl);
    if (modalEl.dataset.filesShown) modal.hide();
    else modalEl.addEventListener("shown.bs.modal", () => modal.hide(), { once: true });
  }

  // ---- the "name" modal: one text field with inline validation, used for new file, new
  // folder, rename, copy to and move to ----

  // Resolves when `submit(value)` succeeded (to its result) or to undefined when the user
  // cancelled. `submit` may throw an ApiError: its message is shown under the field.
  async function askName({ title, label, value = "", submitLabel, help = "", validate, submit, selectStem }) {
    const modalEl = document.getElementById("files-name-modal");
    await whenHidden(modalEl); // the previous question's listeners are gone only then
    const form = modalEl.querySelector("form");
    const input = form.elements.value;
    const feedback = modalEl.querySelector(".invalid-feedback");
    const button = form.querySelector("[type=submit]");
    const helpEl = modalEl.querySelector(".form-text");
    modalEl.querySelector(".modal-title").textContent = title;
    modalEl.querySelector("label").textContent = label;
    button.querySelector(".files-button-label").textContent = submitLabel;
    helpEl.textContent = help;
    helpEl.hidden = !help;
    input.value = value;
    input.classList.remove("is-invalid");
    return new Promise((resolve) => {
      let result;
      const showError = (message) => {
        feedback.textContent = message;
        input.classList.add("is-invalid");
        input.focus();
      };
      const onInput = () => input.classList.remove("is-invalid");
      const onSubmit = async (event) => {
        event.preventDefault();
        const problem = validate ? validate(input.value) : "";
        if (problem) return showError(problem);
        setBusy(button, true);
        try {
          result = await submit(input.value);
          hideModal(modalEl);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          showError(error.message);
        } finally {
          setBusy(button, false);
        }
      };
      const onShown = () => {
        input.focus();
        const dot = selectStem ? input.value.lastIndexOf(".") : -1;
        input.setSelectionRange(0, dot > 0 ? dot : input.value.length);
      };
      const onHidden = () => {
        form.removeEventListener("submit", onSubmit);
        input.removeEventListener("input", onInput);
        modalEl.removeEventListener("shown.bs.modal", onShown);
        resolve(result);
      };
      form.addEventListener("submit", onSubmit);
      input.addEventListener("input", onInput);
      modalEl.addEventListener("shown.bs.modal", onShown);
      modalEl.addEventListener("hidden.bs.modal", onHidden, { once: true });
      bootstrap.Modal.getOrCreateInstance(modalEl).show();
    });
  }

  // A button's busy state: disabled, with a spinner in place of its icon.
  function setBusy(button, busy) {
    button.disabled = busy;
    button.setAttribute("aria-busy", busy ? "true" : "false");
    const spinner = button.querySelector(".spinner-border");
    const buttonIcon = button.querySelector(".bi");
    if (spinner) spinner.hidden = !busy;
    if (buttonIcon) buttonIcon.hidden = busy;
  }

  Object.assign(OF, {
    readConfig,
    makeUrls,
    encodeSegment,
    encodePath,
    joinPath,
    dirname,
    basename,
    validateName,
    displayName,
    xsrfToken,
    ApiError,
    errorFromReply,
    request,
    humanSize,
    numberFormat,
    timeFormat,
    clockFormat,
    plural,
    modeToOctal,
    el,
    icon,
    sleep,
    toast,
    askName,
    whenHidden,
    showModal,
    hideModal,
    setBusy,
  });
})();
