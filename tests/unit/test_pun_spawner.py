"""PUNSpawner's side of the PUN on a Unix socket: the URL it returns, the proxy target JupyterHub
builds from its record, and state saved by a hub from before sockets (with a port)."""

from types import SimpleNamespace

from jupyterhub import orm

from ondemand_hub.spawners.pun import PUNSpawner, socket_url

SOCKET = "/run/ondemand-hub/odt-Alice/nginx.sock"


def spawner_with_record(**record) -> PUNSpawner:
    server = orm.Server(base_url="/user/odt-Alice/", cookie_name="", **record) if record else None
    return PUNSpawner(
        user=SimpleNamespace(name="odt-Alice"), orm_spawner=SimpleNamespace(name="", server=server)
    )


def test_the_url_is_the_percent_encoded_socket():
    assert socket_url(SOCKET) == "http+unix://%2Frun%2Fondemand-hub%2Fodt-Alice%2Fnginx.sock"


def test_the_proxy_target_is_the_socket_not_host_port_from_the_hubs_record():
    # what JupyterHub stores after start() returned the URL: lower-cased host, port 80
    spawner = spawner_with_record(proto="http+unix", ip=socket_url(SOCKET)[12:].lower(), port=80)
    spawner.load_state({"groups": [1001], "socket": SOCKET})  # as after a hub restart
    assert spawner.server.host == socket_url(SOCKET)  # no ":80", the path's case kept
    assert spawner.server.url == socket_url(SOCKET) + "/user/odt-Alice/"


async def test_state_of_a_hub_from_before_sockets_means_the_pun_is_gone():
    """A NAMED FAKE of ondemand-stage's answer (a PUN running on its socket): the case is the
    hub's saved state, which only an older hub could have written."""
    spawner = spawner_with_record(proto="http", ip="127.0.0.1", port=43210)
    spawner.load_state({"groups": [1001], "port": 43210})

    async def stage_answer(*args, stdin=None):
        return {"running": True, "socket": SOCKET, "groups": [1001]}

    spawner.run_stage = stage_answer
    assert spawner.server.host == "http://127.0.0.1:43210"  # no crash, left as it was
    assert await spawner.poll() == 0  # gone: the next visit starts a PUN on its socket
    spawner.load_state({"groups": [1001], "socket": SOCKET})
    assert await spawner.poll() is None
    assert spawner.get_state()["socket"] == SOCKET and "port" not in spawner.get_state()
