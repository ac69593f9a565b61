"""The branch writer: explicit commits, batching, open heads, abandoned writes (both transports).

Every write is StartCommit → ModifyFile into it → InspectFile → metadata →
FinishCommit; writes of different keys that arrive together share a commit,
writes of one key never do; a refused write leaves no commit; reads never
see an open commit; an open write commit nobody holds is discarded.
"""

from __future__ import annotations

import collections
import hashlib
from typing import Any, Iterator

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList, gatherResults
from twisted.python.threadpool import ThreadPool

from pachs3gw.gateway import PfsBackendFactory
from pachs3gw.gateway._pfsutil import DISCARDED_DESCRIPTION, write_description
from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import ObjectMetadata, WriteConditions

from .conftest import Body
from .test_objects import failure_of, read_all

deferred = pytest_twisted.ensureDeferred


class CountingClient:
    """A :class:`PfsClient` that counts the calls made through it, by method."""

    def __init__(self, inner: PfsClient) -> None:
        self._inner = inner
        self.calls: collections.Counter[str] = collections.Counter()

    @property
    def token(self) -> str | None:
        return self._inner.token

    def with_token(self, token: str | None) -> Any:
        return self

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value) or name.startswith("_") or name in ("open_file",):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return value(*args, **kwargs)

        return call


async def counted_bucket(
    client: PfsClient, pool: ThreadPool, bucket_name: str, *, warm: bool = False
) -> tuple[CountingClient, Any]:
    """A new bucket, and a backend over a client that counts what it is asked from then on.

    ``warm``: one write first (the bucket's writable check and the metadata repo are then
    known), not counted.
    """
    counting = CountingClient(client)
    factory = PfsBackendFactory(counting, reactor, pool)  # type: ignore[arg-type]
    backend = factory.backend_for(None)
    await backend.create_bucket(bucket_name)
    if warm:
        await backend.put_object(bucket_name, "warm", Body(b"w"), ObjectMetadata())
    counting.calls.clear()
    return counting, backend


def gone_pid() -> int:
    """The pid of a process of this host that has exited."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def description_of(pid: int) -> str:
    """A write commit's description as the gateway with ``pid`` on this host writes it."""
    import socket

    return f"pachs3gw: S3 write (gateway {socket.gethostname()} pid {pid})"


def repo_of(bucket: str) -> str:
    return bucket.split(".")[1]


async def commits_of(client: PfsClient, bucket: str) -> list[Any]:
    repo = repo_of(bucket)
    return await client.list_commits(refs.repo(repo), to=refs.branch_head(repo, "master"))


async def open_foreign_commit(client: PfsClient, bucket: str, description: str, files: dict[str, bytes]) -> str:
    """An open commit on the bucket's branch, as a dead gateway (or pachctl) leaves one."""
    repo = repo_of(bucket)
    made = await client.start_commit(refs.branch(repo, "master"), description=description)
    commit = refs.commit(repo, made.id, branch_name="master")
    requests = [pfs_client.set_commit(commit)]
    for path, data in files.items():
        requests += list(pfs_client.put_file(path, [data]))
    await client.modify_file(requests)
    return str(made.id)


@deferred
async def test_one_put_is_one_commit_and_costs_five_calls(
    client: PfsClient, pool: ThreadPool, bucket_name: str
) -> None:
    counting, backend = await counted_bucket(client, pool, bucket_name)
    await backend.put_object(bucket_name, "warm", Body(b"w"), ObjectMetadata())
    # The first write checks the bucket takes writes (before any body byte;
    # the other InspectBranch makes sure the metadata repo is there)...
    assert counting.calls["inspect_branch"] == 2
    before = await commits_of(client, bucket_name)
    counting.calls.clear()

    written = await backend.put_object(bucket_name, "k", Body(b"data"), ObjectMetadata())

    # ... and the writes of the next second take that answer (Writers.known_writable).
    assert dict(counting.calls) == {
        "start_commit": 1,
        "modify_file": 2,  # the data into the commit; the record into the metadata repo
        "inspect_file": 1,  # the content hash the record is keyed by
        "finish_commit": 1,
    }
    after = await commits_of(client, bucket_name)
    assert len(after) == len(before) + 1
    assert after[0].commit.id == written.version_id
    assert after[0].description == write_description()


@deferred
async def test_a_bucket_deleted_here_is_not_taken_for_writable_afterwards(
    client: PfsClient, pool: ThreadPool, bucket_name: str
) -> None:
    factory = PfsBackendFactory(client, reactor, pool)
    backend = factory.backend_for(None)
    await backend.create_bucket(bucket_name)
    await backend.put_object(bucket_name, "k", Body(b"data"), ObjectMetadata())
    await backend.delete_object(bucket_name, "k", None)
    await backend.delete_bucket(bucket_name)
    with pytest.raises(errors.NoSuchBucket):
        await backend.put_object(bucket_name, "again", Body(b"x"), ObjectMetadata())


@deferred
async def test_concurrent_writes_of_different_keys_share_commits_one_key_never_does(
    client: PfsClient, pool: ThreadPool, bucket_name: str
) -> None:
    counting, backend = await counted_bucket(client, pool, bucket_name, warm=True)
    before = await commits_of(client, bucket_name)

    keys = [f"k{i:02d}" for i in range(16)] + ["same"] * 4
    results = await gatherResults(
        [
            backend.put_object(bucket_name, key, Body(b"%s %d" % (key.encode(), i)), ObjectMetadata())
            for i, key in enumerate(keys)
        ]
    )

    # The first write goes out alone; the 15 other keys and the first "same"
    # share the next commit; each further "same" needs one of its own.
    versions = [r.version_id for r in results]
    assert len(set(versions[:16])) == 2
    same = versions[16:]
    assert len(set(same)) == 4
    after = await commits_of(client, bucket_name)
    assert len(after) - len(before) == 5 == counting.calls["start_commit"]
    assert counting.calls["finish_commit"] == 5
    # Per commit: one ModifyFile with every (small) body of it, one with the records.
    assert counting.calls["modify_file"] == 5 + 5
    for i, (key, result) in enumerate(zip(keys, results)):
        reader = await backend.get_object(bucket_name, key, result.version_id)
        assert await read_all(reader) == b"%s %d" % (key.encode(), i)


@deferred
async def test_a_bad_small_body_fails_alone_in_a_commit_its_body_would_have_shared(
    client: PfsClient, pool: ThreadPool, bucket_name: str
) -> None:
    counting, backend = await counted_bucket(client, pool, bucket_name, warm=True)

    bodies = {f"k{i}": Body(b"body %d" % i) for i in range(6)}
    bodies["k3"] = Body(b"bad body", fail_with=errors.BadDigest())
    outcomes = await DeferredList(
        [backend.put_object(bucket_name, k, b, ObjectMetadata()) for k, b in bodies.items()],
        consumeErrors=True,
    )

    # The bad body failed while it was read, before it joined the shared ModifyFile.
    by_key = dict(zip(bodies, outcomes))
    ok, failure = by_key.pop("k3")
    assert not ok and failure.check(errors.BadDigest)
    assert all(ok for ok, _ in by_key.values())
    commits = len({result.version_id for _, result in by_key.values()})
    assert commits <= 2 and counting.calls["start_commit"] <= 2
    assert counting.calls["modify_file"] == 2 * commits  # per commit: the bodies, the records
    for key, (_, result) in by_key.items():
        reader = await backend.get_object(bucket_name, key, None)
        assert await read_all(reader) == bodies[key].data
        assert reader.info.etag == hashlib.md5(bodies[key].data).hexdigest()
    with pytest.raises(errors.NoSuchKey):
        await backend.head_object(bucket_name, "k3", None)


@deferred
async def test_concurrent_deletes_share_commits_and_one_modify_file_each(
    client: PfsClient, pool: ThreadPool, bucket_name: str
) -> None:
    counting, backend = await counted_bucket(client, pool, bucket_name)
    keys = [f"k{i:02d}" for i in range(12)]
    for key in keys + ["kept"]:
        await backend.put_object(bucket_name, key, Body(key.encode()), ObjectMetadata())
    before = await commits_of(client, bucket_name)
    counting.calls.clear()

    results = await gatherResults([backend.delete_object(bucket_name, k, None) for k in keys])

    # The first delete goes out alone, the other eleven share the next commit,
    # and each commit sends its deletions in one ModifyFile.
    versions = [r.version_id for r in results]
    assert all(r.delete_marker and r.error is None for r in results)
    assert len(set(versions)) == 2
    after = await commits_of(client, bucket_name)
    assert len(after) - len(before) == 2 == counting.calls["start_commit"]
    assert counting.calls["modify_file"] == 2
    assert counting.calls["finish_commit"] == 2
    assert set(versions) == {c.commit.id for c in after[:2]}  # the delete markers' commits
    page = await backend.list_objects(bucket_name, "", "", "", 1000)
    assert [o.key for o in page.contents] == ["kept"]
    for key in keys:
        with pytest.raises(errors.NoSuchKey):
            await backend.head_object(bucket_name, key, None)


@deferred
async def test_refused_writes_leave_no_commit(client: PfsClient, pool: ThreadPool, bucket_name: str) -> None:
    factory = PfsBackendFactory(client, reactor, pool)
    backend = factory.backend_for(None)
    await backend.create_bucket(bucket_name)
    await backend.put_object(bucket_name, "k", Body(b"one"), ObjectMetadata())
    before = [c.commit.id for c in await commits_of(client, bucket_name)]
    create = WriteConditions(if_none_match="*")
    outcomes = await DeferredList(
        [
            backend.put_object(bucket_name, "k", Body(b"two"), ObjectMetadata(), conditions=create),
            backend.put_object(bucket_name, "new", Body(b"x" * 300_000, fail_with=errors.BadDigest()), ObjectMetadata()),
            backend.delete_object(bucket_name, "missing", None),
        ],
        consumeErrors=True,
    )
    assert isinstance(outcomes[0][1].value, errors.PreconditionFailed)
    assert isinstance(outcomes[1][1].value, errors.BadDigest)
    assert outcomes[2] == (True, outcomes[2][1]) and outcomes[2][1].version_id is None
    # Racing If-None-Match writers on a new key: one commit, none for the losers.
    racing = await DeferredList(
        [
            backend.put_object(bucket_name, "race", Body(b"%d" % i), ObjectMetadata(), conditions=create)
            for i in range(5)
        ],
        consumeErrors=True,
    )
    assert sum(ok for ok, _ in racing) == 1
    after = [c.commit.id for c in await commits_of(client, bucket_name)]
    assert after[1:] == before and len(after) == len(before) + 1


@deferred
async def test_reads_skip_an_open_commit_and_the_next_write_discards_an_abandoned_one(
    client: PfsClient, pool: ThreadPool, bucket_name: str
) -> None:
    # The default grace period: a dead gateway of this host is known dead at once.
    writer = PfsBackendFactory(client, reactor, pool).backend_for(None)
    await writer.create_bucket(bucket_name)
    v1 = await writer.put_object(
        bucket_name, "k", Body(b"acknowledged"), ObjectMetadata(headers={"content-type": "text/a"})
    )
    # A gateway of this host died between its ModifyFile and its FinishCommit.
    dead = await open_foreign_commit(
        client, bucket_name, description_of(gone_pid()), {"/k": b"never acknowledged", "/new": b"partial"}
    )
    reader = PfsBackendFactory(client, reactor, pool).backend_for(None)
    info = await reader.head_object(bucket_name, "k", None)
    assert (info.etag, info.version_id) == (v1.etag, v1.version_id)
    assert info.metadata.headers == {"content-type": "text/a"}
    assert isinstance(await failure_of(reader.head_object(bucket_name, "new", None)), errors.NoSuchKey)
    page = await reader.list_objects(bucket_name, "", "", "", 100)
    assert [(o.key, o.etag) for o in page.contents] == [("k", v1.etag)]
    assert isinstance(
        await failure_of(reader.head_object(bucket_name, "k", dead)), errors.NoSuchVersion
    )

    v2 = await writer.put_object(bucket_name, "other", Body(b"next"), ObjectMetadata())

    commits = await commits_of(client, bucket_name)
    assert [c.commit.id for c in commits[:3]] == [v2.version_id, dead, v1.version_id]
    assert commits[1].description == DISCARDED_DESCRIPTION
    assert commits[1].HasField("finished")
    diff = await client.diff_file(refs.file(refs.commit(repo_of(bucket_name), dead), "/"))
    assert diff == []  # emptied before it was finished
    assert (await reader.head_object(bucket_name, "k", None)).etag == v1.etag
    assert isinstance(await failure_of(reader.head_object(bucket_name, "new", None)), errors.NoSuchKey)


@deferred
async def test_an_open_commit_another_gateway_may_hold_is_waited_for_then_503(
    client: PfsClient, pool: ThreadPool, bucket_name: str
) -> None:
    factory = PfsBackendFactory(client, reactor, pool, abandon_after=3600, busy_timeout=0.2)
    backend = factory.backend_for(None)
    await backend.create_bucket(bucket_name)
    for description in (
        "pachs3gw: S3 write (gateway some-other-host pid 4242)",  # another gateway, maybe alive
        description_of(1),  # a live process of this host
        "pachs3gw: S3 write",  # an older gateway's: it does not say whose
        "pachctl start commit",  # not a gateway's: never discarded
    ):
        open_id = await open_foreign_commit(client, bucket_name, description, {"/theirs": b"x"})
        e = await failure_of(backend.put_object(bucket_name, "mine", Body(b"y"), ObjectMetadata()))
        assert isinstance(e, errors.SlowDown) and e.status == 503
        # Left alone: still open, with its content.
        info = await client.inspect_commit(refs.branch_head(repo_of(bucket_name), "master"))
        assert info.commit.id == open_id and not info.HasField("finished")
        await client.finish_commit(refs.commit(repo_of(bucket_name), open_id))
    written = await backend.put_object(bucket_name, "mine", Body(b"y"), ObjectMetadata())
    assert written.version_id
    assert (await backend.head_object(bucket_name, "theirs", None)).size == 1


@deferred
async def test_a_commit_held_by_another_factory_of_this_process_is_waited_for(
    client: PfsClient, pool: ThreadPool, bucket_name: str
) -> None:
    # Even with abandon_after=0: a commit a writer of this process holds is never taken.
    one = PfsBackendFactory(client, reactor, pool, abandon_after=0).backend_for(None)
    two = PfsBackendFactory(client, reactor, pool, abandon_after=0).backend_for(None)
    await one.create_bucket(bucket_name)
    slow = Body(b"s" * 2_000_000, chunk=1024)
    results = await gatherResults(
        [
            one.put_object(bucket_name, "slow", slow, ObjectMetadata()),
            two.put_object(bucket_name, "fast", Body(b"f"), ObjectMetadata()),
        ]
    )
    assert len({r.version_id for r in results}) == 2
    for key, result in zip(("slow", "fast"), results):
        reader = await one.get_object(bucket_name, key, result.version_id)
        assert (await read_all(reader))[:1] == key[:1].encode()
    commits = await commits_of(client, bucket_name)
    assert all(c.description != DISCARDED_DESCRIPTION for c in commits)




@deferred
async def test_a_large_or_unsized_body_is_staged_and_holds_no_commit_while_it_streams(
    client: PfsClient, pool: ThreadPool, bucket_name: str
) -> None:
    import threading

    from pachs3gw.gateway._mplayout import mp_head
    from pachs3gw.gateway.staging import STAGING_DIR

    backend = PfsBackendFactory(client, reactor, pool).backend_for(None)
    await backend.create_bucket(bucket_name)
    small_done = threading.Event()

    class Held(Body):
        """Sends half, then waits until the small write was acknowledged."""

        def chunks(self) -> Iterator[bytes]:
            half = len(self.data) // 2
            yield self.data[:half]
            if not small_done.wait(10):
                raise AssertionError("the small write waited for the large body")
            yield self.data[half:]

    big = Held(b"b" * 100_000, expected_length=None)
    large = backend.put_object(bucket_name, "large", big, ObjectMetadata())
    small = await backend.put_object(bucket_name, "small", Body(b"s"), ObjectMetadata())
    small_done.set()
    written = await large
    assert written.etag == hashlib.md5(b"b" * 100_000).hexdigest()
    assert written.version_id != small.version_id
    reader = await backend.get_object(bucket_name, "large", written.version_id)
    assert await read_all(reader) == b"b" * 100_000
    # The staged copy is gone from the internal repo.
    try:
        staged = await client.walk_files(refs.file(mp_head(), STAGING_DIR))
    except pfs_errors.FileNotFound:
        staged = []  # the directory went with its last file
    assert [f.file.path for f in staged if f.file_type == 1] == []


@deferred
async def test_own_failed_write_and_an_expired_foreign_one_are_discarded(
    client: PfsClient, pool: ThreadPool, bucket_name: str
) -> None:
    import os

    backend = PfsBackendFactory(client, reactor, pool, abandon_after=0).backend_for(None)
    await backend.create_bucket(bucket_name)
    repo = repo_of(bucket_name)
    # Ours, held by no writer of this process: a write whose store died under it.
    ours = await open_foreign_commit(client, bucket_name, write_description(), {"/a": b"x"})
    assert description_of(os.getpid()) == write_description()
    first = await backend.put_object(bucket_name, "k", Body(b"1"), ObjectMetadata())
    # Another host's, past abandon_after (0 here).
    theirs = await open_foreign_commit(
        client, bucket_name, "pachs3gw: S3 write (gateway elsewhere pid 7)", {"/b": b"y"}
    )
    second = await backend.put_object(bucket_name, "k", Body(b"2"), ObjectMetadata())
    commits = await commits_of(client, bucket_name)
    assert [c.commit.id for c in commits[:4]] == [second.version_id, theirs, first.version_id, ours]
    for c in (commits[1], commits[3]):
        assert c.description == DISCARDED_DESCRIPTION
        assert await client.diff_file(refs.file(refs.commit(repo, c.commit.id), "/")) == []
