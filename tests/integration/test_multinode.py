"""A multi-node session: Mona launches JupyterLab with ``bc_num_nodes`` as large as the
``compute`` partition of the cluster scripts/slurm.sh built. The job gets every node, the proxy
routes to the job's batch host (where the server runs, not the first word of the node list), and
the app is told its nodes (the file ``nodes`` of the session folder, read through the session's
own server, and ``$ONDEMAND_NODES`` in its environment). More nodes than the partition has is a
400 naming the field, and nothing is submitted. The node names come from what the script built
(/run/slurm/cluster.json) and from sinfo, never from this machine."""

import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from test_cross_host import job_processes, proxy_routes

from harness import api_token, ensure_account, run, server_model, slurm_cluster, slurm_hub, wait_for

MONA, PASSWORD = "odt-mona", "Mona-pw-10!"
SESSION = "xmulti"


@pytest.fixture(scope="module")
def compute() -> tuple[str, list[str]]:
    """The compute partition and its nodes, as Slurm lists them (the script's node names)."""
    built = slurm_cluster()
    nodes = run("sinfo", "-h", "-N", "-p", built["partition"], "-o", "%N").stdout.split()
    assert sorted(nodes) == sorted(n["name"] for n in built["nodes"]) and len(nodes) >= 2
    return built["partition"], sorted(nodes)


@pytest.fixture(scope="module")
def mona_hub(compute):
    ensure_account(MONA, PASSWORD)
    shutil.rmtree(f"/home/{MONA}/ondemand/sessions/{SESSION}", ignore_errors=True)
    try:
        with slurm_hub("multinode") as hub:
            s, reply = hub.login(MONA, PASSWORD)
            assert reply.status_code == 302, hub.log_tail()
            yield hub, s, api_token(hub, s, MONA, "test_multinode")
    finally:
        run("scancel", "-u", MONA, check=False)


def mona_jobs(name: str) -> list[list[str]]:
    """Mona's queued or running jobs of session ``name``: [id, state, node list, batch host]."""
    out = run(
        "squeue", "-h", "-u", MONA, "-n", f"ondemand-jupyter-{name}",
        "-t", "PD,CF,R,CG", "-o", "%i|%T|%N|%B",
    ).stdout  # fmt: skip
    return [line.split("|") for line in out.split()]


def test_more_nodes_than_the_partition_has_is_a_400_and_submits_nothing(mona_hub, compute):
    hub, _s, token = mona_hub
    partition, nodes = compute
    options = {"app": "jupyter", "bc_queue": partition, "bc_num_nodes": len(nodes) + 1}
    r = requests.post(
        f"{hub.url}/hub/api/users/{MONA}/servers/xtoomany",
        json={"user_options": options},
        headers=token,
        timeout=30,
    )
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert "bc_num_nodes" in message and f"at most {len(nodes)}" in message, message
    assert mona_jobs("xtoomany") == []
    assert server_model(hub, token, MONA, "xtoomany") == {}


def test_a_two_node_session_gets_its_nodes_and_is_reached_on_its_batch_host(mona_hub, compute):
    hub, s, token = mona_hub
    partition, nodes = compute
    options = {"app": "jupyter", "bc_queue": partition, "bc_num_nodes": len(nodes)}
    r = requests.post(
        f"{hub.url}/hub/api/users/{MONA}/servers/{SESSION}",
        json={"user_options": options},
        headers=token,
        timeout=30,
    )
    assert r.status_code in (201, 202), r.text
    wait_for(lambda: server_model(hub, token, MONA, SESSION).get("ready"), 120, "ready", hub)
    [(job_id, state, node_list, batch_host)] = mona_jobs(SESSION)
    assert state == "RUNNING" and batch_host in nodes
    hostnames = run("scontrol", "show", "hostnames", node_list).stdout.split()
    assert sorted(hostnames) == nodes  # the job holds every node of the partition

    # the proxy routes to the batch host, and Mona reaches her server through it
    target = urlparse(proxy_routes(hub)[f"/user/{MONA}/{SESSION}"]["target"])
    assert target.hostname == batch_host
    base = f"{hub.url}/user/{MONA}/{SESSION}"
    r = s.get(f"{base}/lab", timeout=60)
    assert r.status_code == 200 and r.url == f"{base}/lab", (r.status_code, r.url)

    # the app knows its nodes: the session folder's file, read through the session's server
    path = f"ondemand/sessions/{SESSION}/nodes"
    r = requests.get(f"{base}/api/contents/{path}", headers=token, timeout=30)
    assert r.status_code == 200, r.text
    assert sorted(r.json()["content"].split()) == nodes
    assert Path(f"/home/{MONA}/{path}").read_text().split() == hostnames
    # ... and the server's environment
    environs = [Path(f"/proc/{p}/environ").read_bytes().split(b"\0") for p in job_processes(job_id)]
    told = {
        v.split(b"=", 1)[1] for env in environs for v in env if v.startswith(b"ONDEMAND_NODES=")
    }
    assert told and {sorted(t.decode().split()) == nodes for t in told} == {True}, told

    r = requests.delete(
        f"{hub.url}/hub/api/users/{MONA}/servers/{SESSION}", headers=token, timeout=60
    )
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: not job_processes(job_id), 30, f"job {job_id}'s processes gone", hub)
