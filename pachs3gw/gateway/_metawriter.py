"""Group commit of metadata records: one ModifyFile of the metadata repo in flight.

Records are written by the branch writers while their data commits are
open, and a data commit is finished only once its records are durable; a
record write that fails fails the S3 writes it belongs to. Writers of many
branches share the metadata repo, so their records are group-committed:
the first :meth:`MetaWriter.put` goes out at once (no timer); puts that
arrive while a metadata commit is in flight queue, and when it finishes the
queued ones go out together in ONE ModifyFile (bounded by
:data:`MAX_BATCH_ENTRIES` and :data:`MAX_BATCH_BYTES`; one put is never
split). Each caller is released when the commit holding its entries has
finished. A batch only joins puts made with the same Pachyderm token
(records are written with the caller's token).

Threads: reactor thread only (the queue has no lock).
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Sequence

import attrs
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.python.failure import Failure
from twisted.logger import Logger

from pachs3gw.gateway._pfsutil import ensure_repo
from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient

log = Logger()

#: Bounds of one group commit of metadata (a single put is never split).
MAX_BATCH_ENTRIES = 1000
MAX_BATCH_BYTES = 4 * 1024 * 1024


@attrs.frozen
class PreparedEntry:
    """One record, serialised when it is put."""

    rid: str
    commit_id: str
    digest: str
    record: Any
    path: str
    data: bytes
    #: The empty listing-index file of the record's (key, content, ETag).
    index: str


@attrs.define(eq=False)
class _PendingPut:
    """One :meth:`MetaWriter.put` call waiting for the commit that holds it."""

    client: PfsClient
    entries: Sequence[PreparedEntry]
    size: int
    waiter: Deferred[None]

    def paths(self) -> set[str]:
        return {e.path for e in self.entries}


class MetaWriter:
    """The metadata repo's writer loop (see the module doc).

    :param written: called with a batch's entries once they are durable
        (before the callers are released), to update caches.
    """

    def __init__(
        self, repo: str, branch: str, written: Callable[[Sequence[PreparedEntry]], None]
    ) -> None:
        self._repo = repo
        self._branch = branch
        self._written = written
        self._repo_ready = False
        #: Puts waiting for the metadata commit in flight to finish (oldest first).
        self._queue: collections.deque[_PendingPut] = collections.deque()
        #: A metadata commit is in flight (the writer loop runs).
        self._writing = False
        #: Counters for tests and benchmarks.
        self.commits = 0

    async def put(self, client: PfsClient, entries: Sequence[PreparedEntry]) -> None:
        """Write ``entries`` in one metadata commit; returns once it has finished.

        Raises what the commit failed with (for every caller of the batch).
        Cancelling the call only stops waiting: the queued records are still
        written.
        """
        if not entries:
            return
        waiter: Deferred[None] = Deferred()
        size = sum(len(e.data) + len(e.path) + len(e.index) for e in entries)
        self._queue.append(_PendingPut(client, entries, size, waiter))
        if not self._writing:
            self._send_next()
        await waiter

    def _send_next(self) -> None:
        """Send the next batch from the (non-empty) queue as one commit."""
        self._writing = True
        batch = self._take_batch()
        d = ensureDeferred(self._commit(batch))
        d.addCallback(self._committed, batch)
        d.addErrback(self._writer_failed, batch)

    def _writer_failed(self, failure: Failure, batch: list[_PendingPut]) -> None:
        """A bug in the writer loop: log it, release the batch, let the next put restart it."""
        log.failure("metadata writer failed", failure=failure)
        self._writing = False
        for pending in batch:
            if not pending.waiter.called:
                pending.waiter.errback(failure)

    def _committed(self, outcome: BaseException | None, batch: list[_PendingPut]) -> None:
        """A commit finished: send the next batch, then release this one's callers.

        The next commit starts before the callers resume, and with nothing
        queued ``_writing`` is cleared first, so a put made from a released
        caller goes out at once instead of waiting for a turn of this loop.
        """
        if self._queue:
            self._send_next()
        else:
            self._writing = False
        for pending in batch:
            if pending.waiter.called:  # the caller cancelled its wait
                continue
            if outcome is None:
                pending.waiter.callback(None)
            else:
                pending.waiter.errback(Failure(outcome, type(outcome), outcome.__traceback__))

    def _take_batch(self) -> list[_PendingPut]:
        """The oldest put, plus the queued ones that can join its commit.

        A put joins if it has the same token and the batch stays within the
        bounds. A put left in the queue blocks later ones that write the same
        record paths, so writes to one record still commit in call order.
        """
        first = self._queue.popleft()
        batch = [first]
        count, size = len(first.entries), first.size
        token = first.client.token
        kept: list[_PendingPut] = []
        blocked: set[str] = set()
        full = False
        for pending in self._queue:
            paths = pending.paths()
            if full or pending.client.token != token or not blocked.isdisjoint(paths):
                kept.append(pending)
                blocked |= paths
                continue
            too_many = count + len(pending.entries) > MAX_BATCH_ENTRIES
            if too_many or size + pending.size > MAX_BATCH_BYTES:
                full = True
                kept.append(pending)
                continue
            batch.append(pending)
            count += len(pending.entries)
            size += pending.size
        self._queue = collections.deque(kept)
        return batch

    async def _commit(self, batch: list[_PendingPut]) -> BaseException | None:
        """Write a batch in one ModifyFile; what its callers get (never raises).

        A failure is returned (not raised, and not as a Failure: a Deferred
        would take it for an error) for every caller of the batch.
        """
        client = batch[0].client
        entries = [e for pending in batch for e in pending.entries]
        last = {e.path: e for e in entries}
        requests = [pfs_client.set_commit(refs.branch_head(self._repo, self._branch))]
        indexed: set[str] = set()
        for e in entries:
            if last[e.path] is e:
                requests.append(pfs_client.delete_file(e.path))
                requests.append(pfs_client.add_bytes(e.path, e.data))
            if e.index not in indexed:
                indexed.add(e.index)
                requests.append(pfs_client.delete_file(e.index))
                requests.append(pfs_client.add_empty(e.index))
        try:
            if not self._repo_ready:
                await ensure_repo(client, self._repo, self._branch)
                self._repo_ready = True
            self.commits += 1
            # Every record describes a data commit its writer finishes next,
            # on the same server: that FinishCommit's sync covers this commit.
            await client.modify_file(requests, defer_sync=True)
        except Exception as e:
            if isinstance(e, pfs_errors.PfsError):
                log.warn(
                    "metadata write failed ({records} record(s); their writes fail): {error}",
                    records=len(last),
                    error=e,
                )
                self._repo_ready = False
            return e
        self._written(entries)
        return None
