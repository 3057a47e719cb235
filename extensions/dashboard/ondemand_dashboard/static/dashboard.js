// Dashboard behaviour: dismiss announcements and acknowledge required ones.
//
// Both POST to {base_url}api/ondemand/announcements/<id>/dismiss with the X-XSRFToken header,
// from portal.js (window.Ondemand).
(function () {
  "use strict";

  const baseUrl = document.body.dataset.baseUrl || "/";

  async function dismiss(announcementId) {
    const url =
      baseUrl + "api/ondemand/announcements/" + encodeURIComponent(announcementId) + "/dismiss";
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-XSRFToken": window.Ondemand.xsrfToken() },
    });
    if (response.status === 410) {
      // removed, edited or expired since the page was loaded: nothing left to dismiss
      // (only 410: a 404 could be a proxy or an origin check, and must not look like success)
      return;
    }
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try {
        message = (await response.json()).message || message;
      } catch (err) {
        // not a JSON reply (e.g. a proxy's error page): keep the HTTP status
      }
      throw new Error(message);
    }
  }

  function showError(container, error) {
    const slot = container.querySelector(".ondemand-dismiss-error");
    slot.textContent = "Could not save: " + error.message;
    slot.hidden = false;
  }

  function initDismissibleAlerts() {
    document.querySelectorAll(".ondemand-announcement [data-ondemand-dismiss]").forEach((button) => {
      const alert = button.closest(".ondemand-announcement");
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await dismiss(alert.dataset.announcementId);
          bootstrap.Alert.getOrCreateInstance(alert).close();
        } catch (error) {
          button.disabled = false;
          showError(alert, error);
        }
      });
    });
  }

  // Required announcements block the page one after another until each is acknowledged.
  function initRequiredModals() {
    const modals = Array.from(document.querySelectorAll(".ondemand-required-announcement"));
    modals.forEach((element, index) => {
      const button = element.querySelector("[data-ondemand-acknowledge]");
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await dismiss(element.dataset.announcementId);
        } catch (error) {
          button.disabled = false;
          showError(element, error);
          return;
        }
        const next = modals[index + 1];
        if (next) {
          element.addEventListener("hidden.bs.modal", () => bootstrap.Modal.getOrCreateInstance(next).show(), {
            once: true,
          });
        }
        bootstrap.Modal.getOrCreateInstance(element).hide();
      });
    });
    if (modals.length > 0) {
      bootstrap.Modal.getOrCreateInstance(modals[0]).show();
    }
  }

  initDismissibleAlerts();
  initRequiredModals();
})();
