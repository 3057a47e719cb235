"""The message of the day: ``/etc/ondemand-hub/motd.md``, Markdown shown on the dashboard.

Like Open OnDemand's ``MOTD_FORMAT=markdown``. The file is optional and is rendered and
sanitised by the same function as announcements (:func:`.announcements.render_markdown`).
Pure: the extension re-reads the file on each page load and logs the errors returned here.
"""

from __future__ import annotations

from pathlib import Path

from .announcements import render_markdown
from .dropin import SiteFileError, read_site_text


def render_motd(text: str) -> str | None:
    """Sanitised HTML for the message of the day, or None when the text is blank."""
    if not text.strip():
        return None
    return render_markdown(text)


def load_motd(path: Path | str) -> tuple[str | None, list[str]]:
    """Read and render the message of the day at ``path``.

    Returns ``(html, errors)``: ``(None, [])`` when the file does not exist or is blank,
    ``(None, [error])`` when it cannot be read or is not UTF-8.
    """
    try:
        text = read_site_text(Path(path))
    except FileNotFoundError:
        return None, []
    except SiteFileError as e:
        return None, [str(e)]
    return render_motd(text), []
