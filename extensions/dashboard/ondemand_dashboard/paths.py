"""Where the dashboard's packaged files are, for the extension and for the PUN's nginx config.

``STATIC_DIR`` is served at ``{base_url}static/ondemand_dashboard/`` and ``TEMPLATES_DIR`` holds
``base.html``, the layout other portal extensions extend by adding it to their template paths.
"""

import os

#: Absolute path of the extension's static files (dashboard.css, dashboard.js).
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

#: Absolute path of the extension's Jinja templates (base.html, dashboard.html).
TEMPLATES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")

#: URL prefix of STATIC_DIR below the server's base_url; keep in sync with the nginx config.
STATIC_URL_PREFIX = "static/ondemand_dashboard/"

#: The extension's name: its config section's jupyter_server key and static URL namespace.
EXTENSION_NAME = "ondemand_dashboard"


def hub_page_url(*parts: str) -> str:
    """URL of a page of the hub (``hub/logout``, ``hub/spawn-pending/...``) as a link on a
    portal page: ``parts`` are joined below ``{JUPYTERHUB_BASE_URL}hub/``.

    With one origin per user (``JupyterHub.subdomain_host``) the PUN is served from
    ``<user>.<portal host>`` and the hub from the bare host, whose address JupyterHub gives the
    PUN as ``JUPYTERHUB_HOST`` (empty on one shared origin, where a path is enough); the hub's
    cookies belong to its own host, so a link must name it.
    """
    base = os.environ.get("JUPYTERHUB_BASE_URL") or "/"
    path = "/".join(p.strip("/") for p in (base, "hub", *parts) if p.strip("/"))
    return os.environ.get("JUPYTERHUB_HOST", "").rstrip("/") + "/" + path
