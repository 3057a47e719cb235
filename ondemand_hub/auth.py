"""Authentication: login name → local Unix account, and who may have a PUN.

``LocalAccountMapper`` maps the name an authenticator returns to a local account (a regex
template like OOD's ``user_map_match``, or a command like ``user_map_cmd``) and refuses accounts
that may not get a PUN, with a page that says why. ``OnDemandPAMAuthenticator`` is PAM with it;
an OIDC site mixes it into its oauthenticator class the same way.
"""

from __future__ import annotations

import pwd
import re
import subprocess

from jupyterhub.auth import Authenticator, PAMAuthenticator
from tornado import web
from traitlets import Bool, Float, Integer, List, Unicode, default, validate


class LocalAccountMapper(Authenticator):
    """Mixin for a JupyterHub Authenticator: map names to local accounts and vet them."""

    user_map_match = Unicode(
        "",
        help="""Regular expression applied to the authenticated name (after JupyterHub's
        normalisation); the local account is ``user_map_replace`` expanded with its groups.

        Empty (the default): the local account has the login name, as with PAM.
        Example for OIDC e-mail identities: ``r'^([a-z0-9._-]+)@example\\.edu$'``.
        A name that does not match is refused.
        """,
    ).tag(config=True)

    user_map_replace = Unicode(
        r"\1",
        help=r"""Template for the local name when ``user_map_match`` matches (``re`` syntax;
        default ``\1``, the first group).""",
    ).tag(config=True)

    user_map_cmd = List(
        Unicode(),
        help="""A command (argv list) that prints the local account for a name, as OOD's
        ``user_map_cmd``. The authenticated name is appended as the last argument; the first
        line of its output is the account. Empty output or a non-zero exit refuses the login.
        Example: ``['/usr/local/sbin/ood-map-user']``. Takes precedence over ``user_map_match``.
        """,
    ).tag(config=True)

    user_map_timeout = Float(
        10.0, help="Seconds to wait for ``user_map_cmd`` before refusing the login."
    ).tag(config=True)

    min_uid = Integer(
        1000,
        help="""Accounts with a smaller uid (root, system accounts) are refused a PUN.
        Keep it equal to ``min_uid`` in /etc/ondemand-hub/stage.yml (the helper checks again).""",
    ).tag(config=True)

    disabled_shells = List(
        Unicode(),
        ["/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false"],
        help="Login shells that mark an account as disabled; such accounts are refused.",
    ).tag(config=True)

    @validate("user_map_match")
    def _validate_user_map_match(self, proposal):
        try:
            re.compile(proposal.value)
        except re.error as e:
            raise ValueError(f"user_map_match is not a valid regular expression: {e}") from e
        return proposal.value

    def map_to_local(self, name: str) -> str:
        """The local account for an authenticated (normalised) name; 403 if there is none."""
        if self.user_map_cmd:
            return self._map_by_command(name)
        if not self.user_map_match:
            return name
        match = re.fullmatch(self.user_map_match, name)
        if not match:
            raise web.HTTPError(403, f"The login {name!r} is not mapped to a local account.")
        return match.expand(self.user_map_replace)

    def _map_by_command(self, name: str) -> str:
        try:
            done = subprocess.run(
                [*self.user_map_cmd, name],
                capture_output=True,
                text=True,
                timeout=self.user_map_timeout,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            self.log.error("user_map_cmd failed for %s: %s", name, e)
            raise web.HTTPError(503, "The account mapping service is unavailable.") from e
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            raise web.HTTPError(403, f"The login {name!r} is not mapped to a local account.")
        return lines[0].strip()

    def check_local_account(self, name: str) -> None:
        """Raise 403 with the reason if ``name`` may not have a PUN."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise web.HTTPError(
                403, f"There is no local account {name!r} on this system."
            ) from None
        if entry.pw_uid < self.min_uid:
            raise web.HTTPError(
                403, f"The account {name!r} is a system account and cannot use the portal."
            )
        if entry.pw_shell in self.disabled_shells:
            raise web.HTTPError(
                403, f"The account {name!r} is disabled (login shell {entry.pw_shell})."
            )

    def normalize_username(self, username):
        return self.map_to_local(super().normalize_username(username))

    def check_allowed(self, username, authentication=None):
        """Every valid local account is allowed unless allowed_users/allowed_groups narrow it."""
        self.check_local_account(username)
        if self.allow_all or not (self.allowed_users or getattr(self, "allowed_groups", None)):
            return True
        return super().check_allowed(username, authentication)

    restart_pun_on_group_change = Bool(
        True,
        help="""At login, stop a running PUN whose supplementary groups differ from the user's
        current ones, so the PUN started next has the new groups (file access follows them).""",
    ).tag(config=True)

    @default("any_allow_config")
    def _default_any_allow_config(self):
        # Valid local accounts (uid >= min_uid, enabled shell) are the allow rule.
        return True

    async def authenticate(self, handler, data):
        result = await super().authenticate(handler, data)
        if result and handler is not None:
            await self.refresh_pun_at_login(handler, result)
        return result

    async def refresh_pun_at_login(self, handler, result) -> None:
        """Make the login start a fresh PUN when the running one is stale: stopped behind the
        hub's back (``ondemand-stage pun clean``) or started with other groups."""
        name = self.normalize_username(result["name"] if isinstance(result, dict) else result)
        user = handler.find_user(name)
        spawner = user.spawners.get("") if user else None
        if spawner is None or not spawner.active or spawner.pending:
            return
        if self.restart_pun_on_group_change and getattr(spawner, "groups_changed", bool)():
            self.log.info("%s: groups changed since the PUN started; restarting it", name)
            await handler.stop_single_user(user, "")
        elif await spawner.poll() is not None:
            self.log.info("%s: the PUN stopped since the last visit; starting a new one", name)
            await handler.user_stopped(user, "")


class OnDemandPAMAuthenticator(LocalAccountMapper, PAMAuthenticator):
    """PAM login (the default): the Unix password of any local account that may have a PUN."""
