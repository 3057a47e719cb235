"""Fixtures for the jupyter-server extensions: a real jupyter-server (pytest-jupyter) with the
extension enabled and its site files, settings file and vendor directory under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from jupyter_server.auth import IdentityProvider, User
from traitlets.config import Config

pytest_plugins = ["pytest_jupyter.jupyter_server"]


class OwnerIdentityProvider(IdentityProvider):
    """Token requests belong to the server's owner, "alice", as under JupyterHub.

    jupyter-server's default names each token session "Anonymous <moon>" with a random id;
    only the name changes here, authentication (token, login cookie, XSRF) is the real one.
    """

    def generate_anonymous_user(self, handler):
        return User(username="alice", name="alice", display_name="alice")


@pytest.fixture
def vendor_dir() -> Path:
    """The real npm install the portal serves Bootstrap from (see package.json)."""
    return Path("/opt/ondemand-hub/share/node_modules")


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """Site configuration directory with an empty announcements.d."""
    (tmp_path / "site" / "announcements.d").mkdir(parents=True)
    return tmp_path / "site"


@pytest.fixture
def announcements_dir(site_dir: Path) -> Path:
    return site_dir / "announcements.d"


@pytest.fixture
def motd_path(site_dir: Path) -> Path:
    return site_dir / "motd.md"


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    """The user's settings file; its directory does not exist yet."""
    return tmp_path / "home" / ".config" / "ondemand-hub" / "settings.json"


@pytest.fixture
def jp_server_config(announcements_dir, motd_path, settings_path, vendor_dir):
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"ondemand_dashboard": True},
                "identity_provider_class": OwnerIdentityProvider,
                # Strict, as in a PUN: an undecorated handler method fails the tests
                # (jupyter-server warns and pytest.ini turns warnings into errors).
                "allow_unauthenticated_access": False,
            },
            "DashboardExtensionApp": {
                "site_title": "Example HPC Portal",
                "announcements_dir": str(announcements_dir),
                "motd_path": str(motd_path),
                "settings_path": str(settings_path),
                "vendor_dir": str(vendor_dir),
            },
        }
    )
