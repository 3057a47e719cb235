"""Quota and balance files in Open OnDemand's format (version 1): parsing, the user's own
entries, thresholds, and malformed files or entries that are reported, never raised."""

from __future__ import annotations

import json
import os

import pytest

from ondemand_hub.site.quotas import (
    Balance,
    Quota,
    QuotaFileError,
    balance_warnings,
    expand_source,
    format_kib,
    is_url,
    parse_balance_file,
    parse_quota_file,
    quota_warnings,
    quotas_for,
    read_source,
)

# OOD's documented examples, for three users and a group.
QUOTAS = {
    "version": 1,
    "timestamp": 1525361263,
    "quotas": [
        {
            "path": "/home/alice",
            "user": "alice",
            "total_block_usage": 1_950_000,
            "block_limit": 2_000_000,
            "total_file_usage": 5,
            "file_limit": 10,
        },
        {
            "type": "fileset",
            "user": "alice",
            "path": "/project/p1",
            "block_usage": 500,
            "total_block_usage": 1000,
            "block_limit": 2000,
            "file_usage": 96,
            "total_file_usage": 960,
            "file_limit": 1000,
        },
        {
            "path": "/home/bob",
            "user": "bob",
            "total_block_usage": 2000,
            "block_limit": 2000,
            "total_file_usage": 10,
            "file_limit": 10,
        },
        {
            "type": "group",
            "group": "physics",
            "path": "/scratch/physics",
            "total_block_usage": 99,
            "block_limit": 100,
            "total_file_usage": 0,
            "file_limit": 0,
        },
    ],
}


def quota_text(**changes) -> str:
    return json.dumps({**QUOTAS, **changes})


def test_an_ood_quota_file_is_parsed_with_its_timestamp():
    quotas, errors = parse_quota_file(quota_text(), "/q.json")
    assert errors == []
    assert quotas[0] == Quota(
        source="/q.json",
        type="user",
        path="/home/alice",
        owner="alice",
        block_usage=1_950_000,
        block_limit=2_000_000,
        file_usage=5,
        file_limit=10,
        timestamp=1525361263,
    )
    assert (quotas[1].type, quotas[1].user_block_usage, quotas[1].user_file_usage) == (
        "fileset",
        500,
        96,
    )
    assert (quotas[3].type, quotas[3].owner) == ("group", "physics")


def test_only_the_users_own_entries_and_their_groups_apply():
    quotas, _ = parse_quota_file(quota_text(), "/q.json")
    assert [q.path for q in quotas_for(quotas, "alice")] == ["/home/alice", "/project/p1"]
    assert [q.path for q in quotas_for(quotas, "alice", ["users", "physics"])] == [
        "/home/alice",
        "/project/p1",
        "/scratch/physics",
    ]
    assert [q.path for q in quotas_for(quotas, "carol", ["bob"])] == []  # a group is not a user


def test_warnings_at_or_above_the_threshold_for_blocks_and_files():
    quotas, _ = parse_quota_file(quota_text(), "/q.json")
    mine = quotas_for(quotas, "alice", ["physics"])
    warnings = quota_warnings(mine, 0.95)
    assert [(w.kind, w.path, w.percent) for w in warnings] == [
        ("block", "/home/alice", 97),
        ("file", "/project/p1", 96),
        ("block", "/scratch/physics", 99),
    ]
    assert warnings[0].message == (
        "Your disk space quota on /home/alice is 97% used: 1.9 GiB of 1.9 GiB."
    )
    assert warnings[1].message == (
        "The shared file count quota on /project/p1 is 96% used: 960 files of 1,000. "
        "Yours: 96 files."
    )
    assert warnings[2].message.startswith("Group physics's disk space quota on /scratch/physics")
    # a lower threshold warns about more; 1.0 only about full quotas; 0 limits never warn
    assert len(quota_warnings(mine, 0.4)) == 5
    bob = quotas_for(quotas, "bob")
    assert [w.kind for w in quota_warnings(bob, 1.0)] == ["block", "file"]
    assert quota_warnings(mine, 1.0) == []


def test_a_file_that_is_not_json_or_not_version_1_is_refused_whole():
    for text, words in [
        ("{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("[]", "expected a JSON object"),
        (quota_text(version=2), "key 'version': expected 1, got 2"),
        (quota_text(version=True), "key 'version'"),
        (quota_text(quotas={"path": "/home"}), "key 'quotas': expected a list"),
        (quota_text(timestamp="yesterday"), "key 'timestamp': expected a number"),
    ]:
        with pytest.raises(QuotaFileError, match=words) as e:
            parse_quota_file(text, "/site/quota.json")
        assert str(e.value).startswith("/site/quota.json: ")


def test_entries_with_wrong_types_are_skipped_and_named():
    bad = [
        "a string",
        {"user": "alice", "path": "/a", "block_limit": 1, "total_file_usage": 0, "file_limit": 0},
        {**QUOTAS["quotas"][0], "total_block_usage": "1000"},
        {**QUOTAS["quotas"][0], "block_limit": -1},
        {**QUOTAS["quotas"][0], "file_limit": True},
        {**QUOTAS["quotas"][0], "file_limit": 1.5},
        {**QUOTAS["quotas"][0], "user": ""},
        {**QUOTAS["quotas"][0], "type": "project"},
        {**QUOTAS["quotas"][1], "block_usage": None},  # a fileset needs the user's share
        QUOTAS["quotas"][0],
    ]
    quotas, errors = parse_quota_file(quota_text(quotas=bad), "/q.json")
    assert [q.path for q in quotas] == ["/home/alice"]
    assert len(errors) == 9
    assert errors[1] == (
        "/q.json: quotas[1]: key 'total_block_usage': expected a whole number >= 0, got None"
    )
    assert "quotas[7]: key 'type': expected one of user, fileset, group" in errors[7]


def test_balances_of_the_user_and_their_projects_below_the_threshold():
    text = json.dumps(
        {
            "version": 1,
            "timestamp": 1525361263,
            "config": {"unit": "RU", "project_type": "account"},
            "balances": [
                {"user": "alice", "value": -3},
                {"user": "alice", "project": "p1", "value": 10},
                {"user": "bob", "value": -100},
                {"user": "alice", "value": "lots"},
            ],
        }
    )
    balances, errors = parse_balance_file(text, "/b.json")
    assert errors == ["/b.json: balances[3]: key 'value': expected a number, got 'lots'"]
    assert balances[1] == Balance("/b.json", "alice", "p1", 10, "RU", "account", 1525361263)
    assert [w.message for w in balance_warnings(balances, "alice", 0)] == [
        "Your balance is low: -3 RU."
    ]
    assert [w.message for w in balance_warnings(balances, "alice", 100)] == [
        "Your balance is low: -3 RU.",
        "The account p1's balance is low: 10 RU.",
    ]
    with pytest.raises(QuotaFileError, match="key 'balances'"):
        parse_balance_file(json.dumps({"version": 1, "quotas": []}), "/b.json")
    with pytest.raises(QuotaFileError, match="key 'config'"):
        parse_balance_file(json.dumps({"version": 1, "config": [], "balances": []}), "/b.json")


def test_sources_take_the_user_name_and_urls_are_told_apart():
    assert expand_source("/srv/quota/%{user}.json", "alice") == "/srv/quota/alice.json"
    assert is_url("https://quota.example.edu/q.json") and is_url("http://x/q")
    assert not is_url("/srv/quota.json") and not is_url("ftp://x/q")


def test_sizes_are_shown_in_binary_units():
    assert [format_kib(n) for n in (0, 1000, 1536, 2_000_000, 5 * 1024**3)] == [
        "0 KiB",
        "1000 KiB",
        "1.5 MiB",
        "1.9 GiB",
        "5.0 TiB",
    ]


def test_reading_a_source_refuses_what_is_not_a_small_regular_file(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(quota_text())
    assert json.loads(read_source(str(path)))["version"] == 1
    with pytest.raises(QuotaFileError, match="larger than 10 bytes"):
        read_source(str(path), max_bytes=10)
    with pytest.raises(QuotaFileError, match="cannot read: No such file"):
        read_source(str(tmp_path / "missing.json"))
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(QuotaFileError, match="not a regular file"):
        read_source(str(tmp_path / "fifo"))
