// The web shell: xterm.js attached to a jupyter_server_terminals terminal of the user.
//
// The terminal outlives the page: its name is kept in the URL (?term=<name>), so a reload
// re-attaches to the same shell, and a dropped websocket is re-opened with backoff (1, 2, 4 …
// 30 s) while a banner says so. On every attach the server replays the shell's recent output
// (after a "setup" message), so the screen is reset first and redrawn from that replay.
(function () {
  "use strict";

  const root = document.getElementById("shell");
  const contextElement = document.getElementById("shell-context");
  if (!root || !contextElement) return;
  document.body.classList.add("ondemand-shell-page");

  const context = JSON.parse(contextElement.textContent);
  const element = document.getElementById("shell-term");
  const banner = document.getElementById("shell-banner");
  const status = document.getElementById("shell-status");
  const PREFS_KEY = "ondemand-shell-prefs";
  const NAME_RE = /^\w+$/;

  const THEMES = {
    dark: {
      background: "#1e1e1e", foreground: "#d4d4d4", cursor: "#d4d4d4", cursorAccent: "#1e1e1e",
      selectionBackground: "#264f78",
    },
    light: {
      background: "#ffffff", foreground: "#1e1e1e", cursor: "#1e1e1e", cursorAccent: "#ffffff",
      selectionBackground: "#add6ff", black: "#000000", red: "#cd3131", green: "#00bc00",
      yellow: "#949800", blue: "#0451a5", magenta: "#bc05bc", cyan: "#0598bc", white: "#555555",
      brightBlack: "#666666", brightRed: "#cd3131", brightGreen: "#14ce14", brightYellow: "#b5ba00",
      brightBlue: "#0451a5", brightMagenta: "#bc05bc", brightCyan: "#0598bc", brightWhite: "#a5a5a5",
    },
  };

  function loadPrefs() {
    let prefs = {};
    try {
      prefs = JSON.parse(localStorage.getItem(PREFS_KEY) || "{}") || {};
    } catch (err) {
      prefs = {};
    }
    const dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    return {
      theme: THEMES[prefs.theme] ? prefs.theme : dark ? "dark" : "light",
      fontSize: Number.isInteger(prefs.fontSize) ? Math.min(32, Math.max(8, prefs.fontSize)) : 14,
    };
  }
  const prefs = loadPrefs();
  function savePrefs() {
    try {
      localStorage.setItem(PREFS_KEY, JSON.stringify(prefs));
    } catch (err) {
      // private browsing: the choice lasts for this page only
    }
  }

  const term = new Terminal({
    cursorBlink: true,
    scrollback: 10000,
    fontSize: prefs.fontSize,
    fontFamily: '"DejaVu Sans Mono", ui-monospace, Menlo, Consolas, "Liberation Mono", monospace',
    theme: THEMES[prefs.theme],
  });
  const fitAddon = new FitAddon.FitAddon();
  term.loadAddon(fitAddon);
  term.open(element);
  root.dataset.theme = prefs.theme;

  function fit() {
    try {
      fitAddon.fit();
    } catch (err) {
      // not laid out yet
    }
  }
  fit();
  new ResizeObserver(() => window.requestAnimationFrame(fit)).observe(element);
  term.focus();

  // -- status and banner -------------------------------------------------------------------

  function setStatus(text, tone) {
    status.textContent = text;
    status.className = "badge text-bg-" + tone;
  }

  // A banner with a text and optional buttons [{label, onClick}]; tone is a Bootstrap alert.
  function showBanner(text, tone, buttons) {
    banner.replaceChildren(document.createTextNode(text));
    for (const b of buttons || []) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-sm btn-link py-0 align-baseline";
      button.textContent = b.label;
      button.addEventListener("click", b.onClick);
      banner.append(" ", button);
    }
    banner.className = "alert alert-" + tone + " py-1 px-2 m-0 rounded-0 small";
    banner.hidden = false;
    window.requestAnimationFrame(fit);
  }
  function hideBanner() {
    banner.hidden = true;
    window.requestAnimationFrame(fit);
  }

  // -- the terminal and its websocket ------------------------------------------------------

  let name = new URLSearchParams(window.location.search).get("term");
  if (name && !NAME_RE.test(name)) name = null;
  let socket = null;
  let ended = false;
  let failures = 0;
  let retryTimer = null;
  let notice = null;

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }
  function sendSize() {
    send(["set_size", term.rows, term.cols, element.clientHeight, element.clientWidth]);
  }
  term.onData((data) => send(["stdin", data]));
  term.onResize(sendSize);

  function terminalUrl() {
    return context.terminals_url + "/" + encodeURIComponent(name);
  }

  async function create() {
    ended = false;
    setStatus("Starting…", "secondary");
    const body = context.host ? { host: context.host } : context.cwd ? { cwd: context.cwd } : {};
    let model;
    try {
      model = await window.Ondemand.api("POST", context.create_url, body);
    } catch (err) {
      setStatus("Not started", "danger");
      showBanner("Could not start a shell: " + err.message, "danger", [
        { label: "Try again", onClick: create },
      ]);
      return;
    }
    name = model.name;
    const url = new URL(window.location.href);
    url.searchParams.set("term", name);
    window.history.replaceState(null, "", url);
    const messages = [notice, model.message].filter(Boolean);
    notice = null;
    if (messages.length) showBanner(messages.join(" "), "info", [{ label: "OK", onClick: hideBanner }]);
    connect();
  }

  function connect() {
    window.clearTimeout(retryTimer);
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const url = scheme + "//" + window.location.host + context.websocket_url + "/" + encodeURIComponent(name);
    const ws = new WebSocket(url);
    socket = ws;
    let opened = false;
    setStatus("Connecting…", "secondary");
    ws.onopen = () => {
      opened = true;
      failures = 0;
      if (!banner.classList.contains("alert-info")) hideBanner();
      setStatus("Connected", "success");
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message[0] === "setup") {
        term.reset(); // the replay that follows redraws the screen
        sendSize();
      } else if (message[0] === "stdout") {
        term.write(message[1]);
      } else if (message[0] === "disconnect") {
        ended = true;
      }
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      if (ended) showEnded();
      else retryLater(opened);
    };
  }

  function retryLater(wasOpen) {
    if (!wasOpen) failures += 1;
    const delay = Math.min(30, 2 ** Math.max(0, failures - 1));
    setStatus("Disconnected", "warning");
    let text = "Connection lost; your shell keeps running. Reconnecting in " + delay + " s…";
    if (failures >= 3) text += " If this goes on, reload the page (you may have to sign in again).";
    showBanner(text, "warning", [{ label: "Reconnect now", onClick: reattach }]);
    window.clearTimeout(retryTimer);
    retryTimer = window.setTimeout(reattach, delay * 1000);
  }

  // Before re-opening the websocket, ask whether the terminal still exists: a culled or
  // exited shell is a 404 here, while the websocket would only fail.
  async function reattach() {
    window.clearTimeout(retryTimer);
    try {
      await window.Ondemand.api("GET", terminalUrl());
    } catch (err) {
      if (err.status === 404) {
        showEnded();
      } else {
        failures += 1; // offline, or the server is not answering: wait longer each time
        retryLater(true);
      }
      return;
    }
    connect();
  }

  function showEnded() {
    ended = true;
    setStatus("Ended", "secondary");
    showBanner("This shell has ended.", "secondary", [
      {
        label: "Start a new shell",
        onClick: () => {
          hideBanner();
          term.reset();
          create();
        },
      },
    ]);
  }

  async function start() {
    if (name) {
      try {
        await window.Ondemand.api("GET", terminalUrl());
        connect();
        return;
      } catch (err) {
        if (err.status !== 404) {
          retryLater(false);
          return;
        }
        notice = "Your earlier shell (" + name + ") has ended; this is a new one.";
      }
    }
    create();
  }

  // For the browser tests (and the curious): the terminal and its current websocket.
  window.ondemandShell = Object.freeze({ term: term, socket: () => socket });

  // Back online: a websocket that looked open may be dead (its TCP connection lost with the
  // network), so start a fresh one; the shell on the server never noticed.
  window.addEventListener("online", () => {
    if (ended || !name) return;
    if (socket) socket.close();
    else reattach();
  });
  window.addEventListener("offline", () => {
    if (!ended) setStatus("Offline", "warning");
  });

  // -- toolbar: clipboard, font size, theme ------------------------------------------------

  async function copySelection() {
    const text = term.getSelection();
    if (!text) return;
    try {
      await navigator.clipboard.writeText(text);
    } catch (err) {
      // no Clipboard API outside https/localhost: the old way, through a hidden textarea
      const area = document.createElement("textarea");
      area.value = text;
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    term.focus();
  }

  async function pasteClipboard() {
    try {
      term.paste(await navigator.clipboard.readText());
    } catch (err) {
      showBanner("The browser does not let this page read the clipboard: press Ctrl+Shift+V in the terminal.", "info", [
        { label: "OK", onClick: hideBanner },
      ]);
    }
    term.focus();
  }

  term.attachCustomKeyEventHandler((event) => {
    if (event.type !== "keydown" || !event.ctrlKey || !event.shiftKey) return true;
    if (event.code === "KeyC") {
      event.preventDefault(); // not the browser's "inspect element"
      copySelection();
      return false;
    }
    // Ctrl+Shift+V: the browser's own paste, which xterm.js receives as a paste event
    return event.code !== "KeyV";
  });

  const actions = {
    copy: copySelection,
    paste: pasteClipboard,
    smaller: () => setFontSize(prefs.fontSize - 1),
    larger: () => setFontSize(prefs.fontSize + 1),
    theme: () => {
      prefs.theme = prefs.theme === "dark" ? "light" : "dark";
      term.options.theme = THEMES[prefs.theme];
      root.dataset.theme = prefs.theme;
      savePrefs();
      term.focus();
    },
  };
  function setFontSize(size) {
    prefs.fontSize = Math.min(32, Math.max(8, size));
    term.options.fontSize = prefs.fontSize;
    savePrefs();
    fit();
    term.focus();
  }
  root.addEventListener("click", (event) => {
    const button = event.target.closest("[data-shell-action]");
    if (button && actions[button.dataset.shellAction]) actions[button.dataset.shellAction]();
  });

  start();
})();
