"""ondemand-stage refuses bad user names and accounts before touching anything."""

import pwd

import pytest

from ondemand_hub.stage.config import StageConfig
from ondemand_hub.stage.errors import InvalidUserError
from ondemand_hub.stage.user import check_name, validate_user

CONFIG = StageConfig()


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "user name is empty"),
        ("../x", "does not match"),
        ("a;id", "does not match"),
        ("a b", "does not match"),
        ("alice\n", "does not match"),
        ("ali\nce", "does not match"),
        ("-rf", "does not match"),
        ("$(id)", "does not match"),
        ("a" * 300, "longer than 32 characters"),
        ("a" * 33, "longer than 32 characters"),
    ],
)
def test_bad_names_are_refused_with_a_clear_message(name, message):
    with pytest.raises(InvalidUserError, match=message.replace("(", r"\(")):
        check_name(name, CONFIG)


@pytest.mark.parametrize("name", ["alice", "a", "bob.smith", "x_1-2", "A" * 32, "_svc"])
def test_ordinary_names_pass(name):
    assert check_name(name, CONFIG) == name


def test_root_is_refused_for_its_uid():
    with pytest.raises(
        InvalidUserError, match=r"user 'root' is a system account: it has uid 0, below min_uid 1000"
    ):
        validate_user("root", CONFIG)


def test_system_account_below_min_uid_is_refused():
    entry = next(e for e in pwd.getpwall() if 0 < e.pw_uid < 1000)
    with pytest.raises(InvalidUserError, match=f"has uid {entry.pw_uid}, below min_uid 1000"):
        validate_user(entry.pw_name, CONFIG)


def test_unknown_user_is_refused():
    with pytest.raises(InvalidUserError, match=r"user 'no-such-user-xyz' does not exist"):
        validate_user("no-such-user-xyz", CONFIG)


def test_disabled_shell_is_refused():
    entry = next(e for e in pwd.getpwall() if e.pw_shell in CONFIG.disabled_shells)
    config = StageConfig(min_uid=0)
    with pytest.raises(InvalidUserError, match="is disabled: it has a disabled login shell"):
        validate_user(entry.pw_name, config)


def test_valid_account_reports_uid_gid_and_groups():
    entry = pwd.getpwnam("root")
    user = validate_user("root", StageConfig(min_uid=0))
    assert (user.name, user.uid, user.gid, user.home) == ("root", 0, 0, entry.pw_dir)
    assert 0 in user.groups
