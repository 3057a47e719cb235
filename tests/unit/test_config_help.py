"""Every configurable trait we define says what it is for (STYLE.md: unit, default, example)."""

import pytest

from ondemand_dashboard.app import DashboardExtensionApp
from ondemand_dashboard.portalapp import PortalExtensionApp
from ondemand_files.app import FilesExtensionApp
from ondemand_hub.auth import LocalAccountMapper, OnDemandPAMAuthenticator
from ondemand_hub.spawners.pun import PUNSpawner
from ondemand_hub.spawners.session import SlurmSessionSpawner
from ondemand_hub.spawners.stage import StageClient
from ondemand_jobs.app import JobsExtensionApp
from ondemand_sessions.app import SessionsExtensionApp
from ondemand_shell.app import ShellExtensionApp
from ondemand_status.app import StatusExtensionApp

CLASSES = [
    StageClient,
    PUNSpawner,
    SlurmSessionSpawner,
    LocalAccountMapper,
    OnDemandPAMAuthenticator,
    DashboardExtensionApp,
    PortalExtensionApp,
    FilesExtensionApp,
    SessionsExtensionApp,
    ShellExtensionApp,
    JobsExtensionApp,
    StatusExtensionApp,
]


def own_config_traits(cls):
    """Configurable traits defined (or overridden) by ``cls`` itself, not by its bases."""
    return {
        name: trait for name, trait in cls.class_traits(config=True).items() if name in vars(cls)
    }


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_configurable_trait_has_help(cls):
    missing = [name for name, trait in own_config_traits(cls).items() if not trait.help.strip()]
    assert missing == []


def test_the_classes_do_define_configurable_traits():
    # guards the test above against silently checking nothing
    assert {"stage_command", "stage_timeout"} <= set(own_config_traits(StageClient))
    assert {"user_map_match", "user_map_cmd", "min_uid"} <= set(
        own_config_traits(LocalAccountMapper)
    )
    assert "site_title" in own_config_traits(DashboardExtensionApp)
