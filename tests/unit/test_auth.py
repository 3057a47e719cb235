"""Login name → local account mapping and the account checks of OnDemandPAMAuthenticator."""

import pwd

import pytest
from tornado import web

from ondemand_hub.auth import OnDemandPAMAuthenticator


def authenticator(**config):
    return OnDemandPAMAuthenticator(**config)


def test_without_mapping_the_account_is_the_login_name_lowercased():
    assert authenticator().normalize_username("Alice") == "alice"


def test_pattern_mapping_like_user_map_match():
    auth = authenticator(user_map_match=r"([a-z0-9._-]+)@example\.edu")
    assert auth.normalize_username("jdoe@example.edu") == "jdoe"
    with pytest.raises(web.HTTPError) as e:
        auth.normalize_username("jdoe@evil.example")
    assert e.value.status_code == 403
    assert "is not mapped to a local account" in e.value.log_message


def test_pattern_must_match_the_whole_name():
    auth = authenticator(user_map_match=r"([a-z]+)@example\.edu")
    with pytest.raises(web.HTTPError):
        auth.normalize_username("jdoe@example.edu.evil")


def test_pattern_with_a_replacement_template():
    auth = authenticator(user_map_match=r"(\w+)\.(\w+)@example\.edu", user_map_replace=r"\2_\1")
    assert auth.normalize_username("jane.doe@example.edu") == "doe_jane"


def test_invalid_pattern_is_refused_at_configuration():
    with pytest.raises(Exception, match="user_map_match is not a valid regular expression"):
        authenticator(user_map_match="([a-z")


def test_command_mapping_like_user_map_cmd(tmp_path):
    script = tmp_path / "map"
    script.write_text('#!/bin/sh\ncase "$1" in jdoe@example.edu) echo jdoe ;; *) exit 1 ;; esac\n')
    script.chmod(0o755)
    auth = authenticator(user_map_cmd=[str(script)])
    assert auth.normalize_username("jdoe@example.edu") == "jdoe"
    with pytest.raises(web.HTTPError) as e:
        auth.normalize_username("someone@else.org")
    assert e.value.status_code == 403


def test_command_that_cannot_run_is_a_503_not_a_crash(tmp_path):
    auth = authenticator(user_map_cmd=[str(tmp_path / "missing")])
    with pytest.raises(web.HTTPError) as e:
        auth.normalize_username("jdoe")
    assert e.value.status_code == 503


def test_system_account_is_refused_with_the_reason():
    with pytest.raises(web.HTTPError) as e:
        authenticator().check_allowed("root")
    assert e.value.status_code == 403
    assert (
        e.value.log_message == "The account 'root' is a system account and cannot use the portal."
    )


def test_unknown_account_is_refused_with_the_reason():
    with pytest.raises(web.HTTPError) as e:
        authenticator().check_allowed("no-such-account-xyz")
    assert e.value.log_message == "There is no local account 'no-such-account-xyz' on this system."


def test_disabled_shell_is_refused_with_the_reason():
    entry = next(e for e in pwd.getpwall() if e.pw_shell == "/usr/sbin/nologin")
    with pytest.raises(web.HTTPError) as e:
        authenticator(min_uid=0).check_allowed(entry.pw_name)
    assert "is disabled (login shell /usr/sbin/nologin)" in e.value.log_message


def test_valid_accounts_are_allowed_by_default_and_allowed_users_narrows():
    entry = next(e for e in pwd.getpwall() if e.pw_shell.endswith("sh") and e.pw_uid == 0)
    assert authenticator(min_uid=0).check_allowed(entry.pw_name) is True
    assert authenticator(min_uid=0, allowed_users={"someone-else"}).check_allowed("root") is False
    assert authenticator().any_allow_config is True


def test_the_mapper_composes_with_other_authenticators_as_for_oidc():
    """OIDC sites mix LocalAccountMapper into their oauthenticator class the same way
    (docs/authentication.md); DummyAuthenticator stands in for it here."""
    from jupyterhub.auth import DummyAuthenticator

    from ondemand_hub.auth import LocalAccountMapper

    class MappedDummy(LocalAccountMapper, DummyAuthenticator):
        pass

    auth = MappedDummy(user_map_match=r"([a-z]+)@example\.edu")
    assert auth.normalize_username("Root@Example.edu") == "root"
    assert auth.any_allow_config is True
    with pytest.raises(web.HTTPError):
        auth.check_allowed("root")
