// What every portal page's script shares: the XSRF token and a JSON API call.
//
// JupyterHub refuses cookie-authenticated fetch() calls without the X-XSRFToken header, GETs
// too (jupyterhub/_xsrf_utils.py): its value is the _xsrf cookie jupyter-server set when it
// rendered the page. Loaded by base.html before each page's own scripts, as window.Ondemand.
(function () {
  "use strict";

  function xsrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // fetch() a JSON endpoint of the PUN: the parsed reply (null when empty), or an Error with
  // the API's message, its HTTP status and the form field it names (error.field).
  async function api(method, url, body) {
    const headers = { Accept: "application/json", "X-XSRFToken": xsrfToken() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method: method,
        credentials: "same-origin",
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      const error = new Error("Could not reach the server. Check your connection and try again.");
      error.status = 0;
      throw error;
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      // not JSON (a proxy's error page, an empty reply): keep the HTTP status
    }
    if (!response.ok) {
      const error = new Error((data && data.message) || response.status + " " + response.statusText);
      error.status = response.status;
      error.field = data && data.field;
      throw error;
    }
    return data;
  }

  window.Ondemand = Object.freeze({ xsrfToken: xsrfToken, api: api });
})();
