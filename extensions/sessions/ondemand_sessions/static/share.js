// Sharing a session: the "Share" dialog of a session card, and the "Shared with you" list.
//
// OndemandShare.open(apiUrl, name, title) shows who the session is shared with (each with
// "Stop sharing"), a field to share it with one more login name, and the link to send.
// OndemandShare.renderSharedWithMe(container, sharedUrl) lists sessions others share with
// this user. Calls go through window.Ondemand.api (portal.js); see share.py for the API.
(function () {
  "use strict";

  let modal = null;
  let current = null; // {apiUrl, name}

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    });
    (children || []).forEach((child) => node.appendChild(child));
    return node;
  }

  function build() {
    const root = el("div", {
      class: "modal fade",
      id: "share-modal",
      tabindex: "-1",
      "aria-labelledby": "share-modal-title",
      "aria-hidden": "true",
    });
    root.innerHTML = `
      <div class="modal-dialog modal-dialog-centered">
        <div class="modal-content">
          <div class="modal-header">
            <h2 class="modal-title fs-5" id="share-modal-title">Share session</h2>
            <button type="button" class="btn-close" data-bs-dismiss="modal" aria-label="Close"></button>
          </div>
          <div class="modal-body">
            <p class="small text-body-secondary mb-2">
              People you share with open this session through the portal as themselves. They
              do not get your files, your dashboard or your other sessions.
            </p>
            <form class="mb-3" id="share-form" novalidate>
              <label for="share-user" class="form-label">Login name</label>
              <div class="input-group has-validation">
                <input type="text" class="form-control" id="share-user" name="user"
                       autocomplete="off" autocapitalize="off" spellcheck="false" maxlength="32"
                       placeholder="e.g. jdoe" required>
                <button type="submit" class="btn btn-primary" id="share-submit">
                  <i class="bi bi-person-plus" aria-hidden="true"></i> Share
                </button>
                <div class="invalid-feedback" id="share-error"></div>
              </div>
            </form>
            <h3 class="fs-6">Shared with</h3>
            <ul class="list-group mb-3" id="share-list" aria-live="polite"></ul>
            <label for="share-link" class="form-label small">Link to send them</label>
            <div class="input-group input-group-sm">
              <input type="text" class="form-control" id="share-link" readonly>
              <button type="button" class="btn btn-outline-secondary" id="share-copy">
                <i class="bi bi-clipboard" aria-hidden="true"></i> Copy
              </button>
            </div>
          </div>
        </div>
      </div>`;
    document.body.appendChild(root);
    root.querySelector("#share-form").addEventListener("submit", (event) => {
      event.preventDefault();
      share();
    });
    root.querySelector("#share-copy").addEventListener("click", async () => {
      const link = root.querySelector("#share-link");
      link.select();
      try {
        await navigator.clipboard.writeText(link.value);
      } catch (err) {
        document.execCommand("copy"); // plain-http portals have no clipboard API
      }
    });
    return root;
  }

  function sharesUrl(suffix) {
    return current.apiUrl + "/" + encodeURIComponent(current.name) + "/shares" + (suffix || "");
  }

  function showError(message) {
    const input = modal.querySelector("#share-user");
    const slot = modal.querySelector("#share-error");
    input.classList.toggle("is-invalid", Boolean(message));
    slot.textContent = message || "";
  }

  function renderList(shares) {
    const list = modal.querySelector("#share-list");
    list.replaceChildren();
    if (!shares.length) {
      list.appendChild(el("li", { class: "list-group-item text-body-secondary", text: "Nobody yet" }));
      return;
    }
    shares.forEach((share) => {
      const stop = el("button", {
        type: "button",
        class: "btn btn-sm btn-outline-danger",
        "data-share-user": share.user,
        text: "Stop sharing",
      });
      stop.addEventListener("click", () => unshare(share.user, stop));
      const item = el("li", { class: "list-group-item d-flex align-items-center gap-2" }, [
        el("i", { class: "bi bi-person", "aria-hidden": "true" }),
        el("span", { class: "flex-grow-1", text: share.user }),
        stop,
      ]);
      list.appendChild(item);
    });
  }

  async function refresh() {
    const data = await window.Ondemand.api("GET", sharesUrl());
    renderList(data.shares || []);
    modal.querySelector("#share-link").value = data.url ? new URL(data.url, location.href).href : "";
  }

  async function share() {
    const input = modal.querySelector("#share-user");
    const button = modal.querySelector("#share-submit");
    showError("");
    button.disabled = true;
    try {
      await window.Ondemand.api("POST", sharesUrl(), { user: input.value.trim() });
      input.value = "";
      await refresh();
    } catch (error) {
      showError(error.message);
    } finally {
      button.disabled = false;
    }
  }

  async function unshare(user, button) {
    button.disabled = true;
    try {
      await window.Ondemand.api("DELETE", sharesUrl("/" + encodeURIComponent(user)));
      await refresh();
    } catch (error) {
      showError(error.message);
      button.disabled = false;
    }
  }

  async function open(apiUrl, name, title) {
    modal = modal || build();
    current = { apiUrl: apiUrl, name: name };
    modal.querySelector("#share-modal-title").textContent = "Share " + (title || name);
    showError("");
    modal.querySelector("#share-list").replaceChildren();
    window.bootstrap.Modal.getOrCreateInstance(modal).show();
    try {
      await refresh();
    } catch (error) {
      showError(error.message);
    }
  }

  // "Shared with you": one line per session another user shares with this one.
  async function renderSharedWithMe(container, sharedUrl) {
    let data;
    try {
      data = await window.Ondemand.api("GET", sharedUrl);
    } catch (error) {
      container.hidden = true;
      return;
    }
    const items = data.shared || [];
    container.hidden = items.length === 0;
    const list = container.querySelector("[data-shared-list]") || container;
    list.replaceChildren();
    items.forEach((item) => {
      const link = el("a", {
        class: "btn btn-sm btn-primary" + (item.ready ? "" : " disabled"),
        href: item.url || "#",
        target: "_blank",
        rel: "noopener",
        text: item.ready ? "Connect" : "Not running",
      });
      if (!item.ready) link.setAttribute("aria-disabled", "true");
      list.appendChild(
        el("li", { class: "list-group-item d-flex align-items-center gap-2" }, [
          el("i", { class: "bi bi-people", "aria-hidden": "true" }),
          el("span", { class: "flex-grow-1", text: item.name + " (" + item.owner + ")" }),
          link,
        ])
      );
    });
  }

  window.OndemandShare = Object.freeze({ open: open, renderSharedWithMe: renderSharedWithMe });
})();
