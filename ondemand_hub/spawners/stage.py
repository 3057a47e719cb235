"""How the hub talks to ondemand-stage: one ``stage_command``, one way of calling it, for both
spawners (the PUN's ``pun …`` and the sessions' ``user run …``).

The hub never starts a user process or becomes a user itself: it asks the privileged helper,
directly when the hub runs as root (the embedded default) or through one sudo rule when it runs
as a service account. Configure it once for both spawners as ``c.StageClient.stage_command``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence

from traitlets import Float, List, Unicode, default
from traitlets.config import LoggingConfigurable


class StageCommandError(Exception):
    """ondemand-stage exited non-zero; the message is its one-line error (without the
    ``ondemand-stage:`` prefix)."""


class StageClient(LoggingConfigurable):
    """Mixin of the spawners: ``stage_command`` and :meth:`call_stage`."""

    stage_command = List(
        Unicode(),
        help="""The argv prefix that runs ondemand-stage as root.

        Default: the ondemand-stage beside the hub's Python, run directly (the hub is root).
        For a hub running as an unprivileged service account, use the one documented sudo rule:
        ``['sudo', '-n', '/opt/ondemand-hub/venv/bin/ondemand-stage']``. Set it as
        ``c.StageClient.stage_command``: the PUN and the sessions use the same helper.
        """,
    ).tag(config=True)

    @default("stage_command")
    def _default_stage_command(self):
        return [os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "ondemand-stage")]

    stage_timeout = Float(
        30.0,
        help="""Seconds to wait for one ondemand-stage call before giving up.

        Starting a PUN takes well under a second; the margin covers a loaded login node.
        Session commands (``user run``) wait as long as the session spawner's own timeouts.
        """,
    ).tag(config=True)

    async def call_stage(
        self, args: Sequence[str], stdin: dict | None = None, timeout: float | None = None
    ) -> dict:
        """Run ``<stage_command> <args>`` with ``stdin`` as JSON; its JSON answer, or
        StageCommandError with its error line."""
        argv = [*self.stage_command, *args]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        data = json.dumps(stdin).encode() if stdin is not None else b""
        try:
            out, err = await asyncio.wait_for(proc.communicate(data), timeout or self.stage_timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise StageCommandError(f"ondemand-stage {' '.join(args[:2])} timed out") from None
        if proc.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            message = lines[-1] if lines else f"exit {proc.returncode}"
            raise StageCommandError(message.removeprefix("ondemand-stage: "))
        return json.loads(out)
