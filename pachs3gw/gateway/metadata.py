"""S3 metadata kept beside PFS, in the internal repo ``_s3gateway_meta_``.

PFS stores bytes only. What S3 clients expect back -- the MD5 ETag (or the
multipart one), content headers, ``x-amz-meta-*``, checksums, part sizes --
is a small JSON record in the internal repo, never in the user's repo.

Every write stores its own record, named by what it describes and by the
commit that wrote it::

    /v/<rid>/<commit id>.<digest>                            one write's record (JSON)
    /index/<project>/<repo>/<hex(key)>/<pfs hash>.<etag>     empty, for listings
    /records/<rid[:2]>/<rid>                                 older gateways' record (read only)

``rid = sha256(project/repo, key, PFS content hash)`` and ``digest`` is a
hash of the record's JSON. A reader knows the key and, from InspectFile, the
content hash, so it finds the records of that content under ``/v/<rid>/``:

- a file changed outside the gateway (pachctl, a pipeline) has another hash,
  no record matches, and it is served with ETag = hex PFS hash and a
  Content-Type guessed from the key (:func:`fallback_record`);
- usually there is one record, or several with one digest (the same bytes
  written again with the same headers): that is the answer;
- when the same bytes were written to the key with different headers, the
  version read at commit X is described by X's own record if X wrote one,
  else by the record of X's nearest ancestor that wrote one (ListCommit back
  from X, bounded; commits finished as discarded are skipped). So a version
  keeps its own metadata: two writes never share or overwrite one record.
- content written by older gateways has only ``/records/<rid>``: used when
  ``/v/<rid>/`` is empty.

Records are written by the branch writer (:mod:`pachs3gw.gateway.commits`)
into this repo while the data commit is still open, and the data commit is
finished only after they are durable: a version that can be read always has
its record. A write that dies in between leaves a record that names a commit
that never holds those bytes (it is discarded or dropped), which no read picks.

Records never change once written, so what this process learnt is cached in
a bounded LRU, write-through for its own writes: a read at the commit that
wrote a record is answered from the cache; a read at a later commit reads
the content's record list once (is there another record of the same bytes?),
then is answered from the cache too. Several gateway processes over one
pachd: another gateway's new record for bytes this one has cached is seen
after eviction.

HEAD/GET read the record: one ListFile of ``/v/<rid>/`` and one GetFile,
then cached. A listing page needs only ETags: for the keys the cache does not
know, one WalkFile over the index range of the page's keys returns them all
(``hex(UTF-8 key)`` sorts like the key's bytes, and ``/`` below every hex
digit). The walk is capped; past the cap, or when one content has several
ETags (a single PUT and a multipart upload of the same bytes), keys are
resolved one by one.

Threads: every method is called on the reactor thread.
"""

from __future__ import annotations

import collections
from typing import Any, Iterable, Sequence

import attrs
from twisted.internet.defer import DeferredSemaphore, gatherResults
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.threadpool import ThreadPool
from twisted.logger import Logger

from pachs3gw.gateway._metawriter import MetaWriter, PreparedEntry
from pachs3gw.gateway._pfsutil import DISCARDED_DESCRIPTION, read_bytes
from pachs3gw.gateway.records import (
    DEFAULT_CONTENT_TYPE,
    Record,
    fallback_record,
    index_dir,
    index_path,
    record_id,
    record_path,
    version_record_path,
    versions_dir,
)
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs

log = Logger()

META_REPO = "_s3gateway_meta_"
META_BRANCH = "master"
#: Commits looked at, back from the commit read, to tell which of several
#: records of one content describes it.
WRITER_SEARCH_LIMIT = 1000
#: Reads of records in flight for one page.
FETCH_CONCURRENCY = 8


#: The commit ID standing for the legacy ``/records/`` record in :class:`_Known`.
LEGACY = ""


@attrs.define
class _Known:
    """What this process knows of one content's records (immutable facts)."""

    #: commit ID → digest of the record it wrote (:data:`LEGACY`: the old layout's)
    entries: dict[str, str] = attrs.Factory(dict)
    #: digest → record, as far as read
    records: dict[str, Record] = attrs.Factory(dict)
    #: ``entries`` is everything the store held when it was read
    complete: bool = False

    def settles(self, at_id: str | None) -> bool:
        """Whether the record of a read at ``at_id`` can be chosen without asking PFS."""
        return self.complete or (at_id is not None and at_id in self.entries)

    def loaded_record(self, at_id: str | None) -> Record | None:
        """The record of a read at ``at_id``, if this settles which and has it loaded."""
        if not self.entries or not self.settles(at_id):
            return None
        digest = self.only_digest() or (self.entries.get(at_id) if at_id else None)
        return self.records.get(digest) if digest else None

    def only_digest(self) -> str | None:
        if len(self.entries) == 1:
            return next(iter(self.entries.values()))
        digests = set(self.entries.values())
        return digests.pop() if len(digests) == 1 else None

    def merge(self, other: _Known) -> None:
        self.entries.update(other.entries)
        self.records.update(other.records)
        self.complete = self.complete or other.complete


def _commit_id(at: pfs.Commit | None) -> str | None:
    """The concrete ID of a read's commit (None for a branch head or ``id^``)."""
    if at is None or len(at.id) != 32:
        return None
    return at.id


def _per_item(at: Any, n: int) -> list[pfs.Commit | None]:
    if at is None or isinstance(at, pfs.Commit):
        return [at] * n
    ats = list(at)
    assert len(ats) == n
    return ats


class MetadataStore:
    """Records in ``_s3gateway_meta_`` with an LRU in front.

    One store is shared by all backends of a factory (the cache is the
    point); each call takes the caller's :class:`PfsClient`, so records are
    read and written with the caller's token.
    """

    def __init__(
        self,
        reactor: IReactorFromThreads,
        pool: ThreadPool,
        cache_size: int = 65536,
        fetch_concurrency: int = FETCH_CONCURRENCY,
    ) -> None:
        self._reactor = reactor
        self._pool = pool
        self._cache: collections.OrderedDict[str, _Known] = collections.OrderedDict()
        self._cache_size = cache_size
        self._fetch_concurrency = fetch_concurrency
        #: ETags only, as learnt from the index by listings (one per content).
        self._etags: collections.OrderedDict[str, str | None] = collections.OrderedDict()
        self._writer = MetaWriter(META_REPO, META_BRANCH, self._written)
        #: Counters for tests and benchmarks.
        self.fetches = 0
        self.index_walks = 0
        self.writer_searches = 0
        self.hits = 0

    @property
    def commits(self) -> int:
        """Metadata commits made by this store."""
        return self._writer.commits

    # cache ---------------------------------------------------------------

    def _remember(self, rid: str, known: _Known) -> _Known:
        cached = self._cache.get(rid)
        if cached is not None and cached is not known:
            cached.merge(known)
            known = cached
        self._cache[rid] = known
        self._cache.move_to_end(rid)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return known

    def _remember_etag(self, rid: str, etag: str | None) -> None:
        self._etags[rid] = etag
        self._etags.move_to_end(rid)
        while len(self._etags) > self._cache_size:
            self._etags.popitem(last=False)

    def _written(self, entries: Sequence[PreparedEntry]) -> None:
        """The writer's callback: ``entries`` are durable; cache them."""
        for e in entries:
            known = _Known({e.commit_id: e.digest}, {e.digest: e.record})
            self._remember(e.rid, known)
            self._etags.pop(e.rid, None)

    # reads -----------------------------------------------------------------

    async def _load(self, client: PfsClient, rid: str) -> _Known:
        """Every record entry of one content (names only), or the legacy record."""
        self.fetches += 1
        head = refs.branch_head(META_REPO, META_BRANCH)
        known = _Known(complete=True)
        try:
            listed = await client.list_files(refs.file(head, versions_dir(rid)))
        except (pfs_errors.NotFound, pfs_errors.NotARegularFile, pfs_errors.PermissionDenied):
            listed = []
        for info in listed:
            commit_id, _, digest = info.file.path.rsplit("/", 1)[-1].partition(".")
            if digest:
                known.entries[commit_id] = digest
        if known.entries:
            return known
        legacy = await self._read_record(client, record_path(rid))
        if legacy is not None:
            digest = legacy.digest()
            known.entries[LEGACY] = digest
            known.records[digest] = legacy
        return known

    async def _read_record(self, client: PfsClient, path: str) -> Record | None:
        head = refs.branch_head(META_REPO, META_BRANCH)
        try:
            data = await read_bytes(client, self._reactor, self._pool, refs.file(head, path))
        except (pfs_errors.NotFound, pfs_errors.NotARegularFile, pfs_errors.PermissionDenied):
            return None
        try:
            return Record.from_json(data)
        except (ValueError, KeyError, TypeError):
            log.warn("ignoring malformed metadata record {path}", path=path)
            return None

    async def _writer_of(
        self, client: PfsClient, project: str, repo: str, at: pfs.Commit, candidates: set[str]
    ) -> str | None:
        """The nearest commit at or before ``at`` that is one of ``candidates``."""
        self.writer_searches += 1
        try:
            history = await client.list_commits(
                refs.repo(repo, project), to=at, number=WRITER_SEARCH_LIMIT
            )
        except pfs_errors.NotFound:
            return None
        for info in history:
            if info.commit.id in candidates and info.description != DISCARDED_DESCRIPTION:
                return info.commit.id
        return None

    async def _choose(
        self,
        client: PfsClient,
        project: str,
        repo: str,
        rid: str,
        known: _Known,
        at: pfs.Commit | None,
    ) -> Record | None:
        """The record describing the content read at ``at`` (None: there is none)."""
        if not known.entries:
            return None
        digest = known.only_digest()
        at_id = _commit_id(at)
        if digest is None and at_id is not None:
            digest = known.entries.get(at_id)
        if digest is None and at is not None:
            writer = await self._writer_of(client, project, repo, at, set(known.entries))
            if writer is not None:
                digest = known.entries[writer]
        if digest is None:
            # No commit of the line wrote one (or too far back): the legacy
            # record if any, else the newest-looking one.
            digest = known.entries.get(LEGACY) or known.entries[max(known.entries)]
        record = known.records.get(digest)
        if record is None:
            writers = sorted(c for c, d in known.entries.items() if d == digest)
            path = record_path(rid) if writers[0] == LEGACY else (
                version_record_path(rid, writers[0], digest)
            )
            record = await self._read_record(client, path)
            if record is not None:
                known.records[digest] = record
        return record

    async def get(
        self,
        client: PfsClient,
        project: str,
        repo: str,
        key: str,
        pfs_hash: bytes,
        at: pfs.Commit | None = None,
    ) -> Record:
        """The record for the content ``pfs_hash`` of ``key`` read at ``at``, or the fallback."""
        rid = record_id(project, repo, key, pfs_hash)
        known = self._cache.get(rid)
        record = known.loaded_record(_commit_id(at)) if known is not None else None
        if record is not None:
            # The usual HEAD/GET, answered here without get_many's semaphore
            # and gathered Deferreds (~15% of a 4 KiB GET's reactor time).
            self._cache.move_to_end(rid)
            self.hits += 1
            return record
        found = await self.get_many(client, project, repo, [(key, pfs_hash)], at)
        return found[0]

    async def get_many(
        self,
        client: PfsClient,
        project: str,
        repo: str,
        items: Sequence[tuple[str, bytes]],
        at: pfs.Commit | Sequence[pfs.Commit | None] | None = None,
    ) -> list[Record]:
        """Records for a page of ``(key, pfs_hash)`` read at ``at`` (one commit, or one
        per item): what the cache settles is free, the rest is read concurrently (a
        bounded number at a time)."""
        ats = _per_item(at, len(items))
        rids = [record_id(project, repo, key, h) for key, h in items]
        known: dict[str, _Known] = {}
        missing: list[str] = []
        for rid, where in zip(rids, ats):
            if rid in known or rid in missing:
                continue
            cached = self._cache.get(rid)
            if cached is not None and cached.settles(_commit_id(where)):
                self._cache.move_to_end(rid)
                self.hits += 1
                known[rid] = cached
            else:
                missing.append(rid)
        semaphore = DeferredSemaphore(self._fetch_concurrency)
        if missing:
            loaded = await gatherResults(
                [semaphore.run(self._load, client, rid) for rid in missing], consumeErrors=True
            )
            for rid, found in zip(missing, loaded):
                known[rid] = self._remember(rid, found)
        chosen = await gatherResults(
            [
                semaphore.run(self._choose, client, project, repo, rid, known[rid], where)
                for rid, where in zip(rids, ats)
            ],
            consumeErrors=True,
        )
        return [
            record if record is not None else fallback_record(key, h)
            for record, (key, h) in zip(chosen, items)
        ]

    async def etags(
        self,
        client: PfsClient,
        project: str,
        repo: str,
        items: Sequence[tuple[str, bytes]],
        at: pfs.Commit | Sequence[pfs.Commit | None] | None = None,
    ) -> list[str]:
        """ETags for a listing page of ``(key, pfs_hash)`` read at ``at`` (one commit,
        or one per item).

        From the caches if known; else one capped WalkFile of the index over
        the page's key range; what the walk could not settle is read per key.
        """
        ats = _per_item(at, len(items))
        rids = [record_id(project, repo, key, h) for key, h in items]
        etags: list[str | None] = [None] * len(items)
        unknown: list[int] = []
        for i, rid in enumerate(rids):
            at_id = _commit_id(ats[i])
            cached = self._cache.get(rid)
            record: Record | None = None
            if cached is not None and cached.settles(at_id):
                if not cached.entries:
                    etags[i] = ""
                    continue
                record = cached.loaded_record(at_id)
            if record is not None:
                self.hits += 1
                etags[i] = record.etag
            elif rid in self._etags:
                self._etags.move_to_end(rid)
                self.hits += 1
                etags[i] = self._etags[rid] or ""
            else:
                unknown.append(i)
        if len(unknown) > 1:
            wanted = {(items[i][0].encode("utf-8").hex(), items[i][1].hex()) for i in unknown}
            found, complete = await self._walk_index(client, project, repo, wanted)
            still = []
            for i in unknown:
                key, h = items[i]
                names = found.get((key.encode("utf-8").hex(), h.hex()), set())
                if len(names) == 1 or (not names and complete):
                    etag = next(iter(names)) if names else None
                    self._remember_etag(rids[i], etag)
                    etags[i] = etag or ""
                else:
                    still.append(i)
            unknown = still
        if unknown:
            records = await self.get_many(
                client, project, repo, [items[i] for i in unknown], [ats[i] for i in unknown]
            )
            for i, record in zip(unknown, records):
                etags[i] = "" if record.derived else record.etag
        return [etag or h.hex() for etag, (_, h) in zip(etags, items)]

    async def _walk_index(
        self, client: PfsClient, project: str, repo: str, wanted: set[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], set[str]], bool]:
        """``(hex key, hash hex) -> etags`` over the range of ``wanted``; and
        whether the walk covered the whole range (then absence means no record)."""
        self.index_walks += 1
        hex_keys = sorted({hk for hk, _ in wanted})
        base = index_dir(project, repo)
        marker = base + hex_keys[0]
        upper = base + hex_keys[-1] + "0"  # "/" < "0": past the last key's entries
        budget = 4 * len(wanted) + 64
        head = refs.file(refs.branch_head(META_REPO, META_BRANCH), base)
        found: dict[tuple[str, str], set[str]] = {}
        seen = 0
        while seen < budget:
            want = min(budget - seen, 1000)
            try:
                batch = await client.walk_files(head, after=marker, number=want)
            except (pfs_errors.NotFound, pfs_errors.NotARegularFile, pfs_errors.PermissionDenied):
                return found, True
            for info in batch:
                path = info.file.path
                marker = path
                if path >= upper:
                    return found, True
                if info.file_type == pfs.DIR:
                    continue
                hex_key, _, name = path[len(base) :].partition("/")
                pfs_hash, _, etag = name.partition(".")
                if (hex_key, pfs_hash) in wanted:
                    found.setdefault((hex_key, pfs_hash), set()).add(etag)
            seen += len(batch)
            if len(batch) < want:
                return found, True
        return found, False

    # writes ------------------------------------------------------------------

    async def put(
        self,
        client: PfsClient,
        project: str,
        repo: str,
        entries: Iterable[tuple[str, bytes, str, Record]],
    ) -> None:
        """Store the records of ``(key, pfs_hash, commit_id, record)``: durable on return.

        Group-committed with other callers' records (see
        :class:`~pachs3gw.gateway._metawriter.MetaWriter`). Raises if the
        metadata commit failed: the data commit must then not be finished.
        """
        prepared = [self._prepare(project, repo, *entry) for entry in entries]
        await self._writer.put(client, prepared)

    @staticmethod
    def _prepare(
        project: str, repo: str, key: str, pfs_hash: bytes, commit_id: str, record: Record
    ) -> PreparedEntry:
        rid = record_id(project, repo, key, pfs_hash)
        digest = record.digest()
        return PreparedEntry(
            rid=rid,
            commit_id=commit_id,
            digest=digest,
            record=record,
            path=version_record_path(rid, commit_id, digest),
            data=record.to_json(pfs_hash.hex(), commit_id),
            index=index_path(project, repo, key, pfs_hash, record.etag),
        )


__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "META_BRANCH",
    "META_REPO",
    "MetadataStore",
    "Record",
    "fallback_record",
    "index_path",
    "record_id",
    "record_path",
    "version_record_path",
]
