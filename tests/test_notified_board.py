"""The file beside a SQLite database through which Courier's processes tell each other of
committed changes to what they cache (courier.core.notified.FileBoard). Two boards on one path
stand for two processes here; tests/test_api_keys_cache.py and
tests/test_events_interest_cache.py run a real second ``courier serve`` on the same file."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import ClassVar

import pytest

from courier.core.notified import FileBoard, NotifiedCache, file_board, uuid_entry


class Cache(NotifiedCache[uuid.UUID, str]):
    channel: ClassVar[str] = "test_board"
    ttl: ClassVar[float] = 60.0

    def keys_of(self, entry: str) -> list[uuid.UUID]:
        return uuid_entry(entry)


def kept(cache: Cache, *values: tuple[uuid.UUID, str]) -> None:
    for key, value in values:
        assert cache.keep(key, value, cache.generation)


def test_what_one_process_tells_another_forgets_before_its_next_use(tmp_path: Path) -> None:
    path = str(tmp_path / "courier.db-notices")
    writer, reader = FileBoard(path), FileBoard(path)
    cache = Cache()
    cache.set_listening(True, reader)
    a, b = uuid.uuid4(), uuid.uuid4()
    kept(cache, (a, "a"), (b, "b"))
    assert cache.get(a) == "a"

    writer.tell({"test_board": {str(a)}, "another_channel": {"*"}})
    assert cache.get(a) is None  # read from the file before this use
    assert cache.get(b) == "b"  # named nobody else on its channel

    writer.tell({"test_board": {"*"}})
    assert cache.get(b) is None


def test_a_line_still_being_written_is_read_once_whole(tmp_path: Path) -> None:
    path = tmp_path / "courier.db-notices"
    reader = FileBoard(str(path))
    cache = Cache()
    cache.set_listening(True, reader)
    a = uuid.uuid4()
    kept(cache, (a, "a"))
    with path.open("ab") as file:
        file.write(f"test_board {a}".encode())  # no newline yet
    assert cache.get(a) == "a"
    with path.open("ab") as file:
        file.write(b"\n")
    assert cache.get(a) is None


def test_a_board_started_later_ignores_what_was_told_before(tmp_path: Path) -> None:
    path = str(tmp_path / "courier.db-notices")
    FileBoard(path).tell({"test_board": {"*"}})
    late = FileBoard(path)
    cache = Cache()
    cache.set_listening(True, late)
    a = uuid.uuid4()
    kept(cache, (a, "a"))
    assert cache.get(a) == "a"


def test_a_full_file_is_replaced_and_readers_forget_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FileBoard, "limit", 200)
    path = tmp_path / "courier.db-notices"
    writer, reader = FileBoard(str(path)), FileBoard(str(path))
    cache = Cache()
    cache.set_listening(True, reader)
    a, b = uuid.uuid4(), uuid.uuid4()
    writer.tell({"other": {str(uuid.uuid4())}})
    kept(cache, (a, "a"))
    assert cache.get(a) == "a"  # (the reader has read the first file)
    for _ in range(5):  # 43 bytes each
        writer.tell({"other": {str(uuid.uuid4())}})
    assert path.stat().st_size < 200  # replaced by an empty file once past the limit
    assert cache.get(a) is None  # the reader cannot know what it missed

    kept(cache, (a, "a"), (b, "b"))
    writer.tell({"test_board": {str(a)}})  # the new file is read as before
    assert cache.get(a) is None
    assert cache.get(b) == "b"


def test_a_file_made_and_replaced_between_two_reads_is_noticed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that found no file makes it, so it knows which file it reads: another
    process that then creates and replaces one cannot slip past it."""
    monkeypatch.setattr(FileBoard, "limit", 200)
    path = tmp_path / "courier.db-notices"
    reader = FileBoard(str(path))
    cache = Cache()
    cache.set_listening(True, reader)
    a = uuid.uuid4()
    assert cache.get(a) is None and path.exists()
    kept(cache, (a, "a"))
    writer = FileBoard(str(path))
    for _ in range(6):  # 43 bytes each: the file is replaced once past the limit
        writer.tell({"other": {str(uuid.uuid4())}})
    assert cache.get(a) is None


def test_a_removed_or_unreadable_file_forgets_everything(tmp_path: Path) -> None:
    path = tmp_path / "courier.db-notices"
    writer, reader = FileBoard(str(path)), FileBoard(str(path))
    cache = Cache()
    cache.set_listening(True, reader)
    a = uuid.uuid4()
    writer.tell({"other": {"*"}})
    kept(cache, (a, "a"))
    assert cache.get(a) == "a"
    path.unlink()
    assert cache.get(a) is None

    kept(cache, (a, "a"))
    path.unlink()
    path.mkdir()  # cannot be read as a file: nothing kept is trusted
    assert cache.get(a) is None
    writer.tell({"other": {"*"}})  # nor written: logged, not raised (the change committed)
    os.rmdir(path)


def test_only_sqlite_database_files_have_a_board(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    database = tmp_path / "courier.db"
    board = file_board(create_engine(f"sqlite:///{database}"))
    assert board is not None and board.path == f"{database}-notices"
    assert file_board(create_engine(f"sqlite:///{database}")) is board  # one per file
    assert file_board(create_engine("sqlite://")) is None
    assert file_board(create_engine("sqlite:///:memory:")) is None
