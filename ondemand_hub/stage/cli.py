"""Command line of ondemand-stage: ``ondemand-stage pun start|stop|status|show|list|clean`` and
``ondemand-stage user run --user U -- PROGRAM ARGS...``.

Run by root, or by the hub's service account through exactly one sudo rule. Every sub-command
prints JSON on stdout. Errors are one line on stderr: exit status 1, or 2 for usage errors.
``pun start`` reads the JUPYTERHUB_* variables for the user's server as a JSON object on stdin,
and ``user run`` its variables and the command's input, so tokens never appear in a process list.
``user run`` prints the command's exit code and output (``{"returncode", "stdout", "stderr"}``):
exit status 0 means the command ran, whatever its own exit code (stage/user_run.py).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import sys
import time

from . import user_run
from .config import STAGE_CONFIG_PATH, StageConfig, load_config
from .errors import StageError, UsageError
from .user import validate_user


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit 2 itself
        raise UsageError(message)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ondemand-stage", description="Manage per-user PUNs (run as root).")
    groups = parser.add_subparsers(dest="group", required=True, parser_class=_Parser)
    punp = groups.add_parser("pun", help="per-user nginx + jupyter-server")
    cmds = punp.add_subparsers(dest="command", required=True, parser_class=_Parser)
    start = cmds.add_parser("start", help="start the user's PUN; JUPYTERHUB_* env as JSON on stdin")
    start.add_argument("--user", required=True)
    for name, text in (
        ("stop", "stop the user's PUN"),
        ("status", "is it running, is it busy"),
        ("show", "status plus paths"),
    ):
        cmds.add_parser(name, help=text).add_argument("--user", required=True)
    cmds.add_parser("list", help="every PUN with state on this host")
    clean = cmds.add_parser("clean", help="stop PUNs idle longer than pun_idle_timeout")
    clean.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        help="seconds; overrides pun_idle_timeout from stage.yml",
    )
    clean.add_argument(
        "--user", action="append", dest="users", help="only consider this user's PUN (repeatable)"
    )
    add_user_group(groups)
    return parser


def add_user_group(groups) -> None:
    userp = groups.add_parser("user", help="commands as a portal user (sessions)")
    cmds = userp.add_subparsers(dest="command", required=True, parser_class=_Parser)
    runp = cmds.add_parser(
        "run",
        help="run an allowed program as the user; env and input as JSON on stdin",
        usage="ondemand-stage user run --user USER [--timeout S] -- PROGRAM [ARGS...]",
    )
    runp.add_argument("--user", required=True)
    runp.add_argument("--timeout", type=int, default=60, help="seconds (default 60)")
    runp.add_argument("argv", nargs="+", metavar="PROGRAM", help="absolute path, then arguments")
    cmds.add_parser(
        "check", help="may the hub act as this user? (refused: exit 1 saying why)"
    ).add_argument("--user", required=True)


def read_env_from_stdin() -> object:
    if sys.stdin is None or sys.stdin.isatty():
        return {}
    text = sys.stdin.read(1 << 20)
    if not text.strip():
        return {}
    try:
        return json.loads(text).get("env", {})
    except (ValueError, AttributeError) as e:
        raise UsageError('stdin must be a JSON object like {"env": {...}}') from e


AUDITED = ("start", "stop", "clean", "run", "check")


def caller() -> str:
    """Who asked: the sudo caller if any (for the record only, never for a decision)."""
    uid = os.environ.get("SUDO_UID", str(os.getuid()))
    try:
        return pwd.getpwuid(int(uid)).pw_name
    except (KeyError, ValueError):
        return f"uid {uid}"


def audit(config: StageConfig, args: argparse.Namespace, outcome: object) -> None:
    """Append one JSON line to the root-owned audit log; a failure to log is reported, and
    does not undo what was done."""
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "caller": caller(),
        "command": args.command if args.group == "pun" else f"{args.group} {args.command}",
        "user": getattr(args, "user", None) or getattr(args, "users", None),
        "outcome": outcome,
    }
    if getattr(args, "argv", None):
        record["argv"] = args.argv
    try:
        os.makedirs(os.path.dirname(config.audit_log), mode=0o755, exist_ok=True)
        fd = os.open(
            config.audit_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600
        )
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
    except OSError as e:
        print(f"ondemand-stage: warning: cannot write {config.audit_log}: {e}", file=sys.stderr)


def run(args: argparse.Namespace) -> object:
    if os.geteuid() != 0:
        raise StageError("must run as root (through the documented sudo rule)")
    config = load_config(STAGE_CONFIG_PATH)
    if args.command not in AUDITED:
        return dispatch(args, config)
    try:
        result = dispatch(args, config)
    except StageError as e:
        audit(config, args, {"error": str(e)})
        raise
    audit(config, args, {"returncode": result["returncode"]} if args.command == "run" else result)
    return result


def run_as_user(args: argparse.Namespace, config: StageConfig) -> dict:
    """``user run``: the account, the program and the timeout are checked before stdin is
    read; the variables and input after. Nothing runs unless every check passes."""
    user = validate_user(args.user, config)
    argv = user_run.check_argv(args.argv, config)
    timeout = user_run.check_timeout(args.timeout, config)
    text = "" if sys.stdin is None else sys.stdin.read(user_run.MAX_REQUEST + 1)
    env, stdin = user_run.parse_request(text, config)
    return user_run.run(user, argv, env, stdin, timeout, config)


def dispatch(args: argparse.Namespace, config: StageConfig) -> object:
    if args.group == "user" and args.command == "check":
        user = validate_user(args.user, config)
        return {"user": user.name, "uid": user.uid, "home": user.home}
    if args.group == "user":
        return run_as_user(args, config)
    from . import pun  # here: nginx rendering (jinja2) costs 60 ms a session's commands skip

    if args.command == "start":
        return pun.start(args.user, read_env_from_stdin(), config)
    if args.command == "list":
        return pun.list_puns(config)
    if args.command == "clean":
        return pun.clean(config, args.idle_timeout, args.users)
    return {"stop": pun.stop, "status": pun.status, "show": pun.show}[args.command](
        args.user, config
    )


def main(argv: list[str] | None = None) -> int:
    try:
        args = make_parser().parse_args(argv)
        result = run(args)
    except StageError as e:
        print(f"ondemand-stage: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        print(f"ondemand-stage: {e}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
