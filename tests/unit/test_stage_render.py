"""The rendered nginx config of a PUN: golden file, `nginx -t`, refusal of unsafe values,
and the caller-supplied values `pun start` accepts."""

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from ondemand_hub.stage.config import StageConfig
from ondemand_hub.stage.errors import PunError, UsageError
from ondemand_hub.stage.pun import check_env
from ondemand_hub.stage.render import make_pun_paths, make_pun_prefix, render_pun_config

GOLDEN = Path(__file__).parent / "golden" / "pun.conf"
CONFIG = StageConfig()
STATIC = {
    "static/ondemand_dashboard": "/opt/ondemand-hub/venv/lib/ondemand_dashboard/static",
    "static/vendor/bootstrap": "/opt/ondemand-hub/share/node_modules/bootstrap",
}


def render(config=CONFIG, user="alice", static=STATIC):
    return render_pun_config(
        user=user,
        uid=1001,
        prefix=make_pun_prefix(user, config),
        paths=make_pun_paths(user, config),
        config=config,
        static_dirs=static,
    )


def test_rendered_config_matches_golden_file():
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(render())
    assert render() == GOLDEN.read_text()


def test_paths_and_prefix():
    paths = make_pun_paths("alice", CONFIG)
    assert paths.app_socket == "/run/ondemand-hub/alice/jupyter.sock"
    assert paths.nginx_socket == "/run/ondemand-hub/alice/nginx.sock"
    assert paths.config_file == "/var/lib/ondemand-hub/stage/config/alice.conf"
    assert paths.state_file == "/var/lib/ondemand-hub/stage/state/alice.json"
    assert make_pun_prefix("alice", replace(CONFIG, base_url="/portal/")) == "/portal/user/alice/"


def test_rendered_config_passes_nginx_t(tmp_path):
    roots = {
        k: str(tmp_path / k)
        for k in ("config_root", "state_root", "run_root", "log_root", "tmp_root")
    }
    config = replace(CONFIG, **roots)
    paths = make_pun_paths("alice", config)
    for d in (paths.run_dir, paths.log_dir, paths.tmp_dir, config.config_root):
        os.makedirs(d)
    static = {"static/vendor/bootstrap": str(tmp_path)}
    Path(paths.config_file).write_text(render(config, static=static))
    done = subprocess.run(
        ["/usr/sbin/nginx", "-t", "-c", paths.config_file, "-e", f"{paths.log_dir}/e.log"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr


@pytest.mark.parametrize("bad", ["/x; evil", "/x}", "/x y", "/x\n", "/x'"])
def test_unsafe_directory_never_reaches_the_config(bad):
    with pytest.raises(PunError, match="refusing to write directory"):
        render(static={"static/x": bad})


@pytest.mark.parametrize("key", ["client_max_body_size", "max_request_body_size"])
@pytest.mark.parametrize("bad", ["0", "0m", "", "10 g", "1g; include /etc/shadow", "-1", "1t"])
def test_body_size_must_be_finite_and_plain(key, bad):
    with pytest.raises(PunError, match=f"{key} must be a finite nginx size"):
        render(replace(CONFIG, **{key: bad}))


def test_nginx_listens_on_its_unix_socket_only():
    conf = render()
    listens = [line.split() for line in conf.splitlines() if line.strip().startswith("listen")]
    assert listens == [["listen", "unix:/run/ondemand-hub/alice/nginx.sock;"]]


def test_every_body_carrying_upload_request_is_checked_before_its_body_is_read():
    conf = render()
    for name in ("@pun_upload", "@pun_owner_only"):
        block = conf.split(f"location {name} {{", 1)[1].split("}", 1)[0]
        assert "auth_request /__pun_auth;" in block
    auth = conf.split("location = /__pun_auth {", 1)[1].split("}", 1)[0]
    assert "proxy_pass_request_body off;" in auth and "internal;" in auth
    assert "proxy_pass http://pun_app/user/alice/api/me;" in auth


def test_env_accepts_only_jupyterhub_variables():
    env = {"JUPYTERHUB_API_TOKEN": "abc", "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/"}
    assert check_env(env) == env


@pytest.mark.parametrize(
    "env, message",
    [
        ({"LD_PRELOAD": "/tmp/x.so"}, "refusing variable 'LD_PRELOAD'"),
        ({"PATH": "/tmp"}, "refusing variable 'PATH'"),
        ({"JUPYTERHUB_X": "a\nb"}, "control characters"),
        ({"JUPYTERHUB_X": 1}, "expected a string"),
        ({"JUPYTERHUB_X": "a" * 9000}, "expected a string of at most"),
        (["JUPYTERHUB_X"], "env must be a JSON object"),
    ],
)
def test_env_refuses_everything_else(env, message):
    with pytest.raises(UsageError, match=message):
        check_env(env)
