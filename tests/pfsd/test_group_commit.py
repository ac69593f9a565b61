"""Group commit: concurrent writes share one SQLite transaction, each stays its own."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from pachs3gw.pfsd import Store


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Store(str(tmp_path / "data"))
    yield s
    s.close()


def test_writers_queued_behind_one_share_its_commit_and_a_failing_one_costs_only_itself(
    store: Store,
) -> None:
    # Hold the write turn, so that the others queue and join one batch.
    holder_in = threading.Event()
    release = threading.Event()
    outcomes: dict[str, object] = {}

    def holder() -> None:
        with store.database.write() as db:
            db.execute("INSERT INTO projects VALUES ('held', '', 0)")
            holder_in.set()
            release.wait(10)
        outcomes["held"] = store.database._durable

    def writer(name: str, fail: bool) -> None:
        try:
            with store.database.write() as db:
                db.execute("INSERT INTO projects VALUES (?, '', 0)", (name,))
                if fail:
                    raise ValueError("this write fails")
            outcomes[name] = store.database._durable
        except ValueError as e:
            outcomes[name] = e

    first = threading.Thread(target=holder)
    first.start()
    assert holder_in.wait(10)
    others = [
        threading.Thread(target=writer, args=(f"p{i}", i == 2)) for i in range(5)
    ]
    for t in others:
        t.start()
    while store.database._waiting < 5:
        threading.Event().wait(0.001)
    batches_before = store.database._batches
    release.set()
    for t in [first, *others]:
        t.join(10)
    # Everyone who queued behind the holder joined its transaction.
    assert store.database._batches == batches_before
    assert isinstance(outcomes.pop("p2"), ValueError)
    assert len(set(outcomes.values())) == 1  # all durable with the same batch
    names = {r[0] for r in store.database.connection().execute("SELECT name FROM projects")}
    assert {"held", "p0", "p1", "p3", "p4"} <= names
    assert "p2" not in names


def test_a_write_returns_only_once_its_batch_is_on_disk(store: Store, tmp_path: Path) -> None:
    with store.database.write() as db:
        db.execute("INSERT INTO projects VALUES ('durable', '', 0)")
    # Another connection (another process, after a crash) sees it at once.
    other = sqlite3.connect(str(tmp_path / "data" / "meta.sqlite"))
    try:
        assert other.execute("SELECT 1 FROM projects WHERE name='durable'").fetchone()
    finally:
        other.close()
