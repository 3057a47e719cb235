"""stage.yml: the strict YAML subset reader and the validated settings."""

import os

import pytest

from ondemand_hub.stage import miniyaml
from ondemand_hub.stage.config import StageConfig, config_from_mapping, load_config
from ondemand_hub.stage.errors import ConfigError


def test_miniyaml_reads_scalars_and_lists():
    text = """
# comment
min_uid: 500   # trailing comment
base_url: "/portal/"
nginx_bin: /usr/sbin/nginx
flag: true
empty: ~
disabled_shells: [/bin/false, '/usr/sbin/nologin']
vendor_packages:
  - bootstrap
  - "bootstrap-icons"
"""
    assert miniyaml.loads(text) == {
        "min_uid": 500,
        "base_url": "/portal/",
        "nginx_bin": "/usr/sbin/nginx",
        "flag": True,
        "empty": None,
        "disabled_shells": ["/bin/false", "/usr/sbin/nologin"],
        "vendor_packages": ["bootstrap", "bootstrap-icons"],
    }


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: 1\na: 2", "line 2: duplicate key 'a'"),
        ("just text", "line 1: expected 'key: value'"),
        ("  - item", "line 1: unexpected indentation"),
        ("a: [1, 2", "line 1: unterminated list"),
        ("a: 'open", "line 1: unterminated quoted string"),
        ("a: {b: 1}", "line 1: unsupported YAML syntax"),
        ("a: &anchor x", "line 1: unsupported YAML syntax"),
    ],
)
def test_miniyaml_errors_name_the_line(text, message):
    with pytest.raises(miniyaml.MiniYAMLError, match=message):
        miniyaml.loads(text)


def test_unknown_key_is_an_error():
    with pytest.raises(ConfigError, match=r"stage.yml: unknown key 'min_uuid'"):
        config_from_mapping({"min_uuid": 10}, "/etc/ondemand-hub/stage.yml")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"min_uid": "ten"}, "key 'min_uid': expected int, got str"),
        ({"min_uid": True}, "key 'min_uid': expected int, got bool"),
        ({"min_uid": -1}, "expected a number >= 0"),
        ({"disabled_shells": "/bin/false"}, "key 'disabled_shells': expected list"),
        ({"disabled_shells": [1]}, "expected a list of non-empty strings"),
        ({"base_url": "portal"}, "key 'base_url': expected a path"),
    ],
)
def test_bad_values_name_key_and_expectation(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(data, "stage.yml")


def test_missing_file_gives_defaults(tmp_path):
    assert load_config(str(tmp_path / "absent.yml")) == StageConfig()


def test_file_overrides_defaults(tmp_path):
    path = tmp_path / "stage.yml"
    path.write_text("min_uid: 2000\npun_idle_timeout: 60\n")
    os.chmod(path, 0o644)
    config = load_config(str(path))
    assert (config.min_uid, config.pun_idle_timeout) == (2000, 60)
    assert config.nginx_bin == StageConfig().nginx_bin


def test_group_writable_file_is_refused(tmp_path):
    path = tmp_path / "stage.yml"
    path.write_text("min_uid: 2000\n")
    os.chmod(path, 0o666)
    if os.geteuid() != 0:
        pytest.fail("this test runs as root, like ondemand-stage")
    with pytest.raises(ConfigError, match="must be owned by root and writable only by root"):
        load_config(str(path))


def test_symlinked_file_is_refused(tmp_path):
    target = tmp_path / "real.yml"
    target.write_text("min_uid: 0\n")
    link = tmp_path / "stage.yml"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(link))


def test_non_utf8_file_is_refused(tmp_path):
    path = tmp_path / "stage.yml"
    path.write_bytes(b"base_url: /\xff/\n")
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(str(path))
