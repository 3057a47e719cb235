"""``ondemand-stage user run``: what the caller may ask for is checked before anything runs
(the program against stage.yml's allowlist, the variables, the sizes), and the shared account
check refuses locked and expired accounts. Running it as real users: the integration tests
(test_hostile_hub_account.py)."""

import json

import pytest

from ondemand_hub.stage import user_run
from ondemand_hub.stage.cli import make_parser
from ondemand_hub.stage.config import StageConfig, config_from_mapping
from ondemand_hub.stage.errors import UsageError
from ondemand_hub.stage.user import PunUser, shadow_refusal

CONFIG = config_from_mapping(
    {
        "user_programs": [
            "/usr/bin/sbatch",
            "/usr/bin/install -d -m 0700 --",
            "/usr/bin/cat --",
            "/venv/bin/python -I -m ondemand_hub.scheduler.local",
        ]
    }
)


@pytest.mark.parametrize(
    "argv",
    [
        ["/usr/bin/sbatch", "--parsable", "-M", "hpc"],
        ["/usr/bin/install", "-d", "-m", "0700", "--", "/home/u/ondemand/sessions/x"],
        ["/usr/bin/cat", "--", "/home/u/port.5"],
        ["/venv/bin/python", "-I", "-m", "ondemand_hub.scheduler.local", "stop", "local:1:2"],
    ],
)
def test_allowed_programs_pass(argv):
    assert user_run.check_argv(argv, CONFIG) == argv


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "no program given"),
        (["sbatch"], "must be an absolute path, not 'sbatch'"),
        (["../../usr/bin/sbatch"], "must be an absolute path"),
        (["/usr/bin/id"], r"program not allowed: /usr/bin/id \(stage.yml user_programs\)"),
        (["/bin/sh", "-c", "id"], "program not allowed: /bin/sh"),
        (["/usr/bin/sbatch/../../bin/sh"], "program not allowed"),
        (["/usr/bin/install", "-m", "4755", "/x"], r"only as: /usr/bin/install -d -m 0700 --"),
        (["/usr/bin/cat", "/etc/shadow"], r"/usr/bin/cat is allowed only as: /usr/bin/cat --"),
        (["/venv/bin/python", "-c", "import os"], "allowed only as: /venv/bin/python -I -m"),
        (["/usr/bin/cat", "--", "a\nb"], "control character in argument"),
        (["/usr/bin/cat", "--", "a\x1b[2J"], "control character in argument"),
        (["/usr/bin/cat", "--", "a\x7f"], "control character in argument"),
        (["/usr/bin/sbatch", "x" * 4097], "longer than 4096 characters"),
        (["/usr/bin/sbatch", *["-v"] * 128], "more than 128 arguments"),
    ],
)
def test_refused_argv_says_why(argv, message):
    with pytest.raises(UsageError, match=message):
        user_run.check_argv(argv, CONFIG)


def test_the_default_allowlist_is_the_sessions_commands():
    prefixes = user_run.allowed_prefixes(StageConfig())
    assert [p[0].rsplit("/", 1)[-1] for p in prefixes][:5] == [
        "sbatch",
        "scancel",
        "install",
        "cat",
        "tail",
    ]
    assert prefixes[-1][1:] == ["-I", "-m", "ondemand_hub.scheduler.local"]


@pytest.mark.parametrize(
    "env, message",
    [
        ({"PATH": "/tmp"}, r"variable not allowed: PATH \(stage.yml user_env\)"),
        ({"LD_PRELOAD": "/tmp/x.so"}, "variable not allowed: LD_PRELOAD"),
        ({"SLURM_CONF_X": "/x"}, "variable not allowed: SLURM_CONF_X"),
        ({"JUPYTERHUB": "x"}, "variable not allowed: JUPYTERHUB"),
        ({"jupyterhub_x": "x"}, "not a variable name"),
        ({"A=B": "x"}, "not a variable name"),
        ({"JUPYTERHUB_X": "a\nb"}, "control character in the value of JUPYTERHUB_X"),
        ({"JUPYTERHUB_X": "a\0"}, "control character in the value"),
        ({"JUPYTERHUB_X": 5}, "must be a string"),
        ({"JUPYTERHUB_X": "x" * 4097}, "at most 4096 characters"),
        ({f"JUPYTERHUB_{i}": "x" for i in range(65)}, "more than 64 variables"),
        (["JUPYTERHUB_X"], "must be an object"),
    ],
)
def test_refused_env_says_why(env, message):
    with pytest.raises(UsageError, match=message):
        user_run.check_env(env, CONFIG)


def test_allowed_env_passes():
    env = {"JUPYTERHUB_API_TOKEN": "t0k", "SLURM_CONF": "/etc/slurm/slurm.conf"}
    assert user_run.check_env(env, CONFIG) == env


@pytest.mark.parametrize(
    "text, message",
    [
        ("not json", "stdin must be a JSON object"),
        ('["env"]', 'only "env" and "input"'),
        ('{"env": {}, "argv": ["/bin/sh"]}', 'only "env" and "input"'),
        ('{"input": 5}', '"input" must be a string'),
        (json.dumps({"input": "x" * ((1 << 20) + 1)}), '"input" must be a string of at most'),
        (" " * ((2 << 20) + 1), "longer than"),
    ],
)
def test_refused_requests_say_why(text, message):
    with pytest.raises(UsageError, match=message):
        user_run.parse_request(text, CONFIG)


def test_a_request_gives_env_and_input():
    text = json.dumps({"env": {"JUPYTERHUB_X": "1"}, "input": "#!/bin/bash\necho\n"})
    assert user_run.parse_request(text, CONFIG) == ({"JUPYTERHUB_X": "1"}, "#!/bin/bash\necho\n")
    assert user_run.parse_request("", CONFIG) == ({}, "")


@pytest.mark.parametrize("timeout", [0, -1, 301])
def test_timeout_is_bounded_by_stage_yml(timeout):
    with pytest.raises(UsageError, match="--timeout must be 1 to 300 seconds"):
        user_run.check_timeout(timeout, StageConfig())


def test_the_command_runs_through_runuser():
    user = PunUser("odt-sally", 1500, 1500, (1500,), "/home/odt-sally", "/bin/bash")
    argv = user_run.make_runuser_argv(user, ["/usr/bin/cat", "--", "/f"], StageConfig())
    assert argv == ["/usr/sbin/runuser", "-u", "odt-sally", "--", "/usr/bin/cat", "--", "/f"]


def test_the_command_line_needs_the_double_dash_and_keeps_the_programs_own():
    args = make_parser().parse_args(
        ["user", "run", "--user", "u", "--timeout", "5", "--", "/usr/bin/cat", "--", "/x"]
    )
    assert (args.group, args.command, args.user, args.timeout) == ("user", "run", "u", 5)
    assert args.argv == ["/usr/bin/cat", "--", "/x"]
    with pytest.raises(UsageError, match="unrecognized arguments"):
        make_parser().parse_args(["user", "run", "--user", "u", "/usr/bin/tail", "-n", "3"])


TODAY = 20_000  # days since 1970


@pytest.mark.parametrize(
    "fields, refusal",
    [
        (["u", "!$y$j9T$salt$hash", "19000", "", "", "", "", "", ""], "locked"),
        (["u", "!!$6$salt$hash"], "locked"),
        (["u", "$y$j9T$salt$hash", "19000", "", "", "", "", str(TODAY), ""], "expired"),
        (["u", "$y$j9T$salt$hash", "19000", "", "", "", "", "1", ""], "expired"),
        (["u", "$y$j9T$salt$hash", "19000", "", "", "", "", str(TODAY + 1), ""], ""),
        (["u", "$y$j9T$salt$hash", "19000", "", "", "", "", "", ""], ""),
        # no local password (useradd's default; Kerberos/SSSD/key logins): not locked
        (["u", "!", "19000", "", "", "", "", "", ""], ""),
        (["u", "!!"], ""),
        (["u", "*"], ""),
        (["u", "!*"], ""),
        (None, ""),
    ],
)
def test_shadow_locked_and_expired(fields, refusal):
    assert shadow_refusal(fields, TODAY).split(":")[0] == refusal


def test_expiry_names_the_day():
    fields = ["u", "x", "", "", "", "", "", "1", ""]
    assert shadow_refusal(fields, TODAY) == "expired: the account expired on 1970-01-02"
