"""Interactive apps: app directories parsed with errors naming file and key, site overrides,
and server-side validation of launch values (types, ranges, unknown keys, injection attempts)."""

from pathlib import Path

import pytest

from ondemand_hub.scheduler.slurm import Partition
from ondemand_hub.site.apps import FormError, load_apps, validate_options

BUNDLED = Path(__file__).parents[2] / "apps"
PARTITIONS = [
    Partition("debug", True, True, "1:00:00", 1, 2, 2, ""),
    Partition("gpu", False, True, "2-00:00:00", 1, 8, 8, "gpu:a100:4"),
    Partition("compute", False, True, "1:00:00", 2, 2, 2, ""),
    Partition("down", False, False, "1:00:00", 1, 0, 2, ""),
]
DEFAULTS = {
    "bc_queue": "debug",
    "bc_account": "",
    "bc_num_hours": 1,
    "bc_num_nodes": 1,
    "bc_num_slots": 1,
    "bc_memory_gb": 4,
    "bc_num_gpus": 0,
    "modules": "",
    "jupyter_ui": "lab",
}
FORM = """
form: [bc_num_hours, color]
attributes:
  color:
    widget: select
    options: [red, blue]
"""


@pytest.fixture(scope="module")
def jupyter():
    apps, errors = load_apps([BUNDLED])
    assert errors == []
    return apps["jupyter"]


def write_app(root: Path, app_id: str, form: str = FORM, manifest: str = "title: T\n") -> Path:
    d = root / app_id
    d.mkdir(parents=True)
    (d / "manifest.yml").write_text(manifest)
    (d / "form.yml").write_text(form)
    (d / "script.sh.j2").write_text("#!/bin/bash\n")
    return d


def test_bundled_jupyter_app(jupyter):
    assert (jupyter.title, jupyter.icon, jupyter.category) == (
        "JupyterLab",
        "journal-code",
        "Interactive Apps",
    )
    assert [f.name for f in jupyter.fields] == list(DEFAULTS)


def test_omitted_fields_take_defaults_and_default_partition(jupyter):
    assert validate_options(jupyter, {}, PARTITIONS) == DEFAULTS


def test_form_strings_are_typed(jupyter):
    got = validate_options(
        jupyter,
        {
            "bc_queue": "gpu",
            "bc_account": "proj-42",
            "bc_num_hours": "12",
            "bc_num_nodes": "1",
            "bc_num_slots": 8,
            "bc_memory_gb": "64",
            "bc_num_gpus": "2",
            "modules": "python/3.11 cuda/12.2",
            "jupyter_ui": "tree",
        },
        PARTITIONS,
    )
    assert got == {
        "bc_queue": "gpu",
        "bc_account": "proj-42",
        "bc_num_hours": 12,
        "bc_num_nodes": 1,
        "bc_num_slots": 8,
        "bc_memory_gb": 64,
        "bc_num_gpus": 2,
        "modules": "python/3.11 cuda/12.2",
        "jupyter_ui": "tree",
    }


@pytest.mark.parametrize(
    "options, field, message",
    [
        ({"runtime": "999:00:00"}, "runtime", "unknown field 'runtime'"),
        ({"prologue": "echo INJECTED"}, "prologue", "unknown field 'prologue'"),
        ({"req_runtime": "99:00:00"}, "req_runtime", "unknown field 'req_runtime'"),
        ({"options": "--qos=high"}, "options", "unknown field 'options'"),
        ({"app": "jupyter"}, "app", "unknown field 'app'"),
        (
            {"bc_num_hours": "1\n#SBATCH --time=999"},
            "bc_num_hours",
            "Hours must be a whole number from 1 to 48",
        ),
        ({"bc_num_hours": 49}, "bc_num_hours", "Hours must be a whole number from 1 to 48"),
        ({"bc_num_hours": 0}, "bc_num_hours", "Hours must be a whole number from 1 to 48"),
        ({"bc_num_hours": True}, "bc_num_hours", "Hours must be a whole number from 1 to 48"),
        ({"bc_num_hours": 1.5}, "bc_num_hours", "Hours must be a whole number from 1 to 48"),
        ({"bc_num_hours": " 2"}, "bc_num_hours", "Hours must be a whole number from 1 to 48"),
        ({"bc_num_slots": 33}, "bc_num_slots", "Cores must be a whole number from 1 to 32"),
        (
            {"bc_memory_gb": "4G"},
            "bc_memory_gb",
            "Memory (GB) must be a whole number from 1 to 256",
        ),
        (
            {"bc_queue": "debug --qos=high"},
            "bc_queue",
            "Partition must be one of: debug, gpu, compute",
        ),
        ({"bc_queue": "down"}, "bc_queue", "Partition must be one of: debug, gpu, compute"),
        ({"bc_queue": ["debug"]}, "bc_queue", "Partition must be one of: debug, gpu, compute"),
        (
            {"bc_num_nodes": 2},
            "bc_num_nodes",
            "Nodes must be at most 1: the partition 'debug' has 1 node(s)",
        ),
        (
            {"bc_num_nodes": "3", "bc_queue": "compute"},
            "bc_num_nodes",
            "Nodes must be at most 2: the partition 'compute' has 2 node(s)",
        ),
        ({"bc_num_nodes": 0}, "bc_num_nodes", "Nodes must be a whole number from 1 to 16"),
        ({"bc_num_nodes": "2 "}, "bc_num_nodes", "Nodes must be a whole number from 1 to 16"),
        ({"bc_num_nodes": 17}, "bc_num_nodes", "Nodes must be a whole number from 1 to 16"),
        ({"jupyter_ui": "lab; id"}, "jupyter_ui", "Interface must be one of: lab, tree"),
        (
            {"modules": "python $(id)"},
            "modules",
            "Modules 'python $(id)' is not allowed: it must match "
            "[A-Za-z0-9._/+-]{1,64}( [A-Za-z0-9._/+-]{1,64}){0,15}",
        ),
        (
            {"modules": "python;id"},
            "modules",
            "Modules 'python;id' is not allowed: it must match "
            "[A-Za-z0-9._/+-]{1,64}( [A-Za-z0-9._/+-]{1,64}){0,15}",
        ),
        (
            {"modules": "python\nid"},
            "modules",
            "Modules must be one line of at most 256 characters",
        ),
        (
            {"bc_account": "proj\0x"},
            "bc_account",
            "Account must be one line of at most 256 characters",
        ),
        (
            {"bc_account": "--qos=high"},
            "bc_account",
            "Account '--qos=high' is not allowed: it must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
        ),
        ({"bc_account": 42}, "bc_account", "Account must be one line of at most 256 characters"),
        ({"bc_num_gpus": 1}, "bc_num_gpus", "The partition 'debug' has no GPUs: set GPUs to 0"),
        (
            {"bc_num_gpus": 5, "bc_queue": "gpu"},
            "bc_num_gpus",
            "GPUs must be a whole number from 0 to 4",
        ),
    ],
)
def test_refused_values_name_the_field(jupyter, options, field, message):
    with pytest.raises(FormError) as e:
        validate_options(jupyter, options, PARTITIONS)
    assert (e.value.field, e.value.message, str(e.value)) == (field, message, message)


def test_no_partitions_means_no_partition_and_no_gpus(jupyter):
    assert validate_options(jupyter, {}, [])["bc_queue"] is None
    with pytest.raises(FormError, match="Partition must be one of: none available"):
        validate_options(jupyter, {"bc_queue": "debug"}, [])
    with pytest.raises(FormError, match="this cluster has no GPUs"):
        validate_options(jupyter, {"bc_num_gpus": 1}, [])
    with pytest.raises(FormError, match="Nodes must be 1: this cluster runs a session on one"):
        validate_options(jupyter, {"bc_num_nodes": 2}, [])


def test_as_many_nodes_as_the_partition_has(jupyter):
    values = validate_options(jupyter, {"bc_queue": "compute", "bc_num_nodes": "2"}, PARTITIONS)
    assert (values["bc_queue"], values["bc_num_nodes"]) == ("compute", 2)


def test_custom_widgets(tmp_path):
    form = """
form: [n, flag, fixed, name, color]
attributes:
  n: {widget: number_field, min: 2, max: 10, step: 2, label: Tasks}
  flag: {widget: check_box, label: Mail me}
  fixed: {widget: hidden_field, value: "v1"}
  name: {widget: text_field, pattern: "[a-z]+", required: true, value: abc, label: Name}
  color: {widget: select, options: [red, ["Deep blue", 7]], value: 7}
"""
    app = load_apps([write_app(tmp_path, "a", form).parent])[0]["a"]
    assert validate_options(app, {}, []) == {
        "n": 2,
        "flag": False,
        "fixed": "v1",
        "name": "abc",
        "color": 7,
    }
    assert (
        validate_options(app, {"n": "6", "flag": "1", "fixed": "v1", "color": "7"}, [])["color"]
        == 7
    )
    for options, message in [
        ({"n": 3}, "Tasks must be a whole number from 2 to 10 in steps of 2"),
        ({"flag": "yes"}, "Mail me must be checked or not (true or false)"),
        ({"flag": 1}, "Mail me must be checked or not (true or false)"),
        ({"fixed": "v2"}, "Fixed cannot be changed"),
        ({"name": ""}, "Name is required"),
        ({"color": "Deep blue"}, "Color must be one of: red, 7"),
        ({"color": True}, "Color must be one of: red, 7"),
    ]:
        with pytest.raises(FormError) as e:
            validate_options(app, options, [])
        assert e.value.message == message


@pytest.mark.parametrize(
    "file, text, message",
    [
        ("manifest.yml", "title: T\nname: x\n", "manifest.yml: unknown key 'name'"),
        ("manifest.yml", "description: d\n", "manifest.yml: key 'title': expected a non-empty"),
        ("manifest.yml", "title: T\nicon: fa://x\n", "key 'icon': expected a Bootstrap Icons"),
        ("manifest.yml", "title: [", "manifest.yml: invalid YAML at line 1"),
        ("form.yml", "attributes: {}\n", "form.yml: expected a mapping with key 'form'"),
        ("form.yml", "form: [x]\n", "form.yml: key 'form': 'x' has no entry under 'attributes'"),
        ("form.yml", "form: []\nattributes: {x: {}}\n", "key 'attributes.x': not listed"),
        (
            "form.yml",
            "form: [x]\nattributes: {x: {widget: text_field}}\n",
            "form.yml: key 'attributes.x.pattern': a text_field needs a pattern",
        ),
        (
            "form.yml",
            "form: [x]\nattributes: {x: {widget: text_field, pattern: '('}}\n",
            "key 'attributes.x.pattern': invalid regular expression",
        ),
        (
            "form.yml",
            "form: [x]\nattributes: {x: {widget: slider}}\n",
            "form.yml: key 'attributes.x.widget': expected number_field or select",
        ),
        (
            "form.yml",
            "form: [bc_num_hours]\nattributes: {bc_num_hours: {widget: text_field}}\n",
            "key 'attributes.bc_num_hours.widget': expected number_field",
        ),
        (
            "form.yml",
            "form: [bc_num_hours]\nattributes: {bc_num_hours: {max: '48'}}\n",
            "key 'attributes.bc_num_hours.max': expected a whole number, got '48'",
        ),
        (
            "form.yml",
            "form: [bc_num_hours]\nattributes: {bc_num_hours: {value: 99}}\n",
            "key 'attributes.bc_num_hours.value': Hours must be a whole number from 1 to 48",
        ),
        (
            "form.yml",
            "form: [bc_num_hours]\nattributes: {bc_num_hours: {walltime: 2}}\n",
            "form.yml: unknown key 'attributes.bc_num_hours.walltime'",
        ),
        (
            "form.yml",
            "form: [x]\nattributes: {x: {widget: select, options: [a], value: b}}\n",
            "key 'attributes.x.value': X must be one of: a",
        ),
        (
            "form.yml",
            "form: [session_dir]\nattributes: {session_dir: {widget: hidden_field, value: x}}\n",
            "key 'attributes.session_dir': not a valid field name",
        ),
    ],
)
def test_broken_app_files_name_file_and_key(tmp_path, file, text, message):
    d = write_app(tmp_path, "broken")
    (d / file).write_text(text)
    apps, errors = load_apps([tmp_path])
    assert apps == {}
    assert len(errors) == 1 and errors[0].startswith(str(d / file)), errors
    assert message in errors[0]


def test_missing_file_and_bad_directory_name(tmp_path):
    (write_app(tmp_path, "noscript") / "script.sh.j2").unlink()
    write_app(tmp_path, "Bad Name")
    write_app(tmp_path, ".hidden")
    apps, errors = load_apps([tmp_path, tmp_path / "does-not-exist"])
    assert apps == {}
    assert errors == [
        f"{tmp_path / 'Bad Name'}: the directory name must be an app id: lowercase letters, "
        "digits, - and _, at most 32 characters",
        f"{tmp_path / 'noscript' / 'script.sh.j2'}: missing: every app needs this file",
    ]


def test_site_app_overrides_bundled_by_id(tmp_path):
    site = tmp_path / "site"
    write_app(site, "jupyter", manifest="title: Site Jupyter\n")
    write_app(site, "rstudio", manifest="title: RStudio\n")
    apps, errors = load_apps([BUNDLED, site])
    assert errors == []
    assert list(apps) == ["desktop", "jupyter", "rstudio", "vscode"]
    assert apps["jupyter"].title == "Site Jupyter"
    assert apps["jupyter"].path == site / "jupyter"
    assert [f.name for f in apps["jupyter"].fields] == ["bc_num_hours", "color"]


def test_broken_site_override_removes_the_app_rather_than_loosening_it(tmp_path):
    form = "form: [bc_num_hours]\nattributes: {bc_num_hours: {max: x}}\n"
    write_app(tmp_path, "jupyter", form=form)
    apps, errors = load_apps([BUNDLED, tmp_path])
    assert "jupyter" not in apps
    assert errors == [
        f"{tmp_path / 'jupyter' / 'form.yml'}: key 'attributes.bc_num_hours.max': "
        "expected a whole number, got 'x'"
    ]
