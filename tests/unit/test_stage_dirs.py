"""ondemand-stage's directories: root trees checked level by level from /, per-user directories
made without following links (needs root, like ondemand-stage itself)."""

import os
import stat

import pytest

from ondemand_hub.stage.errors import PunError
from ondemand_hub.stage.process import ensure_dir, ensure_root_dir

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks need root")


def test_missing_levels_are_made_root_owned_with_the_mode(tmp_path):
    root = tmp_path / "a" / "b"
    ensure_root_dir(str(root), 0o700)
    for path, mode in ((tmp_path / "a", 0o755), (root, 0o700)):
        st = os.lstat(path)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, mode)


def test_a_symlink_at_any_level_is_refused_and_named(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(PunError, match=f"refusing to use {tmp_path}/link: it is a symlink"):
        ensure_root_dir(str(tmp_path / "link" / "tmp"))
    assert os.listdir(tmp_path / "real") == []


def test_another_accounts_level_is_refused(tmp_path):
    (tmp_path / "theirs").mkdir()
    os.chown(tmp_path / "theirs", NOBODY, NOBODY)
    with pytest.raises(PunError, match=f"belongs to uid {NOBODY}, not root"):
        ensure_root_dir(str(tmp_path / "theirs" / "tmp"))
    assert os.listdir(tmp_path / "theirs") == []


def test_writable_by_others_is_refused_unless_a_sticky_parent(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /var/tmp: fine as a parent
    ensure_root_dir(str(shared / "ondemand-hub"))
    with pytest.raises(PunError, match=r"is writable by others \(mode 1777\)"):
        ensure_root_dir(str(shared))  # not as the tree itself
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    with pytest.raises(PunError, match=r"is writable by others \(mode 777\)"):
        ensure_root_dir(str(tmp_path / "open" / "x"))


def test_a_user_directory_is_never_a_link_nor_another_accounts(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "alice").symlink_to(tmp_path / "target")
    with pytest.raises(PunError, match="is not a usable directory"):
        ensure_dir(str(tmp_path / "alice"), 1001, 1001, 0o700)
    assert os.stat(tmp_path / "target").st_uid == 0
    (tmp_path / "bob").mkdir()
    os.chown(tmp_path / "bob", NOBODY, NOBODY)
    with pytest.raises(PunError, match=f"belongs to uid {NOBODY}, not 1001"):
        ensure_dir(str(tmp_path / "bob"), 1001, 1001, 0o700)
    ensure_dir(str(tmp_path / "carol"), 1001, 1002, 0o710)
    st = os.lstat(tmp_path / "carol")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1001, 1002, 0o710)
