"""Each key's history on a branch, from the branch's commits: what ListObjectVersions lists.

A version of a key is a commit that changed it: the commit that wrote new
bytes is the version (its ID is what the PUT returned, and ``?versionId=``
of it reads those bytes); a commit that removed the key is a delete marker.
Neither pachd nor the embedded server can say "the commits that changed
path P" in one call (pachd's own FindCommits walks the commits one by one),
so the gateway derives it once per commit, with DiffFile against the
commit's parent (whose cost in the embedded store follows the commit's
changes, not the tree), and keeps it:

- A commit's changes never change, so a :class:`BranchHistory` is built
  once, oldest commit first, and then only *extended* as the branch head
  moves: a listing after new writes diffs only the new commits. A listing
  page is then a bisection into the sorted keys plus the page itself.
- It is a cache of immutable facts, shared by every caller of one gateway
  process: callers are checked against PFS (InspectBranch with their token)
  before it is read. Several gateways each keep their own.
- Bounded: :data:`MAX_CACHED_CHANGES` changes over all cached branches;
  least recently listed branches are dropped first (and rebuilt when asked).

Threads: reactor thread only (one build per branch at a time: concurrent
listings of a branch wait for the same build).
"""

from __future__ import annotations

import bisect
import collections
from datetime import datetime
from typing import Iterator

import attrs
from twisted.internet.defer import Deferred, DeferredSemaphore, ensureDeferred, gatherResults

from pachs3gw.gateway._pfsutil import to_datetime
from pachs3gw.gateway.buckets import BucketRef
from pachs3gw.gateway.keys import path_to_key
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs

#: Changes (versions and delete markers) kept over all cached branches.
MAX_CACHED_CHANGES = 2_000_000
#: Commits asked for per ListCommit while walking back.
COMMIT_BATCH = 1000
#: DiffFile calls in flight while building.
DIFF_CONCURRENCY = 8


@attrs.frozen
class Change:
    """One version of one key (``file`` set) or a delete marker (``file`` None)."""

    commit_id: str
    #: When the commit finished (a delete marker's LastModified).
    committed: datetime
    file: pfs.FileInfo | None

    @property
    def is_delete_marker(self) -> bool:
        return self.file is None


@attrs.define
class BranchHistory:
    """Every key's changes on one branch, up to the commit ``tip``."""

    tip: str = ""
    #: key → its changes, oldest first.
    by_key: dict[str, list[Change]] = attrs.field(factory=dict)
    #: The keys of ``by_key``, sorted (UTF-8 byte order = code point order).
    keys: list[str] = attrs.field(factory=list)
    changes: int = 0

    def apply(self, commit_id: str, committed: datetime, diff: list[pfs.DiffFileResponse]) -> None:
        """Record one commit's changes (commits are applied oldest first)."""
        for d in diff:
            new = d.new_file if d.HasField("new_file") else None
            old = d.old_file if d.HasField("old_file") else None
            info = new if new is not None else old
            if info is None or info.file_type == pfs.DIR or info.file.path.endswith("/"):
                continue
            key = path_to_key(info.file.path)
            if key is None:
                continue  # not a path the gateway maps a key to
            history = self.by_key.get(key)
            if history is None:
                if new is None:
                    continue  # removed before we ever saw it: nothing to mark
                history = self.by_key[key] = []
                bisect.insort(self.keys, key)
            history.append(Change(commit_id, committed, new))
            self.changes += 1
        self.tip = commit_id

    def newest_first(self, key: str) -> list[Change]:
        return list(reversed(self.by_key.get(key, ())))

    def keys_from(self, start: str, inclusive: bool) -> Iterator[str]:
        """Keys >= ``start`` (or > it), in order."""
        i = (bisect.bisect_left if inclusive else bisect.bisect_right)(self.keys, start)
        while i < len(self.keys):
            yield self.keys[i]
            i += 1

    def first_index_at_or_after(self, key: str) -> int:
        return bisect.bisect_left(self.keys, key)


class HistoryCache:
    """Branch histories by (project, repo, branch), least recently used dropped first."""

    def __init__(self, max_changes: int = MAX_CACHED_CHANGES) -> None:
        self._max = max_changes
        self._histories: collections.OrderedDict[tuple[str, str, str], BranchHistory] = (
            collections.OrderedDict()
        )
        self._building: dict[tuple[str, str, str], Deferred[BranchHistory]] = {}
        #: Counters for tests: commits diffed, full builds started.
        self.diffed = 0
        self.builds = 0

    def history(self, client: PfsClient, ref: BucketRef, head: str) -> Deferred[BranchHistory]:
        """The branch's history up to ``head`` (a commit the caller may read)."""
        return ensureDeferred(self._history(client, ref, head))

    async def _history(self, client: PfsClient, ref: BucketRef, head: str) -> BranchHistory:
        name = (ref.project, ref.repo, ref.branch)
        while name in self._building:
            # Another listing is building this branch: wait for it, then reuse it.
            waiter: Deferred[None] = Deferred()

            def wake(result: object, waiter: Deferred[None] = waiter) -> object:
                waiter.callback(None)
                return result

            self._building[name].addBoth(wake)
            await waiter
        known = self._histories.get(name)
        if known is not None and known.tip == head:
            self._histories.move_to_end(name)
            return known
        d = ensureDeferred(self._extend(client, ref, head, known))
        self._building[name] = d
        try:
            return await d
        finally:
            self._building.pop(name, None)

    async def _commits_since(
        self, client: PfsClient, ref: BucketRef, head: str, base: str | None
    ) -> tuple[list[pfs.CommitInfo], bool]:
        """Commits from ``head`` back to ``base`` (exclusive), newest first; and
        whether ``base`` was reached (None: walk to the root)."""
        found: list[pfs.CommitInfo] = []
        to = ref.at(head)
        while True:
            batch = await client.list_commits(ref.pfs_repo(), to=to, number=COMMIT_BATCH)
            for info in batch:
                if info.commit.id == base:
                    return found, True
                found.append(info)
            if len(batch) < COMMIT_BATCH or not batch[-1].parent_commit.id:
                return found, base is None
            to = refs.commit(ref.repo, batch[-1].parent_commit.id, ref.project)

    async def _extend(
        self, client: PfsClient, ref: BucketRef, head: str, known: BranchHistory | None
    ) -> BranchHistory:
        """Diff the commits after ``known.tip`` up to ``head``, and apply them oldest first."""
        name = (ref.project, ref.repo, ref.branch)
        new, reached = await self._commits_since(
            client, ref, head, known.tip if known is not None else None
        )
        if known is not None and not reached:
            # The branch moved to a commit that does not descend from the known
            # tip (reset, squash): start over.
            known = None
            new, _ = await self._commits_since(client, ref, head, None)
        if known is None:
            self.builds += 1
            history = BranchHistory()
        else:
            history = known
        new.reverse()
        semaphore = DeferredSemaphore(DIFF_CONCURRENCY)
        diffs = await gatherResults(
            [
                semaphore.run(client.diff_file, refs.file(ref.at(c.commit.id), "/"))
                for c in new
            ],
            consumeErrors=True,
        )
        self.diffed += len(new)
        for info, diff in zip(new, diffs):
            finished = info.finished if info.HasField("finished") else info.started
            history.apply(info.commit.id, to_datetime(finished), diff)
        history.tip = head
        self._histories[name] = history
        self._histories.move_to_end(name)
        self._evict()
        return history

    def _evict(self) -> None:
        total = sum(h.changes for h in self._histories.values())
        while total > self._max and len(self._histories) > 1:
            _, dropped = self._histories.popitem(last=False)
            total -= dropped.changes
