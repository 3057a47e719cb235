"""What a single-user server (PUN or session) imports: the hub's database layer (SQLAlchemy's
ORM, alembic) only when something uses it. Each check runs in a fresh interpreter."""

import subprocess
import sys
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[2])

PRELUDE = f"""
import sys
sys.path.insert(0, {REPO!r})
from ondemand_hub.pun_server import defer_hub_only_imports, skip_slow_optional_imports
skip_slow_optional_imports()
defer_hub_only_imports()
"""


def python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_singleuser_starts_without_the_hub_database_layer():
    out = python(
        "import jupyterhub.singleuser\n"
        "from jupyterhub.singleuser import extension\n"
        "from jupyterhub.log import log_request\n"
        "heavy = [m for m in sys.modules if m.startswith(('alembic', 'sqlalchemy.orm',"
        " 'jupyterhub.handlers.base'))]\n"
        "print(heavy)\n"
    )
    assert out.strip() == "[]"


def test_the_deferred_modules_load_for_real_when_used():
    out = python(
        "import jupyterhub.singleuser\n"
        "import jupyterhub.orm\n"
        "print(jupyterhub.orm.User.__module__)\n"
        "import jupyterhub.handlers\n"
        "print(len(jupyterhub.handlers.default_handlers) > 10)\n"
        "from jupyterhub.handlers.pages import HomeHandler\n"
        "print(HomeHandler.__module__)\n"
    )
    assert out.split() == ["jupyterhub.orm", "True", "jupyterhub.handlers.pages"]


def test_a_session_imports_jupyterlab_without_running_yarn():
    """The private hook skip_yarn_config_probe() replaces must still exist (a JupyterLab
    upgrade that renames it fails here), and labapp then starts no node process."""
    out = python(
        "from jupyterlab import commands\n"
        "assert callable(commands._yarn_config)\n"
        "from ondemand_hub.pun_server import skip_yarn_config_probe\n"
        "skip_yarn_config_probe()\n"
        "import subprocess\n"
        "ran = []\n"
        "real = subprocess.Popen.__init__\n"
        "def spy(self, args, *a, **k):\n"
        "    ran.append(args)\n"
        "    return real(self, args, *a, **k)\n"
        "subprocess.Popen.__init__ = spy\n"
        "import jupyterlab.labapp\n"
        "print(ran)\n"
    )
    assert out.strip() == "[]"
