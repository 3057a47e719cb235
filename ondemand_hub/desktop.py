"""Helpers a Desktop session's job runs on the compute node, as the user.

``python -m ondemand_hub.desktop reap <id>``: end every process of the user whose environment
holds ``ONDEMAND_DESKTOP_ID=<id>`` — what the desktop started, daemons too (Xfce starts
ssh-agent and gpg-agent, which detach from the job and would outlive it where the scheduler
tracks processes by parentage). The job script runs it when the desktop ends.

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
import signal
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


MARKER = "ONDEMAND_DESKTOP_ID"


def marked_processes(desktop_id: str, uid: int | None = None) -> list[int]:
    """Live processes of ``uid`` (default: ours) whose environment has the desktop's marker;
    never this process."""
    uid = os.getuid() if uid is None else uid
    marker = f"{MARKER}={desktop_id}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(entry))
        except (OSError, IndexError):
            continue
    return found


def reap(desktop_id: str, grace: float = 3.0) -> int:
    """SIGTERM every process of the desktop, SIGKILL what is left after ``grace`` s; how many
    there were."""
    if not desktop_id:
        raise ValueError("no desktop id")
    pids = marked_processes(desktop_id)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while sig == signal.SIGTERM and time.monotonic() < deadline:
            if not marked_processes(desktop_id):
                return len(pids)
            time.sleep(0.1)
        pids = marked_processes(desktop_id)
    return len(pids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ondemand_hub.desktop")
    commands = parser.add_subparsers(dest="command", required=True)
    thumbs = commands.add_parser("thumbnails", help="write a screenshot of $DISPLAY every few s")
    thumbs.add_argument("path", help="the PNG file to write (replaced atomically)")
    thumbs.add_argument("--display", default=os.environ.get("DISPLAY", ""))
    thumbs.add_argument("--interval", type=float, default=10.0)
    thumbs.add_argument("--tries", type=int, default=6, help="failures in a row before giving up")
    reaper = commands.add_parser("reap", help="end every process of a desktop")
    reaper.add_argument("desktop_id", help=f"the value of ${MARKER} in the desktop's processes")
    args = parser.parse_args(argv)
    if args.command == "reap":
        reap(args.desktop_id)
        return 0
    if not args.display:
        parser.error("no display: set $DISPLAY or --display")
    time.sleep(min(args.interval, 3.0))  # let the desktop draw itself first
    return thumbnails(args.path, args.display, args.interval, args.tries)


if __name__ == "__main__":
    sys.exit(main())
