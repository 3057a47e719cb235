"""The bundled Desktop and VS Code apps: their forms load, their scripts render to the golden
files, and what a user types cannot leave the values it was validated as. (JupyterLab's golden
files are in test_batch.py.) The thumbnail writer of the Desktop app is tested here too, without
an X display (the integration test runs it on a real TigerVNC desktop)."""

import os
import subprocess
import time
from pathlib import Path

import pytest
from test_batch import check_golden  # the golden files of every bundled app, one way

from ondemand_hub import desktop
from ondemand_hub.scheduler.batch import SessionContext, make_batch_script, make_sbatch_argv
from ondemand_hub.scheduler.slurm import Partition, SlurmCommands
from ondemand_hub.site.apps import FormError, load_apps, validate_options

BUNDLED = Path(__file__).parents[2] / "apps"
PARTITIONS = [Partition("debug", True, True, "1:00:00", 1, 2, 2, "")]
PYTHON = "/opt/ondemand-hub/venv/bin/python"


def context(app_id: str) -> SessionContext:
    return SessionContext(
        app_id=app_id,
        session_id=f"{app_id}-2",
        session_dir=f"/home/alice/ondemand/sessions/{app_id}-2",
        hub_api_url="http://10.0.0.1:8081/hub/api",
        hub_prefix=f"/user/alice/{app_id}-2/",
        jupyter_cmd=(
            PYTHON,
            "-c",
            "launcher",
            "/opt/ondemand-hub/venv/bin/ondemand-session-server",
        ),
    )


CASES = {
    ("desktop", "defaults"): {},
    ("desktop", "full"): {"bc_num_hours": 8, "bc_num_slots": 4, "resolution": "1920x1080"},
    ("vscode", "defaults"): {},
    ("vscode", "folder"): {"working_dir": "projects/model-2.1", "bc_num_gpus": 0},
}


@pytest.fixture(scope="module")
def apps():
    apps, errors = load_apps([BUNDLED])
    assert errors == []
    return apps


@pytest.mark.parametrize("app_id,case", sorted(CASES))
def test_script_matches_golden_file_and_is_valid_bash(apps, app_id, case, tmp_path):
    values = validate_options(apps[app_id], CASES[app_id, case], PARTITIONS)
    script = make_batch_script(apps[app_id], values, context(app_id))
    check_golden(f"{app_id}-{case}.sh", script)
    (tmp_path / "s.sh").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "s.sh")], check=True)
    argv = make_sbatch_argv(SlurmCommands(), values, context(app_id))
    assert f"--job-name=ondemand-{app_id}-{app_id}-2" in argv


def test_bundled_catalogue_has_the_three_apps(apps):
    assert {"jupyter", "desktop", "vscode"} <= set(apps)
    assert apps["desktop"].title == "Desktop" and apps["vscode"].title == "VS Code"


@pytest.mark.parametrize(
    "value",
    ["800x600", "1280x800; id", "1280x800\n", "$(id)", ""],
)
def test_desktop_resolution_is_one_of_the_offered_sizes(apps, value):
    with pytest.raises(FormError) as e:
        validate_options(apps["desktop"], {"resolution": value}, PARTITIONS)
    assert e.value.field == "resolution"


@pytest.mark.parametrize(
    "value",
    ["..", "../bob", "a/../../etc", ".", "a/./b", "/etc", "a b", "a;id", "$(id)", "a\nb", "a//b"],
)
def test_vscode_folder_refuses_escapes_and_shell_syntax(apps, value):
    with pytest.raises(FormError) as e:
        validate_options(apps["vscode"], {"working_dir": value}, PARTITIONS)
    assert e.value.field == "working_dir"


@pytest.mark.parametrize("value", ["", "projects", "a/b.c/d_e-f+g", "..hidden", ".config/x"])
def test_vscode_folder_accepts_plain_paths_under_home(apps, value):
    values = validate_options(apps["vscode"], {"working_dir": value}, PARTITIONS)
    assert values["working_dir"] == value


def test_thumbnails_give_up_when_the_display_never_answers(tmp_path):
    target = tmp_path / "thumbnail.png"
    code = desktop.thumbnails(str(target), ":99", interval=0, tries=3)
    assert code == 1 and not target.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_thumbnails_command_needs_a_display(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(SystemExit):
        desktop.main(["thumbnails", "/tmp/x.png"])
    assert "no display" in capsys.readouterr().err


def test_reap_ends_every_process_of_a_desktop_daemons_too():
    """A detached daemon (setsid, its parent gone: what Xfce's agents do) carrying the
    desktop's marker is found and ended; a process with another desktop's marker is not."""
    import uuid

    mine, other = str(uuid.uuid4()), str(uuid.uuid4())

    def detached(desktop_id: str) -> None:
        env = {**os.environ, desktop.MARKER: desktop_id}
        subprocess.run(["sh", "-c", "setsid sleep 60 >/dev/null 2>&1 &"], env=env, check=True)

    detached(mine)
    detached(mine)
    detached(other)
    deadline = time.monotonic() + 5
    while len(desktop.marked_processes(mine)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(desktop.marked_processes(mine)) == 2
    try:
        assert desktop.reap(mine) == 2
        assert desktop.marked_processes(mine) == []
        assert len(desktop.marked_processes(other)) == 1
    finally:
        desktop.reap(other)
    with pytest.raises(ValueError):
        desktop.reap("")
