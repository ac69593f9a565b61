"""S3 writes to a branch: one explicit commit at a time, shared by concurrent writes.

A write's version ID must be the commit that holds exactly its bytes, and a
200 must mean that the bytes *and* their S3 metadata are durable. So every
write (PUT, CopyObject, CompleteMultipartUpload, DELETE, DeleteObjects, the
restore of a delete marker) is a step run inside an explicit commit::

    StartCommit(branch) → the writes' ModifyFile into that commit → InspectFile
    of each written path (content hash) → their metadata records (internal
    repo) → FinishCommit → answer each write, with the commit ID as version ID.

PFS keeps one open commit per branch (StartCommit on an open head fails with
"parent commit … has not been finished"), so the writes to one branch are
serialised by its :class:`BranchWriter`: the first write goes out at once (no
timer); writes that arrive while a commit is open queue, and the next commit
takes all of them that touch different paths (same caller token, up to
:data:`MAX_WRITES_PER_COMMIT`). The same path is never written twice in one
commit (each write of a key is a version of its own), and writes of one path
commit in arrival order.

Failures:

- A step that fails before it changed the commit (a precondition, a bad
  body -- the server refuses the whole stream --, a missing copy source)
  fails alone; the others go on. A commit that nothing changed is dropped
  (DropCommit; FinishCommit where the server lacks it), so a refused write
  leaves no commit behind.
- A step that fails after changing the commit, or a failure of the metadata
  write or of FinishCommit, fails every write of the commit, which is then
  dropped (best effort): nothing unacknowledged becomes visible.
- An open commit left by a writer that died (the gateway killed mid-write,
  or the store killed under it) blocks the branch. Write commits say who
  opened them (:func:`~pachs3gw.gateway._pfsutil.write_description`: host
  and pid). The next writer that finds the head open discards it --
  ClearCommit, then FinishCommit as :data:`DISCARDED_DESCRIPTION` -- at
  once if no writer of this process holds it and it names this process or
  a process of this host that is gone, else once it has been open for
  ``abandon_after`` seconds (another gateway over the same PFS may still be
  writing it). A commit some writer of this process holds is waited for.
  An open head that is not a gateway's (pachctl's ``start commit``) is
  waited for, up to ``busy_timeout``, then the write answers 503 SlowDown.

Readers skip open commits (:class:`CommitTracker` says which are open here
and which are known finished; see ``BackendCore``).

Threads: reactor thread only.
"""

from __future__ import annotations

import collections
import os
import socket
from typing import Any, Awaitable, Callable, Generic, Hashable, Iterable, TypeVar

import attrs
from twisted.internet.defer import Deferred, ensureDeferred, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.logger import Logger

from pachs3gw.gateway._pfsutil import (
    DISCARDED_DESCRIPTION,
    write_commit_owner,
    write_description,
)
from pachs3gw.gateway.buckets import BucketRef
from pachs3gw.gateway.metadata import MetadataStore, Record
from pachs3gw.gateway.tracker import (
    IN_FLIGHT,
    STARTING,
    BranchKey,
    CommitTracker,
    branch_key,
    wait_closed,
)
from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import BodyAborted

log = Logger()

T = TypeVar("T")

#: Writes one commit takes at most.
MAX_WRITES_PER_COMMIT = 128
#: Default grace period before another writer's open commit counts as abandoned.
ABANDON_AFTER = 120.0
#: How long a write waits for an open commit it may not discard, before 503.
BUSY_TIMEOUT = 10.0
#: Polling interval while waiting for an open commit of another process.
POLL_SECONDS = 0.05
#: How long a branch seen taking writes is taken to still take them.
WRITABLE_FOR = 1.0
#: Branches remembered as writable at most (then the memory starts over).
WRITABLE_ENTRIES = 10_000

#: Failures of a step's ModifyFile after which the commit is known unchanged
#: (the server refused the stream): anything else may have been applied.
_UNAPPLIED = (
    errors.S3Error,
    BodyAborted,
    pfs_errors.InvalidName,
    pfs_errors.FileNotFound,
    pfs_errors.NotARegularFile,
    pfs_errors.StorageFull,
    pfs_errors.PermissionDenied,
)


@attrs.define(eq=False)
class Build:
    """The commit being built, shared by the writes it takes."""

    ref: BucketRef
    commit: pfs.Commit
    entries: list[tuple[str, bytes, str, Record]] = attrs.Factory(list)
    #: Paths the writes delete: one ModifyFile for all of them once every step ran.
    deletions: list[str] = attrs.Factory(list)
    changed: bool = False
    #: Set when the commit may hold what a failed write sent: it must not finish.
    tainted: BaseException | None = None
    #: Steps that have neither ended nor handed over a small body (Scope.put_small).
    unsettled: int = 0
    #: The small bodies handed over: (their scope, path, chunks, fired once sent).
    uploads: list[tuple[Scope, str, list[bytes], Deferred[None]]] = attrs.Factory(list)

    def settled(self, client: PfsClient) -> None:
        """A step ended or handed over its body: once all have, the bodies go out together."""
        self.unsettled -= 1
        if self.unsettled == 0 and self.uploads:
            ensureDeferred(self._send_uploads(client))

    async def _send_uploads(self, client: PfsClient) -> None:
        """One ModifyFile for every small body of the commit; each step learns how it went."""
        uploads, self.uploads = self.uploads, []
        try:  # whatever fails, every step waiting here hears of it
            requests = [pfs_client.set_commit(self.commit)]
            for _, path, chunks, _ in uploads:
                requests.extend(pfs_client.put_file(path, chunks))
            await client.modify_file(requests)
        except BaseException as e:
            if not isinstance(e, _UNAPPLIED) and self.tainted is None:
                self.tainted = e  # unknown whether the server applied it
            failure = Failure()
            for _, _, _, done in uploads:
                done.errback(failure)
            return
        for scope, _, _, done in uploads:
            scope.touched = True
            done.callback(None)


@attrs.define(eq=False)
class Scope:
    """One write's view of the :class:`Build`: what a step uses."""

    build: Build
    touched: bool = False
    entries: list[tuple[str, bytes, str, Record]] = attrs.Factory(list)
    deletions: list[str] = attrs.Factory(list)
    #: The step handed over a body (put_small): it counts as settled already.
    handed_over: bool = False

    @property
    def commit(self) -> pfs.Commit:
        """The open commit (an explicit ID: reads of it see this commit's writes)."""
        return self.build.commit

    async def modify(self, client: PfsClient, requests: Any) -> None:
        """Send one ModifyFile into the commit (its first request is the set_commit).

        All or nothing, as every ModifyFile of :class:`PfsClient`: a request
        iterator that raises (a bad body) makes the server refuse the stream.
        """
        try:
            await client.modify_file(requests)
        except _UNAPPLIED:
            raise  # refused by the server (or never sent): the commit is as it was
        except BaseException:
            self.touched = True  # unknown whether the server applied it
            raise
        self.touched = True

    def put_small(self, client: PfsClient, path: str, chunks: list[bytes]) -> Deferred[None]:
        """Overwrite ``path`` with a small body already here and verified (its checks passed,
        so it cannot fail the stream it joins): sent in one ModifyFile with every other such
        body of the commit once each of its steps has handed one over or ended. N writers of
        small objects then cost one call, not N."""
        done: Deferred[None] = Deferred()
        self.handed_over = True
        self.build.uploads.append((self, path, chunks, done))
        self.build.settled(client)
        return done

    def delete(self, paths: Iterable[str]) -> None:
        """Delete ``paths`` in the commit: sent with every other write's deletions in one
        ModifyFile after the steps ran (a batch of DELETEs costs one call, not one each),
        before the commit finishes; if that fails, the whole commit does."""
        self.deletions.extend(paths)

    def record(self, key: str, pfs_hash: bytes, record: Record) -> None:
        """The metadata record of ``key``'s new content, written before the commit finishes."""
        self.entries.append((key, pfs_hash, self.build.commit.id, record))


#: A write's work inside the open commit; returns what to answer once the
#: commit is finished, given its ID.
Step = Callable[[Scope], Awaitable[Callable[[str], T]]]


@attrs.define(eq=False)
class Write(Generic[T]):
    paths: frozenset[str]
    client: PfsClient
    step: Step[T]
    done: Deferred[T]


class BranchWriter:
    """The writes of one branch, serialised into commits (see the module doc)."""

    def __init__(self, writers: Writers, ref: BucketRef) -> None:
        self._writers = writers
        self._ref = ref
        self._key = branch_key(ref)
        self._queue: collections.deque[Write[Any]] = collections.deque()
        self._running = False

    @property
    def key(self) -> tuple[str, str, str]:
        return self._key

    @property
    def idle(self) -> bool:
        return not self._running and not self._queue

    def submit(self, write: Write[Any]) -> None:
        self._queue.append(write)
        if not self._running:
            self._running = True
            ensureDeferred(self._run()).addErrback(
                lambda f: log.failure("branch writer failed", failure=f)
            )

    def cancel(self, write: Write[Any]) -> None:
        """Forget a write still queued (its caller went away); a running one goes on."""
        try:
            self._queue.remove(write)
        except ValueError:
            pass

    async def _run(self) -> None:
        try:
            while self._queue:
                batch = self._take_batch()
                try:
                    await self._commit(batch)
                except BaseException:
                    failure = Failure()
                    log.failure("branch writer failed", failure=failure)
                    for write in batch:
                        if not write.done.called:
                            write.done.errback(failure)
        finally:
            self._running = False
            self._writers.release(self)

    def _take_batch(self) -> list[Write[Any]]:
        """The oldest write, plus the queued ones that can join its commit.

        A write joins if it has the same token and touches none of the
        batch's paths, nor the paths of an earlier write left queued (so the
        writes of one path commit in order).
        """
        first = self._queue.popleft()
        batch = [first]
        taken = set(first.paths)
        token = first.client.token
        kept: collections.deque[Write[Any]] = collections.deque()
        blocked: set[str] = set()
        for write in self._queue:
            joins = (
                len(batch) < MAX_WRITES_PER_COMMIT
                and write.client.token == token
                and taken.isdisjoint(write.paths)
                and blocked.isdisjoint(write.paths)
            )
            if joins:
                batch.append(write)
                taken |= write.paths
            else:
                kept.append(write)
                blocked |= write.paths
        self._queue = kept
        return batch

    async def _commit(self, batch: list[Write[Any]]) -> None:
        """One commit for ``batch``: every write is answered when this returns.

        Answers go out only after the commit is closed here (finished and
        known finished, or dropped), so a caller that reads right after its
        write sees the commit it was told about.
        """
        client = batch[0].client
        answers: list[tuple[Write[Any], bool, Any]] = []
        try:
            commit = await self._start(client)
        except BaseException:
            failure = Failure()
            answers = [(write, False, failure) for write in batch]
        else:
            answers = await self._build(client, commit, batch)
        for write, ok, value in answers:
            if write.done.called:
                continue
            if ok:
                write.done.callback(value)
            else:
                write.done.errback(value)

    async def _build(
        self, client: PfsClient, commit: pfs.Commit, batch: list[Write[Any]]
    ) -> list[tuple[Write[Any], bool, Any]]:
        """Run the batch's steps in ``commit`` and finish (or drop) it; the answers."""
        tracker = self._writers.tracker
        tracker.opened(self._key, commit.id)
        build = Build(self._ref, commit, unsettled=len(batch))
        finished = False
        outcomes: list[tuple[bool, Any]] = []
        try:
            outcomes = await gatherResults([ensureDeferred(self._apply(w, build)) for w in batch])
            if build.tainted is not None:
                raise build.tainted
            if build.deletions:
                await client.modify_file(
                    [pfs_client.set_commit(commit)]
                    + [pfs_client.delete_file(path) for path in build.deletions]
                )
            if build.changed:
                meta = self._writers.meta
                if build.entries:
                    await meta.put(client, self._ref.project, self._ref.repo, build.entries)
                await client.finish_commit(commit)
                finished = True
                tracker.mark_finished(commit.id)
            else:
                await self._drop(client, commit, changed=False)
            return [
                (write, ok, value(commit.id) if ok else value)
                for write, (ok, value) in zip(batch, outcomes)
            ]
        except BaseException:
            failure = Failure()
            if not finished:
                await self._drop(client, commit, changed=True)
            own = {id(w): value for w, (ok, value) in zip(batch, outcomes) if not ok}
            return [(write, False, own.get(id(write), failure)) for write in batch]
        finally:
            tracker.closed(self._key, commit.id)

    async def _apply(self, write: Write[Any], build: Build) -> tuple[bool, Any]:
        """Run one write's step: ``(True, answer)`` or ``(False, Failure)``; never raises."""
        scope = Scope(build)
        try:
            try:
                answer = await write.step(scope)
            finally:
                if not scope.handed_over:
                    build.settled(write.client)
        except BaseException:
            failure = Failure()
            if scope.touched and build.tainted is None:
                build.tainted = failure.value
            return False, failure
        build.changed = build.changed or scope.touched or bool(scope.deletions)
        build.entries += scope.entries
        build.deletions += scope.deletions
        return True, answer

    async def _start(self, client: PfsClient) -> pfs.Commit:
        """StartCommit on the branch, settling an open head first if there is one."""
        reactor = self._writers.reactor
        deadline = reactor.seconds() + self._writers.busy_timeout
        while True:
            STARTING[self._key] += 1
            try:
                made = await client.start_commit(
                    self._ref.pfs_branch(), description=write_description()
                )
                return self._ref.at(made.id)
            except pfs_errors.ParentNotFinished:
                pass
            finally:
                STARTING[self._key] -= 1
                if not STARTING[self._key]:
                    del STARTING[self._key]
            await self._settle_open_head(client, deadline)

    async def _settle_open_head(self, client: PfsClient, deadline: float) -> None:
        """The head is open: wait for it, or discard it if it is an abandoned write."""
        reactor = self._writers.reactor
        if reactor.seconds() >= deadline:
            raise self._busy("the branch")
        info = await client.inspect_commit(self._ref.head())
        if info.HasField("finishing") or info.HasField("finished"):
            return
        commit_id = info.commit.id
        if commit_id in IN_FLIGHT:
            # A writer of this process (another factory's) holds it.
            await wait_closed(commit_id)
            return
        now = reactor.seconds()
        started = info.started.seconds + info.started.nanos / 1e9 if info.HasField("started") else None
        owner = write_commit_owner(info.description)
        # Another writer of this process may have started it and not yet said so.
        ours_starting = owner is not None and owner[1] == os.getpid() and STARTING[self._key] > 0
        if owner is not None and not ours_starting:
            age = self._writers.tracker.open_for(commit_id, now, started)
            if _writer_is_gone(*owner) or age >= self._writers.abandon_after:
                await self._discard_abandoned(client, commit_id)
                return
        if now >= deadline:
            raise self._busy(f"commit {commit_id} of")
        await deferLater(reactor, min(POLL_SECONDS, deadline - now), lambda: None)

    def _busy(self, what: str) -> errors.S3Error:
        return errors.SlowDown(
            f"Bucket {self._ref.name}: {what} {self._ref.label} is held open by another "
            "client writing the branch; please retry.",
            headers={"Retry-After": "1"},
        )

    async def _discard_abandoned(self, client: PfsClient, commit_id: str) -> None:
        """Empty and finish an open write commit nobody holds (never acknowledged)."""
        commit = self._ref.at(commit_id)
        try:
            await client.clear_commit(commit)
            await client.finish_commit(commit, description=DISCARDED_DESCRIPTION)
        except (pfs_errors.CommitFinished, pfs_errors.CommitNotFound):
            return  # another writer settled it first
        log.warn(
            "discarded the abandoned open commit {commit} of {branch} (a write that was "
            "never acknowledged)",
            commit=commit_id,
            branch=self._ref.label,
        )

    async def _drop(self, client: PfsClient, commit: pfs.Commit, changed: bool) -> None:
        """Remove our own commit without a trace (best effort; never raises).

        Where DropCommit fails (older pachd), an unchanged commit is simply
        finished (empty), a changed one emptied first and finished as
        discarded. If even that fails the commit stays open, and the next
        writer discards it as abandoned.
        """
        try:
            await client.drop_commit(commit)
            return
        except pfs_errors.PfsError:
            pass
        try:
            if changed:
                await client.clear_commit(commit)
                await client.finish_commit(commit, description=DISCARDED_DESCRIPTION)
            else:
                await client.finish_commit(commit)
        except pfs_errors.PfsError as e:
            log.warn(
                "could not discard commit {commit} of {branch} after a failed write: {error}",
                commit=commit.id,
                branch=self._ref.label,
                error=e,
            )


def _writer_is_gone(host: str, pid: int) -> bool:
    """Whether the gateway that opened a write commit certainly no longer holds it.

    This process holds open only the commits in ``IN_FLIGHT``, so one that
    names this process is a write of ours that failed; one that names a
    process of this host that is gone, a write of a gateway that died (a
    restart after ``kill -9``). Anything else -- another host, a live
    process, a commit that does not say -- may be a write in progress:
    ``abandon_after`` decides.
    """
    if not pid or host != socket.gethostname():
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (another user's process)
    return False


class Writers:
    """The branch writers of one factory, and their settings."""

    def __init__(
        self,
        reactor: IReactorTime,
        meta: MetadataStore,
        tracker: CommitTracker,
        abandon_after: float = ABANDON_AFTER,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        self.reactor = reactor
        self.meta = meta
        self.tracker = tracker
        self.abandon_after = abandon_after
        self.busy_timeout = busy_timeout
        self._writers: dict[Hashable, BranchWriter] = {}
        self._writable_until: dict[tuple[str | None, BranchKey], float] = {}

    # Whether a bucket takes writes (exists, not a pipeline's output) is
    # checked before a write reads its body: one InspectBranch. Remembered
    # for WRITABLE_FOR seconds per caller token and branch, a burst of writes
    # pays it once a second instead of once each. A bucket deleted here is
    # forgotten at once; deleted or made an output elsewhere, it is noticed
    # within that time. A branch's head is never taken from here.

    def known_writable(self, token: str | None, ref: BucketRef) -> bool:
        return self._writable_until.get((token, branch_key(ref)), 0.0) > self.reactor.seconds()

    def seen_writable(self, token: str | None, ref: BucketRef) -> None:
        if len(self._writable_until) >= WRITABLE_ENTRIES:
            self._writable_until.clear()
        self._writable_until[(token, branch_key(ref))] = self.reactor.seconds() + WRITABLE_FOR

    def forget_writable(self, ref: BucketRef) -> None:
        key = branch_key(ref)
        for known in [k for k in self._writable_until if k[1] == key]:
            del self._writable_until[known]

    def submit(
        self, ref: BucketRef, client: PfsClient, paths: frozenset[str], step: Step[T]
    ) -> Deferred[T]:
        """Run ``step`` in the next commit of ``ref``'s branch that may take ``paths``."""
        key = branch_key(ref)
        writer = self._writers.get(key)
        if writer is None:
            writer = self._writers[key] = BranchWriter(self, ref)
        write: Write[T] = Write(paths, client, step, Deferred(lambda _: writer.cancel(write)))
        writer.submit(write)
        return write.done

    def release(self, writer: BranchWriter) -> None:
        """A writer whose queue ran dry is forgotten (a new one is made on demand)."""
        if writer.idle and self._writers.get(writer.key) is writer:
            del self._writers[writer.key]


__all__ = [
    "ABANDON_AFTER",
    "WRITABLE_FOR",
    "BUSY_TIMEOUT",
    "Build",
    "BranchWriter",
    "CommitTracker",
    "Scope",
    "Writers",
]
