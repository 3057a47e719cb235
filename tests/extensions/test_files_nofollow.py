"""Upload writers never follow a symlink: the staging directory, a session's files and the
chunk's data file are opened with O_NOFOLLOW (a planted link is refused, its target untouched)."""

from __future__ import annotations

import errno
import os

import pytest

from ondemand_files.errors import FilesError
from ondemand_files.transfer import ChunkWriter, UploadSessions


def test_a_staging_directory_that_is_a_symlink_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "staging").symlink_to(elsewhere)
    uploads = UploadSessions(str(tmp_path / "staging"), max_age=3600)
    with pytest.raises(FilesError, match="is not this user's own directory"):
        uploads.create(str(tmp_path / "target.bin"), 10, False)
    assert os.listdir(elsewhere) == []


def test_a_chunk_is_never_written_through_a_link_in_place_of_the_data_file(tmp_path):
    uploads = UploadSessions(str(tmp_path / "staging"), max_age=3600)
    session = uploads.create(str(tmp_path / "target.bin"), 4, False)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    os.unlink(session.data_path)
    os.symlink(victim, session.data_path)
    with pytest.raises(OSError) as caught:
        ChunkWriter(session, 0, 3)
    assert caught.value.errno == errno.ELOOP  # O_NOFOLLOW met the link
    assert victim.read_text() == "keep"
