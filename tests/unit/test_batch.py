"""The batch script and sbatch argv of a session: golden files for the bundled JupyterLab app,
and refusal of anything that could add a line to the script or an option to sbatch."""

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from ondemand_hub.scheduler.batch import (
    BatchScriptError,
    SessionContext,
    make_batch_script,
    make_sbatch_argv,
)
from ondemand_hub.scheduler.slurm import Partition, SlurmCommands
from ondemand_hub.site.apps import App, load_apps, validate_options

GOLDEN = Path(__file__).parent / "golden" / "batch"
BUNDLED = Path(__file__).parents[2] / "apps"
PARTITIONS = [
    Partition("debug", True, True, "1:00:00", 1, 2, 2, ""),
    Partition("gpu", False, True, "2-00:00:00", 1, 8, 8, "gpu:a100:4"),
    Partition("compute", False, True, "1:00:00", 2, 2, 2, ""),
]
CONTEXT = SessionContext(
    app_id="jupyter",
    session_id="jupyter-3",
    session_dir="/home/alice/ondemand/sessions/jupyter-3",
    hub_api_url="http://10.0.0.1:8081/hub/api",
    hub_prefix="/user/alice/jupyter-3/",
    jupyter_cmd=("/opt/ondemand-hub/venv/bin/jupyterhub-singleuser", "--ServerApp.ip=0.0.0.0"),
)
CASES = {
    "defaults": {},
    "full": {
        "bc_queue": "gpu",
        "bc_account": "proj-42",
        "bc_num_hours": "12",
        "bc_num_slots": 8,
        "bc_memory_gb": 64,
        "bc_num_gpus": 2,
        "modules": "python/3.11 cuda/12.2",
        "jupyter_ui": "tree",
    },
    "multinode": {"bc_queue": "compute", "bc_num_nodes": "2"},
}


@pytest.fixture(scope="module")
def jupyter():
    return load_apps([BUNDLED])[0]["jupyter"]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("case", sorted(CASES))
def test_jupyter_script_matches_golden_file(jupyter, case):
    values = validate_options(jupyter, CASES[case], PARTITIONS)
    check_golden(f"jupyter-{case}.sh", make_batch_script(jupyter, values, CONTEXT))


@pytest.mark.parametrize("case", sorted(CASES))
def test_jupyter_sbatch_argv_matches_golden_file(jupyter, case):
    values = validate_options(jupyter, CASES[case], PARTITIONS)
    argv = make_sbatch_argv(SlurmCommands(bin_dir="/usr/bin", cluster="owens"), values, CONTEXT)
    check_golden(f"jupyter-{case}.argv.json", json.dumps(argv, indent=2) + "\n")


def test_argv_without_partitions_leaves_the_partition_to_slurm(jupyter):
    values = validate_options(jupyter, {}, [])
    assert make_sbatch_argv(SlurmCommands(), values, CONTEXT) == [
        "sbatch",
        "--parsable",
        "--job-name=ondemand-jupyter-jupyter-3",
        "--time=01:00:00",
        "--nodes=1",
        "--cpus-per-task=1",
        "--mem=4G",
        "--chdir=/home/alice/ondemand/sessions/jupyter-3",
        "--output=/home/alice/ondemand/sessions/jupyter-3/output.log",
        "--export=NONE",
    ]


@pytest.mark.parametrize(
    "values",
    [
        {"bc_queue": "debug --qos=high"},
        {"bc_queue": "--qos=high"},
        {"bc_account": "a\nb"},
        {"bc_num_slots": True},
    ],
)
def test_argv_refuses_values_that_were_not_validated(values):
    with pytest.raises(BatchScriptError, match="refusing"):
        make_sbatch_argv(SlurmCommands(), values, CONTEXT)


def app(script: str) -> App:
    return App("t", "T", "", "window", "Apps", (), script)


def test_printing_a_newline_or_nul_is_refused_even_when_quoted():
    with pytest.raises(BatchScriptError, match="newline or NUL"):
        make_batch_script(app("echo {{ x | shquote }}\n"), {"x": "1\n#SBATCH --time=999"}, CONTEXT)
    with pytest.raises(BatchScriptError, match="newline or NUL"):
        make_batch_script(app("echo {{ x }}\n"), {"x": "a\0b"}, CONTEXT)


def test_shquote_keeps_shell_syntax_inert():
    script = make_batch_script(app("echo {{ x | shquote }}"), {"x": "$(id); rm -rf ~"}, CONTEXT)
    assert script == "echo '$(id); rm -rf ~'"


def test_undefined_names_and_unsafe_attributes_are_errors():
    with pytest.raises(BatchScriptError, match="t: script.sh.j2: 'nope' is undefined"):
        make_batch_script(app("{{ nope }}"), {}, CONTEXT)
    with pytest.raises(BatchScriptError, match="t: script.sh.j2: .*unsafe"):
        make_batch_script(app("{{ x.__class__.__mro__ }}"), {"x": "s"}, CONTEXT)
    with pytest.raises(BatchScriptError, match="None"):
        make_batch_script(app("{{ x }}"), {"x": None}, CONTEXT)


@pytest.mark.parametrize(
    "change",
    [
        {"session_id": "a b"},
        {"app_id": "../x"},
        {"session_dir": "relative"},
        {"session_dir": "/home/alice/%u"},
        {"session_dir": "/home/alice/../bob"},
        {"hub_prefix": "/user/\n"},
        {"jupyter_cmd": ()},
    ],
)
def test_session_context_is_checked(change):
    with pytest.raises(BatchScriptError):
        replace(CONTEXT, **change)


@pytest.mark.parametrize("values", [{"bc_num_hours": "1\n#SBATCH"}, {"bc_num_gpus": 1.5}])
def test_argv_refuses_unvalidated_numbers(values):
    with pytest.raises(BatchScriptError, match="expected a validated whole number"):
        make_sbatch_argv(SlurmCommands(), values, CONTEXT)
