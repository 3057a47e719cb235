"""clusters.d: OOD v2 cluster files parsed into validated objects, with errors that name the
file and the key."""

from pathlib import Path

import pytest

from ondemand_hub.site.clusters import (
    LOCAL_CLUSTER,
    Cluster,
    ClusterError,
    load_clusters,
    parse_cluster,
)

OWENS = """
v2:
  metadata:
    title: "Owens"
  login:
    host: "owens.example.edu"
  job:
    adapter: "slurm"
    cluster: "owens"
    bin: "/usr/bin"
    conf: "/etc/slurm/slurm.conf"
"""


def test_an_ood_v2_file_is_read_as_is():
    assert parse_cluster(Path("/etc/ondemand-hub/clusters.d/owens.yml"), OWENS) == Cluster(
        id="owens",
        title="Owens",
        adapter="slurm",
        login_host="owens.example.edu",
        slurm_cluster="owens",
        bin_dir="/usr/bin",
        conf="/etc/slurm/slurm.conf",
    )


def test_minimal_local_cluster_takes_its_title_from_the_file_name():
    assert parse_cluster(Path("laptop.yml"), "v2:\n  job:\n    adapter: local\n") == Cluster(
        id="laptop", title="laptop", adapter="local"
    )


@pytest.mark.parametrize(
    "name, text, message",
    [
        (
            "a.yml",
            "v2:\n  job:\n    adapter: pbs\n",
            "key 'v2.job.adapter': expected one of slurm, local, got 'pbs'",
        ),
        (
            "a.yml",
            "v2:\n  job:\n    adapter: slurm\n    bin: usr/bin\n",
            "key 'v2.job.bin': expected an absolute path",
        ),
        (
            "a.yml",
            "v2:\n  job:\n    adapter: slurm\n    queue: x\n",
            "unknown key 'v2.job.queue': expected only adapter, cluster, bin, conf",
        ),
        (
            "a.yml",
            "v2:\n  batch_connect: {}\n  job: {adapter: local}\n",
            "unknown key 'v2.batch_connect'",
        ),
        ("a.yml", "v1:\n  job: {}\n", "expected a mapping with key 'v2'"),
        ("a.yml", "v2:\n  job: [1]\n", "key 'v2.job': expected a mapping"),
        (
            "a.yml",
            "v2:\n  job:\n    adapter: slurm\n    cluster: 'x;rm -rf'\n",
            "key 'v2.job.cluster': 'x;rm -rf' is not a valid value",
        ),
        (
            "a.yml",
            "v2:\n  login:\n    host: '-oProxyCommand=x'\n  job: {adapter: local}\n",
            "key 'v2.login.host'",
        ),
        ("a.yml", "v2: [unclosed\n", "invalid YAML at line"),
        ("Bad Name.yml", OWENS, "the file name must be a cluster id"),
    ],
)
def test_bad_files_say_which_key_and_what_was_expected(name, text, message):
    with pytest.raises(ClusterError) as e:
        parse_cluster(Path(name), text)
    assert str(e.value).startswith(f"{name}: ")
    assert message in str(e.value)


def test_directory_loader_keeps_good_files_and_reports_bad_ones(tmp_path):
    (tmp_path / "owens.yml").write_text(OWENS)
    (tmp_path / "broken.yml").write_text("v2:\n  job:\n    adapter: nope\n")
    (tmp_path / ".owens.yml.swp").write_text("junk")
    clusters, errors = load_clusters(tmp_path)
    assert [c.id for c in clusters] == ["owens"]
    assert len(errors) == 1 and errors[0].startswith(f"{tmp_path}/broken.yml: key 'v2.job.adapter'")


def test_no_cluster_files_means_the_builtin_local_cluster(tmp_path):
    assert load_clusters(tmp_path / "missing") == ([LOCAL_CLUSTER], [])
    assert load_clusters(tmp_path) == ([LOCAL_CLUSTER], [])


def test_only_broken_files_do_not_fall_back_to_local(tmp_path):
    (tmp_path / "broken.yml").write_text("v2: {}\n")
    clusters, errors = load_clusters(tmp_path)
    assert clusters == [] and len(errors) == 1
