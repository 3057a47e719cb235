"""Helpers a Desktop session's job runs on the compute node, as the user.

``python -m ondemand_hub.desktop thumbnails <png>``: every ``--interval`` seconds, a small
screenshot of the session's X display (``$DISPLAY``) is written to ``<png>`` (atomically: a
temporary file renamed over it), which the user's PUN shows on the session's card. It stops
when the display has been gone for a few tries in a row (the desktop ended).

Pillow grabs the screen through XCB with the session's own X authority: only the user's
processes can read it, and the file lands in the user's 0700 session folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

#: Largest thumbnail side, in pixels (the card shows it ~320 px wide; 2× for sharp screens).
SIZE = (640, 400)


def grab(display: str, path: str, size: tuple[int, int] = SIZE) -> None:
    """One screenshot of ``display`` scaled to fit ``size``, written to ``path`` atomically."""
    from PIL import ImageGrab

    image = ImageGrab.grab(xdisplay=display)
    image.thumbnail(size)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".thumbnail.", suffix=".png", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            image.convert("RGB").save(f, format="PNG", optimize=True)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def thumbnails(
    path: str, display: str, interval: float, tries: int, rounds: int | None = None
) -> int:
    """Write a thumbnail every ``interval`` s; 0 once the display is gone ``tries`` times in a
    row (after at least one success), 1 if it never answered. ``rounds`` bounds the loop
    (tests)."""
    failures = 0
    grabbed = False
    done = 0
    while rounds is None or done < rounds:
        try:
            grab(display, path)
            grabbed, failures = True, 0
        except OSError as e:
            failures += 1
            if failures >= tries:
                print(
                    f"ondemand-hub: display {display} gone ({e}); no more thumbnails",
                    file=sys.stderr,
                )
                return 0 if grabbed else 1
        done += 1
        time.sleep(interval)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ondemand_hub.desktop")
    commands = parser.add_subparsers(dest="command", required=True)
    thumbs = commands.add_parser("thumbnails", help="write a screenshot of $DISPLAY every few s")
    thumbs.add_argument("path", help="the PNG file to write (replaced atomically)")
    thumbs.add_argument("--display", default=os.environ.get("DISPLAY", ""))
    thumbs.add_argument("--interval", type=float, default=10.0)
    thumbs.add_argument("--tries", type=int, default=6, help="failures in a row before giving up")
    args = parser.parse_args(argv)
    if not args.display:
        parser.error("no display: set $DISPLAY or --display")
    time.sleep(min(args.interval, 3.0))  # let the desktop draw itself first
    return thumbnails(args.path, args.display, args.interval, args.tries)


if __name__ == "__main__":
    sys.exit(main())
