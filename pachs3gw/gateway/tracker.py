"""What a factory knows about its branches' commits: which are open here, which finished.

Readers never use an open commit (see ``BackendCore``); this says, without a
PFS call in the common case, whether the commit a read found is one: every
commit this factory's writers finished is known finished, and while one of
its writers holds a branch's commit open, readers go to the parent.

``IN_FLIGHT`` is process-wide: the commits some writer of this process
holds open (every factory's), which a writer never discards as abandoned,
however short its ``abandon_after`` -- it waits for them instead.

Threads: reactor thread only.
"""

from __future__ import annotations

import collections

from twisted.internet.defer import Deferred

from pachs3gw.gateway.buckets import BucketRef

#: Commits some writer of this process holds open → who waits for them.
IN_FLIGHT: dict[str, list[Deferred[None]]] = {}
#: Branches on which a writer of this process has a StartCommit under way (whose
#: commit may already be the branch's open head, not yet in ``IN_FLIGHT``).
STARTING: collections.Counter[tuple[str, str, str]] = collections.Counter()


def wait_closed(commit_id: str) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    IN_FLIGHT[commit_id].append(d)
    return d


def _close(commit_id: str) -> None:
    for d in IN_FLIGHT.pop(commit_id, []):
        if not d.called:
            d.callback(None)


BranchKey = tuple[str, str, str]


def branch_key(ref: BucketRef) -> BranchKey:
    return (ref.project, ref.repo, ref.branch)


class CommitTracker:
    """What one factory knows about its branches' commits, for readers.

    ``open_commit`` is the commit this factory's writer holds open on a
    branch (readers read its parent); ``is_finished`` the commits known
    finished (finished here, or seen finished by a reader), so a read at a
    branch head needs no InspectCommit to know it may use what it found.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._open: dict[BranchKey, str] = {}
        self._finished: collections.OrderedDict[str, None] = collections.OrderedDict()
        #: Open commits of other writers → when this process first saw them open.
        self._first_seen: dict[str, float] = {}
        #: Open commits → their (finished) parent, as readers learnt it.
        self._parents: collections.OrderedDict[str, str] = collections.OrderedDict()

    def open_commit(self, ref: BucketRef) -> str | None:
        return self._open.get(branch_key(ref))

    def opened(self, key: BranchKey, commit_id: str) -> None:
        self._open[key] = commit_id
        IN_FLIGHT.setdefault(commit_id, [])

    def closed(self, key: BranchKey, commit_id: str) -> None:
        if self._open.get(key) == commit_id:
            del self._open[key]
        self._parents.pop(commit_id, None)
        _close(commit_id)

    def is_finished(self, commit_id: str) -> bool:
        if commit_id in self._finished:
            self._finished.move_to_end(commit_id)
            return True
        return False

    def mark_finished(self, commit_id: str) -> None:
        self._finished[commit_id] = None
        self._finished.move_to_end(commit_id)
        while len(self._finished) > self._size:
            self._finished.popitem(last=False)
        self._first_seen.pop(commit_id, None)
        self._parents.pop(commit_id, None)

    def parent_of(self, commit_id: str) -> str | None:
        """The parent of a commit this factory's writer holds open, once a reader learnt it.

        (Only of those: another writer's commit may finish without this
        process noticing, and must then be read itself.)
        """
        if commit_id not in self._open.values():
            return None
        return self._parents.get(commit_id)

    def remember_parent(self, commit_id: str, parent: str) -> None:
        self._parents[commit_id] = parent
        while len(self._parents) > self._size:
            self._parents.popitem(last=False)
        if parent:
            self.mark_finished(parent)

    def open_for(self, commit_id: str, now: float, started: float | None) -> float:
        """How long another writer's commit has been open, as far as we can tell."""
        first = self._first_seen.setdefault(commit_id, now)
        if len(self._first_seen) > self._size:
            self._first_seen.pop(next(iter(self._first_seen)))
        return max(now - first, now - started if started else 0.0)


__all__ = ["IN_FLIGHT", "STARTING", "BranchKey", "CommitTracker", "branch_key", "wait_closed"]
