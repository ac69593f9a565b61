"""Group commit of metadata writes (``MetadataStore.put``), on the real embedded server.

While one metadata ModifyFile is in flight, further puts queue and then go
out together in one commit; each caller returns once its commit finished,
and a failed commit fails every caller of it (their data commits must then
not finish). Each write keeps its own record, even for the same bytes.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Iterable, cast

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.python.threadpool import ThreadPool

from pachs3gw.gateway import _metawriter as metawriter_module
from pachs3gw.gateway.metadata import (
    META_BRANCH,
    META_REPO,
    MetadataStore,
    Record,
    record_id,
)
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3.interfaces import ObjectMetadata

PROJECT = "default"


class CountingClient:
    """A :class:`PfsClient` that records each ModifyFile (and can fail some)."""

    def __init__(
        self,
        inner: PfsClient,
        fail: Callable[[int], BaseException | None] = lambda n: None,
    ) -> None:
        self._inner = inner
        self._fail = fail
        self.calls: list[list[pfs.ModifyFileRequest]] = []

    @property
    def token(self) -> str | None:
        return self._inner.token

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def modify_file(
        self, requests: Iterable[pfs.ModifyFileRequest], defer_sync: bool = False
    ) -> Deferred[None]:
        sent = list(requests)
        self.calls.append(sent)
        error = self._fail(len(self.calls))
        if error is not None:
            return defer.fail(error)
        return self._inner.modify_file(sent, defer_sync)

    def as_client(self) -> PfsClient:
        return cast(PfsClient, self)


def record_paths(requests: list[pfs.ModifyFileRequest]) -> list[str]:
    """The record paths a ModifyFile adds content to."""
    return [
        r.add_file.path
        for r in requests
        if r.WhichOneof("body") == "add_file" and r.add_file.path.startswith("/v/")
    ]


def a_record(etag: str, content_type: str = "text/plain") -> Record:
    return Record(etag=etag, metadata=ObjectMetadata(headers={"content-type": content_type}))


def fresh_repo() -> str:
    return "r" + uuid.uuid4().hex[:12]


def commit_id() -> str:
    """A data commit's ID (records name the commit that wrote them)."""
    return uuid.uuid4().hex


def with_commits(entries: list[tuple[str, bytes, Record]]) -> list[tuple[str, bytes, str, Record]]:
    return [(key, h, commit_id(), record) for key, h, record in entries]


def start_puts(
    store: MetadataStore,
    client: PfsClient,
    repo: str,
    entries: list[tuple[str, bytes, Record]],
) -> list[Deferred[None]]:
    """One put per entry (each its own commit's), all started in the same reactor turn."""
    return [
        ensureDeferred(store.put(client, PROJECT, repo, [entry]))
        for entry in with_commits(entries)
    ]


async def meta_commit_count(client: PfsClient) -> int:
    history = await client.list_commits(
        refs.repo(META_REPO), to=refs.branch_head(META_REPO, META_BRANCH)
    )
    return len(history)


async def warm(store: MetadataStore, client: PfsClient) -> None:
    """One put, so the meta repo exists and later puts go straight to ModifyFile."""
    await store.put(client, PROJECT, fresh_repo(), [("warm", b"\x01" * 32, commit_id(), a_record("w"))])


@pytest.fixture
def store(pool: ThreadPool) -> MetadataStore:
    return MetadataStore(reactor, pool)


@pytest_twisted.ensureDeferred
async def test_concurrent_puts_share_commits(
    store: MetadataStore, client: PfsClient, pool: ThreadPool
) -> None:
    counting = CountingClient(client)
    await warm(store, counting.as_client())
    before_calls = len(counting.calls)
    before_commits = await meta_commit_count(client)
    repo = fresh_repo()
    entries = [
        (f"k{i:03d}", bytes([i]) * 32, a_record(f"etag{i:03d}", f"text/x-{i}")) for i in range(40)
    ]

    results = await defer.gatherResults(start_puts(store, counting.as_client(), repo, entries))

    assert results == [None] * 40
    # The first put goes out alone at once; the 39 that queued behind it share one commit.
    assert len(counting.calls) - before_calls == 2
    assert await meta_commit_count(client) - before_commits == 2
    assert [len(record_paths(c)) for c in counting.calls[before_calls:]] == [1, 39]
    # Every record is readable, from a cold store too (read back from PFS).
    cold = MetadataStore(reactor, pool)
    for key, pfs_hash, record in entries:
        assert await store.get(client, PROJECT, repo, key, pfs_hash) == record
        assert await cold.get(client, PROJECT, repo, key, pfs_hash) == record
    assert cold.fetches == 40
    listing = MetadataStore(reactor, pool)
    etags = await listing.etags(client, PROJECT, repo, [(k, h) for k, h, _ in entries])
    assert etags == [r.etag for _, _, r in entries]


@pytest_twisted.ensureDeferred
async def test_lone_put_goes_out_at_once(store: MetadataStore, client: PfsClient) -> None:
    counting = CountingClient(client)
    await warm(store, counting.as_client())
    before = len(counting.calls)

    done = ensureDeferred(
        store.put(
            counting.as_client(), PROJECT, fresh_repo(), [("k", b"\x02" * 32, commit_id(), a_record("e"))]
        )
    )

    # No timer, no reactor turn: the ModifyFile is already sent.
    assert len(counting.calls) == before + 1
    assert not done.called
    await done
    assert not store._writer._writing and not store._writer._queue


@pytest_twisted.ensureDeferred
async def test_one_put_is_one_commit_and_never_split(
    store: MetadataStore, client: PfsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metawriter_module, "MAX_BATCH_ENTRIES", 3)
    counting = CountingClient(client)
    await warm(store, counting.as_client())
    before = len(counting.calls)
    repo = fresh_repo()
    big = [(f"big{i}", bytes([i]) * 32, a_record(f"b{i}")) for i in range(5)]
    small = [(f"s{i}", bytes([100 + i]) * 32, a_record(f"s{i}")) for i in range(7)]

    puts = [ensureDeferred(store.put(counting.as_client(), PROJECT, repo, with_commits(big)))]
    puts += start_puts(store, counting.as_client(), repo, small)
    await defer.gatherResults(puts)

    # big alone (5 > 3 but one put is one commit), then the 7 small ones by 3s.
    assert [len(record_paths(c)) for c in counting.calls[before:]] == [5, 3, 3, 1]
    for key, pfs_hash, record in big + small:
        assert await MetadataStore(reactor, store._pool).get(
            client, PROJECT, repo, key, pfs_hash
        ) == record


@pytest_twisted.ensureDeferred
async def test_same_bytes_written_twice_keep_their_own_records(
    store: MetadataStore, client: PfsClient, pool: ThreadPool
) -> None:
    counting = CountingClient(client)
    await warm(store, counting.as_client())
    before = len(counting.calls)
    repo = fresh_repo()
    pfs_hash = b"\x07" * 32
    writes = [
        ("same", pfs_hash, commit_id(), a_record("etag", "text/first")),
        ("same", pfs_hash, commit_id(), a_record("etag", "text/second")),
        ("other", b"\x08" * 32, commit_id(), a_record("other")),
        ("same", pfs_hash, commit_id(), a_record("etag", "text/third")),
    ]

    await defer.gatherResults(
        [ensureDeferred(store.put(counting.as_client(), PROJECT, repo, [w])) for w in writes]
    )

    # The first goes out alone, the other three together: four records.
    assert [len(record_paths(c)) for c in counting.calls[before:]] == [1, 3]
    for cache in (store, MetadataStore(reactor, pool)):
        for key, h, cid, record in writes:
            at = refs.commit(repo, cid)
            assert await cache.get(client, PROJECT, repo, key, h, at=at) == record


@pytest_twisted.ensureDeferred
async def test_other_token_does_not_join(
    store: MetadataStore, client: PfsClient, pool: ThreadPool
) -> None:
    counting = CountingClient(client)
    other = CountingClient(client.with_token("another-caller"))
    await warm(store, counting.as_client())
    before = (len(counting.calls), len(other.calls))
    repo = fresh_repo()
    pfs_hash = b"\x09" * 32

    def put(who: CountingClient, key: str, pfs_hash: bytes, etag: str) -> Deferred[None]:
        entry = (key, pfs_hash, commit_id(), a_record(etag))
        return ensureDeferred(store.put(who.as_client(), PROJECT, repo, [entry]))

    puts = [
        put(counting, "a", b"\x0a" * 32, "a"),
        put(counting, "k", pfs_hash, "one"),
        put(other, "k", pfs_hash, "two"),
        put(counting, "k", pfs_hash, "three"),
        put(counting, "b", b"\x0b" * 32, "b"),
    ]
    await defer.gatherResults(puts)

    mine = [len(record_paths(c)) for c in counting.calls[before[0] :]]
    theirs = [len(record_paths(c)) for c in other.calls[before[1] :]]
    assert mine == [1, 3]  # a | one + three + b
    assert theirs == [1]  # two


@pytest_twisted.ensureDeferred
async def test_failed_batch_fails_every_caller_and_is_logged_once(
    store: MetadataStore,
    client: PfsClient,
    pool: ThreadPool,
) -> None:
    from twisted.logger import formatEvent, globalLogPublisher

    events: list[dict] = []
    failing: set[int] = set()
    counting = CountingClient(
        client,
        fail=lambda n: pfs_errors.Unavailable("injected") if n in failing else None,
    )
    await warm(store, counting.as_client())
    repo = fresh_repo()
    entries = [(f"k{i}", bytes([i]) * 32, a_record(f"e{i}")) for i in range(6)]
    rids = [record_id(PROJECT, repo, k, h) for k, h, _ in entries]
    failing.add(len(counting.calls) + 2)  # the batch behind the first put

    globalLogPublisher.addObserver(events.append)
    try:
        puts = start_puts(store, counting.as_client(), repo, entries)
        outcomes: list[Any] = []
        for d in puts:
            try:
                outcomes.append(await d)
            except pfs_errors.Unavailable as e:
                outcomes.append(str(e))
    finally:
        globalLogPublisher.removeObserver(events.append)

    # Raised, so that the writes' data commits are not finished.
    assert outcomes == [None] + ["injected"] * 5
    failures = [formatEvent(e) for e in events if "metadata write failed" in formatEvent(e)]
    assert len(failures) == 1 and "5 record(s)" in failures[0]
    assert [e["log_namespace"] for e in events if "metadata write failed" in formatEvent(e)] == [
        "pachs3gw.gateway._metawriter"
    ]
    assert rids[0] in store._cache
    for rid in rids[1:]:
        assert rid not in store._cache
    assert not store._writer._repo_ready
    # Nothing of the failed batch was stored; the store keeps working.
    cold = MetadataStore(reactor, pool)
    assert await cold.get(client, PROJECT, repo, "k0", entries[0][1]) == entries[0][2]
    assert (await cold.get(client, PROJECT, repo, "k1", entries[1][1])).derived
    await store.put(counting.as_client(), PROJECT, repo, with_commits([entries[1]]))
    again = MetadataStore(reactor, pool)
    assert await again.get(client, PROJECT, repo, "k1", entries[1][1]) == entries[1][2]


@pytest_twisted.ensureDeferred
async def test_unexpected_failure_reaches_every_caller(
    store: MetadataStore, client: PfsClient
) -> None:
    failing: set[int] = set()
    counting = CountingClient(
        client, fail=lambda n: RuntimeError("boom") if n in failing else None
    )
    await warm(store, counting.as_client())
    failing.add(len(counting.calls) + 2)
    repo = fresh_repo()
    entries = [(f"k{i}", bytes([i]) * 32, a_record(f"e{i}")) for i in range(4)]

    puts = start_puts(store, counting.as_client(), repo, entries)
    outcomes: list[Any] = []
    for d in puts:
        try:
            outcomes.append(await d)
        except RuntimeError as e:
            outcomes.append(str(e))

    assert outcomes == [None, "boom", "boom", "boom"]
    assert not store._writer._writing and not store._writer._queue


@pytest_twisted.ensureDeferred
async def test_cancelled_wait_still_writes(
    store: MetadataStore, client: PfsClient, pool: ThreadPool
) -> None:
    await warm(store, client)
    repo = fresh_repo()
    entries = [(f"k{i}", bytes([i]) * 32, a_record(f"e{i}")) for i in range(3)]
    puts = start_puts(store, client, repo, entries)

    puts[1].cancel()  # queued behind the first: only the wait is cancelled
    with pytest.raises(defer.CancelledError):
        await puts[1]
    await puts[0]
    await puts[2]

    cold = MetadataStore(reactor, pool)
    for key, pfs_hash, record in entries:
        assert await cold.get(client, PROJECT, repo, key, pfs_hash) == record
