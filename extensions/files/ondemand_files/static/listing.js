// The directory table: first page from the data the server rendered into the page, further
// pages fetched with the listing's cursor as the user scrolls, server-side sort, filter and
// "show hidden", and the selection the toolbar's actions work on.
(function () {
  "use strict";

  const OF = window.OndemandFiles;
  const { el, icon } = OF;

  const root = document.getElementById("files-app");
  const config = OF.readConfig(root);
  const urls = OF.makeUrls(config);
  const pageSize = Number(root.dataset.pageSize) || 500;
  const MAX_LIMIT = 5000; // the API's upper bound for `limit`
  const PREFS_KEY = "ondemand-files.listing";

  const table = document.getElementById("files-table");
  const tbody = document.getElementById("files-rows");
  const selectAll = document.getElementById("files-select-all");
  const countEl = document.getElementById("files-count");
  const emptyEl = document.getElementById("files-empty");
  const sentinel = document.getElementById("files-sentinel");
  const loadingEl = document.getElementById("files-loading");
  const loadMoreButton = document.getElementById("files-load-more");
  const loadErrorEl = document.getElementById("files-load-error");
  const filterInput = document.getElementById("files-filter");
  const hiddenToggle = document.getElementById("files-show-hidden");
  const sortSelect = document.getElementById("files-sort-select");

  // What the server rendered the first page with (the page URL's sort/order/hidden, if any).
  const rendered = {
    sort: root.dataset.sort || "name",
    order: root.dataset.order || "asc",
    hidden: root.dataset.hidden === "1",
  };

  const state = {
    dir: config.path,
    ...rendered,
    filter: "",
    entries: [],
    total: 0,
    nextCursor: null,
    loading: false,
    appending: false,
    generation: 0,
    controller: null,
  };
  const selection = new Set(); // paths
  let rowsByPath = new Map();
  let lastClickedIndex = -1;

  // The last sort and "show hidden" choice apply to every folder (until changed), and the
  // page's URL carries them so a reload or a bookmark shows the same view.
  function readPrefs() {
    try {
      const prefs = JSON.parse(localStorage.getItem(PREFS_KEY)) || {};
      return {
        sort: ["name", "size", "mtime", "type"].includes(prefs.sort) ? prefs.sort : "name",
        order: prefs.order === "desc" ? "desc" : "asc",
        hidden: prefs.hidden === true,
      };
    } catch (err) {
      return null; // storage disabled or a corrupt value
    }
  }

  function savePrefs() {
    try {
      localStorage.setItem(PREFS_KEY, JSON.stringify({ sort: state.sort, order: state.order, hidden: state.hidden }));
    } catch (err) {
      // storage disabled: the choice lasts for this page only
    }
    const url = new URL(window.location.href);
    url.searchParams.delete("cursor");
    url.searchParams.set("sort", state.sort);
    url.searchParams.set("order", state.order);
    url.searchParams.set("hidden", state.hidden ? "1" : "0");
    window.history.replaceState(window.history.state, "", url);
  }

  // ---- rows ----

  const EXTENSION_ICONS = {
    "file-earmark-code": "py c h cc cpp hpp cxx f f90 f95 for r jl js mjs ts java go rs rb pl pm lua m sh bash zsh csh tcsh ksh fish slurm sbatch pbs mk cmake make html htm css scss xml json yaml yml toml ini cfg conf ipynb sql",
    "file-earmark-text": "txt md rst log out err tex bib csv tsv dat",
    "file-earmark-image": "png jpg jpeg gif bmp tif tiff svg webp ico eps",
    "file-earmark-pdf": "pdf",
    "file-earmark-zip": "zip tar gz tgz bz2 xz zst 7z rar",
    "file-earmark-music": "mp3 wav flac ogg",
    "file-earmark-play": "mp4 mkv mov avi webm",
    "file-earmark-spreadsheet": "xls xlsx ods",
    "file-earmark-binary": "so o a exe bin h5 hdf5 nc npy npz pkl sif",
  };
  const iconByExtension = new Map();
  for (const [name, extensions] of Object.entries(EXTENSION_ICONS)) {
    extensions.split(" ").forEach((ext) => iconByExtension.set(ext, name));
  }

  // The type that decides how an entry behaves: a symlink acts as what it points to.
  function effectiveType(entry) {
    return entry.type === "symlink" ? entry.target_type || "broken" : entry.type;
  }

  function isDirectory(entry) {
    return effectiveType(entry) === "directory";
  }

  function entryIcon(entry) {
    const type = effectiveType(entry);
    if (type === "directory") {
      return entry.type === "symlink" ? "folder-symlink-fill" : "folder-fill";
    }
    if (type === "file") {
      const dot = entry.name.lastIndexOf(".");
      const ext = dot > 0 ? entry.name.slice(dot + 1).toLowerCase() : "";
      return iconByExtension.get(ext) || "file-earmark";
    }
    if (type === "broken") return "file-earmark-x";
    return "question-square";
  }

  function entryHref(entry) {
    return isDirectory(entry) ? urls.fs(entry.path) : urls.view(entry.path);
  }

  function sizeText(entry) {
    return isDirectory(entry) ? "—" : OF.humanSize(entry.size);
  }

  function mtimeNode(entry) {
    if (typeof entry.mtime !== "number") return el("span", { text: "" });
    const date = new Date(entry.mtime * 1000);
    return el("time", { datetime: date.toISOString(), title: date.toString(), text: OF.timeFormat.format(date) });
  }

  // Whether an entry can be opened: a FIFO, socket or device (or a broken link) has nothing
  // to show and reading it could block.
  function isOpenable(entry) {
    const type = effectiveType(entry);
    return type === "directory" || type === "file";
  }

  function makeRow(entry, index) {
    const type = effectiveType(entry);
    const link = el(isOpenable(entry) ? "a" : "span", {
      class: "files-name-link",
      title: entry.name,
      text: OF.displayName(entry.name),
    });
    if (isOpenable(entry)) link.href = entryHref(entry);
    if (type === "file") {
      link.target = "_blank";
      link.rel = "noopener";
    }
    const nameCell = el(
      "td",
      { class: "files-col-name" },
      el(
        "div",
        { class: "d-flex align-items-center gap-2 min-w-0" },
        icon(entryIcon(entry), "files-icon files-icon-" + type),
        link,
        entry.type === "symlink"
          ? el(
              "span",
              { class: "files-symlink text-body-secondary", title: "Link to " + (entry.target || "?") },
              icon("link-45deg"),
              el("span", { class: "visually-hidden", text: "(link to " + (entry.target || "?") + ")" })
            )
          : null
      ),
      el(
        "div",
        { class: "files-meta d-sm-none small text-body-secondary" },
        type === "directory" ? "Folder" : sizeText(entry),
        " · ",
        mtimeNode(entry)
      )
    );
    const checkbox = el("input", {
      type: "checkbox",
      class: "form-check-input files-select",
      "aria-label": "Select " + entry.name,
    });
    checkbox.checked = selection.has(entry.path);
    const menuButton = el(
      "button",
      {
        type: "button",
        class: "btn btn-sm btn-link link-body-emphasis files-row-menu",
        "data-bs-toggle": "dropdown",
        "aria-expanded": "false",
        "aria-label": "Actions for " + entry.name,
      },
      icon("three-dots-vertical")
    );
    const row = el(
      "tr",
      { "data-index": String(index), class: checkbox.checked ? "table-active" : null },
      el("td", { class: "files-col-check" }, checkbox),
      nameCell,
      el("td", { class: "files-col-size d-none d-sm-table-cell", title: OF.plural(entry.size || 0, "byte"), text: sizeText(entry) }),
      el("td", { class: "files-col-mtime d-none d-sm-table-cell" }, mtimeNode(entry)),
      el("td", { class: "files-col-mode d-none d-md-table-cell" }, el("code", { text: entry.mode || "" })),
      el(
        "td",
        { class: "files-col-actions" },
        el("div", { class: "dropdown" }, menuButton, el("ul", { class: "dropdown-menu dropdown-menu-end shadow-sm" }))
      )
    );
    return row;
  }

  function appendRows(entries) {
    const fragment = document.createDocumentFragment();
    const start = state.entries.length;
    entries.forEach((entry, i) => {
      const row = makeRow(entry, start + i);
      rowsByPath.set(entry.path, row);
      fragment.append(row);
    });
    state.entries.push(...entries);
    tbody.append(fragment);
  }

  function replaceRows(entries) {
    state.entries = [];
    rowsByPath = new Map();
    lastClickedIndex = -1;
    tbody.replaceChildren();
    appendRows(entries);
    // forget selected items that are gone (deleted, moved, filtered out)
    for (const path of Array.from(selection)) {
      if (!rowsByPath.has(path)) selection.delete(path);
    }
    selectionChanged();
  }

  // ---- status line and empty state ----

  function renderStatus() {
    const loaded = state.entries.length;
    let text = state.nextCursor
      ? "Showing " + OF.numberFormat.format(loaded) + " of " + OF.plural(state.total, "item")
      : OF.plural(state.total, "item");
    if (state.filter) text += " matching “" + state.filter + "”";
    countEl.textContent = text;
    emptyEl.hidden = loaded > 0 || state.loading;
    emptyEl.querySelector(".files-empty-text").textContent = state.filter
      ? "No items match “" + state.filter + "”."
      : "This folder is empty.";
    emptyEl.querySelector(".files-empty-hint").hidden = Boolean(state.filter);
    loadMoreButton.hidden = !state.nextCursor || state.loading;
    loadingEl.hidden = !state.loading;
    table.classList.toggle("files-table-reloading", state.loading && !state.appending);
  }

  function renderSortHeaders() {
    table.querySelectorAll("th[data-sort]").forEach((th) => {
      const active = th.dataset.sort === state.sort;
      th.setAttribute("aria-sort", active ? (state.order === "asc" ? "ascending" : "descending") : "none");
      const caret = th.querySelector(".files-sort-caret");
      caret.className = "bi files-sort-caret " + (active ? (state.order === "asc" ? "bi-caret-up-fill" : "bi-caret-down-fill") : "bi-caret-down-fill opacity-0");
    });
    sortSelect.value = state.sort + ":" + state.order;
  }

  // ---- loading ----

  function listingParams(cursor, limit) {
    return {
      limit,
      sort: state.sort,
      order: state.order,
      filter: state.filter,
      hidden: state.hidden ? "1" : "",
      cursor,
    };
  }

  function applyListing(data, append) {
    state.total = data.total;
    state.nextCursor = data.next_cursor || null;
    if (append) appendRows(data.entries);
    else replaceRows(data.entries);
  }

  // Fetch the first page again, or with `append` the next page. After a change in the folder
  // (`keep`) the first page is as long as what is loaded now, so the view stays put; a new sort
  // or filter starts over with one page. A newer request makes older replies obsolete.
  async function load({ append = false, keep = false, highlight = [] } = {}) {
    if (append && (state.loading || !state.nextCursor)) return;
    if (!append) {
      state.generation++;
      if (state.controller) state.controller.abort();
    }
    const generation = state.generation;
    const controller = new AbortController();
    state.controller = controller;
    state.loading = true;
    state.appending = append;
    loadErrorEl.hidden = true;
    renderStatus();
    const limit = keep ? Math.min(MAX_LIMIT, Math.max(pageSize, state.entries.length)) : pageSize;
    let data;
    try {
      data = await OF.request(urls.fs(state.dir, listingParams(append ? state.nextCursor : "", limit)), {
        signal: controller.signal,
      });
    } catch (error) {
      if (error.name === "AbortError" || generation !== state.generation) return;
      state.loading = false;
      loadErrorEl.querySelector(".files-load-error-text").textContent = "Could not load the listing: " + error.message;
      loadErrorEl.hidden = false;
      loadErrorEl.dataset.append = append ? "1" : "";
      renderStatus();
      return;
    }
    if (generation !== state.generation) return;
    state.loading = false;
    applyListing(data, append);
    renderStatus();
    flash(highlight);
    watchSentinel();
  }

  function flash(paths) {
    let first = null;
    for (const path of paths) {
      const row = rowsByPath.get(path);
      if (!row) continue;
      row.classList.remove("files-row-flash");
      void row.offsetWidth; // restart the animation
      row.classList.add("files-row-flash");
      first = first || row;
    }
    if (first) first.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  // ---- infinite scroll: load the next page when the end of the table comes near ----

  const observer =
    "IntersectionObserver" in window
      ? new IntersectionObserver(
          (records) => {
            if (records.some((r) => r.isIntersecting)) load({ append: true });
          },
          { rootMargin: "0px 0px 800px 0px" }
        )
      : null;

  function watchSentinel() {
    if (!observer || !state.nextCursor) return;
    // observing again reports the current intersection, so a short page that leaves the
    // sentinel in view loads the next one too
    observer.unobserve(sentinel);
    observer.observe(sentinel);
  }

  // ---- selection ----

  function selectedEntries() {
    return state.entries.filter((entry) => selection.has(entry.path));
  }

  function selectionChanged() {
    const loaded = state.entries.length;
    const count = selection.size;
    selectAll.checked = count > 0 && count === loaded;
    selectAll.indeterminate = count > 0 && count < loaded;
    selectAll.disabled = loaded === 0;
    root.dispatchEvent(new CustomEvent("files:selection", { detail: { count } }));
  }

  function setSelected(index, checked) {
    const entry = state.entries[index];
    if (!entry) return;
    if (checked) selection.add(entry.path);
    else selection.delete(entry.path);
    const row = rowsByPath.get(entry.path);
    row.classList.toggle("table-active", checked);
    row.querySelector(".files-select").checked = checked;
  }

  function clearSelection() {
    for (const path of selection) {
      const row = rowsByPath.get(path);
      if (row) {
        row.classList.remove("table-active");
        row.querySelector(".files-select").checked = false;
      }
    }
    selection.clear();
    selectionChanged();
  }

  tbody.addEventListener("click", (event) => {
    const checkbox = event.target.closest(".files-select");
    if (!checkbox) return;
    const index = Number(checkbox.closest("tr").dataset.index);
    if (event.shiftKey && lastClickedIndex >= 0) {
      const [from, to] = index < lastClickedIndex ? [index, lastClickedIndex] : [lastClickedIndex, index];
      for (let i = from; i <= to; i++) setSelected(i, checkbox.checked);
    } else {
      setSelected(index, checkbox.checked);
    }
    lastClickedIndex = index;
    selectionChanged();
  });

  selectAll.addEventListener("change", () => {
    state.entries.forEach((entry, i) => setSelected(i, selectAll.checked));
    selectionChanged();
  });

  // Row menus are built when opened: a 100,000-row table carries only the toggle buttons.
  tbody.addEventListener("show.bs.dropdown", (event) => {
    const row = event.target.closest("tr");
    const menu = row.querySelector(".dropdown-menu");
    const entry = state.entries[Number(row.dataset.index)];
    menu.replaceChildren(...OF.rowMenuItems(entry));
  });

  // ---- sort, filter, hidden ----

  function setSort(sort, order) {
    state.sort = sort;
    state.order = order;
    savePrefs();
    renderSortHeaders();
    load();
  }

  table.querySelectorAll("th[data-sort] button").forEach((button) => {
    button.addEventListener("click", () => {
      const sort = button.closest("th").dataset.sort;
      // a new column starts with the order people expect: A→Z, biggest, newest first
      const fresh = sort === "size" || sort === "mtime" ? "desc" : "asc";
      setSort(sort, sort === state.sort ? (state.order === "asc" ? "desc" : "asc") : fresh);
    });
  });

  sortSelect.addEventListener("change", () => {
    const [sort, order] = sortSelect.value.split(":");
    setSort(sort, order);
  });

  let filterTimer = null;
  filterInput.addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      if (filterInput.value === state.filter) return;
      state.filter = filterInput.value;
      load();
    }, 300);
  });
  filterInput.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && filterInput.value) {
      filterInput.value = "";
      filterInput.dispatchEvent(new Event("input"));
    }
  });

  hiddenToggle.addEventListener("change", () => {
    state.hidden = hiddenToggle.checked;
    savePrefs();
    load();
  });

  loadMoreButton.addEventListener("click", () => load({ append: true }));
  loadErrorEl.querySelector("button").addEventListener("click", () => load({ append: Boolean(loadErrorEl.dataset.append) }));

  // ---- start: show the page the server rendered, unless the URL did not choose a view and
  // the user's last choice differs ----

  function start() {
    const params = new URLSearchParams(window.location.search);
    const prefs = readPrefs();
    if (prefs && !["sort", "order", "hidden"].some((name) => params.has(name))) {
      Object.assign(state, prefs);
    }
    hiddenToggle.checked = state.hidden;
    renderSortHeaders();
    let initial = null;
    try {
      initial = JSON.parse(root.dataset.listing || "null");
    } catch (err) {
      initial = null; // fetch it instead
    }
    const asRendered = ["sort", "order", "hidden"].every((key) => state[key] === rendered[key]);
    if (initial && Array.isArray(initial.entries) && asRendered) {
      applyListing(initial, false);
      renderStatus();
      watchSentinel();
    } else {
      load();
    }
  }

  OF.listing = {
    config,
    urls,
    root,
    get dir() {
      return state.dir;
    },
    isDirectory,
    isOpenable,
    selectedEntries,
    clearSelection,
    // after a change in the folder: keep the loaded length, flash `highlight` paths
    reload: ({ highlight = [] } = {}) => load({ keep: true, highlight }),
  };

  start();
})();
