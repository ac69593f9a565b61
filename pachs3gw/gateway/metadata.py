"""S3 metadata kept beside PFS, in the internal repo ``_s3gateway_meta_``.

PFS stores bytes only. What S3 clients expect back -- the MD5 ETag (or the
multipart one), content headers, ``x-amz-meta-*``, checksums, part sizes --
is a small JSON record in the internal repo, never in the user's repo.

A record is addressed by ``sha256(project/repo, key, PFS content hash)``:
the object's identity plus what its bytes are. So

- a record describes exactly one content of one key: if the file is changed
  outside the gateway (pachctl, a pipeline), its hash changes, no record
  matches, and the object is served with ETag = hex PFS hash and a
  Content-Type guessed from the key;
- branches and old commits that hold the same bytes at the same key share
  the record, so versions keep their metadata;
- records never change for a given content, except when the very same bytes
  are PUT again at the same key with different headers (then the newer
  metadata applies to every version with those bytes). So they are cached in
  a bounded LRU, written through by this process's own writes. (Several
  gateway processes over one pachd may serve stale headers for that one case
  until their cache evicts the entry.)

Writes go data commit first, metadata commit second: a crash in between
degrades the metadata (PFS-hash ETag), never loses data. A failed metadata
write is logged and does not fail the S3 request for the same reason.

Paths in the internal repo (branch ``master``)::

    /records/<id[:2]>/<id>                                   the JSON record
    /index/<project>/<repo>/<hex(key)>/<pfs hash>.<etag>     empty

HEAD/GET read the record (one GetFile, then cached). A listing page needs
only ETags: for the keys the cache does not know, one WalkFile over the
index range of the page's keys returns them all (``hex(UTF-8 key)`` sorts
like the key's bytes, and ``/`` below every hex digit), instead of one read
per key. The walk is capped (a key overwritten many times leaves one index
entry per content); past the cap, the remaining keys are read one by one.

Writes are group-committed: at most one metadata ModifyFile is in flight.
The first :meth:`MetadataStore.put` goes out at once (no timer); puts that
arrive meanwhile queue, and when the commit finishes the queued ones go out
together in ONE ModifyFile (bounded by :data:`MAX_BATCH_ENTRIES` and
:data:`MAX_BATCH_BYTES`; one put is never split). Each caller is released
when the commit holding its entries has finished, so "data commit first,
metadata second" holds per request. A batch only joins puts made with the
same Pachyderm token (records are written with the caller's token).
"""

from __future__ import annotations

import collections
import hashlib
import json
import mimetypes
from typing import Any, Iterable, Sequence

import attrs
from twisted.internet.defer import Deferred, DeferredSemaphore, ensureDeferred, gatherResults
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.logger import Logger

from pachs3gw.gateway._pfsutil import ensure_repo, read_bytes
from pachs3gw.pfs import client as pfs_client
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfs.client import PfsClient
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.s3.interfaces import DEFAULT_CONTENT_TYPE, ObjectMetadata

log = Logger()

META_REPO = "_s3gateway_meta_"
META_BRANCH = "master"
#: Bounds of one group commit of metadata (a single put is never split).
MAX_BATCH_ENTRIES = 1000
MAX_BATCH_BYTES = 4 * 1024 * 1024


@attrs.frozen
class Record:
    """What S3 knows about one content of one key beyond its bytes."""

    etag: str
    metadata: ObjectMetadata = attrs.field(factory=ObjectMetadata)
    checksums: dict[str, str] = attrs.field(factory=dict)
    part_sizes: tuple[int, ...] = ()
    #: Each part's verified checksums (multipart uploads created with an algorithm).
    part_checksums: tuple[dict[str, str], ...] = ()
    #: True for :func:`fallback_record` (no record: the ETag is the PFS hash).
    derived: bool = attrs.field(default=False, eq=False)

    def to_json(self, pfs_hash: str) -> bytes:
        return json.dumps(
            {
                "v": 1,
                "pfs_hash": pfs_hash,
                "etag": self.etag,
                "headers": self.metadata.headers,
                "user": self.metadata.user,
                "checksums": self.checksums,
                "part_sizes": list(self.part_sizes),
                **({"part_checksums": list(self.part_checksums)} if self.part_checksums else {}),
            },
            ensure_ascii=False,
            sort_keys=True,
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Record:
        raw = json.loads(data.decode("utf-8"))
        return cls(
            etag=str(raw["etag"]),
            metadata=ObjectMetadata(
                headers=dict(raw.get("headers") or {}), user=dict(raw.get("user") or {})
            ),
            checksums=dict(raw.get("checksums") or {}),
            part_sizes=tuple(int(n) for n in raw.get("part_sizes") or ()),
            part_checksums=tuple(dict(c) for c in raw.get("part_checksums") or ()),
        )


def fallback_record(key: str, pfs_hash: bytes) -> Record:
    """For a file no record describes: ETag = hex PFS hash, type guessed from the key."""
    guessed, encoding = mimetypes.guess_type(key, strict=False)
    headers = {"content-type": guessed or DEFAULT_CONTENT_TYPE}
    if encoding:
        headers["content-encoding"] = encoding
    return Record(etag=pfs_hash.hex(), metadata=ObjectMetadata(headers=headers), derived=True)


def record_id(project: str, repo: str, key: str, pfs_hash: bytes) -> str:
    digest = hashlib.sha256()
    for part in (project, repo, key):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    digest.update(pfs_hash)
    return digest.hexdigest()


def record_path(rid: str) -> str:
    return f"/records/{rid[:2]}/{rid}"


def index_dir(project: str, repo: str) -> str:
    return f"/index/{project}/{repo}/"


def index_path(project: str, repo: str, key: str, pfs_hash: bytes, etag: str) -> str:
    return f"{index_dir(project, repo)}{key.encode('utf-8').hex()}/{pfs_hash.hex()}.{etag}"


@attrs.frozen
class _Entry:
    """One record write, prepared (serialised) when :meth:`MetadataStore.put` is called."""

    rid: str
    record: Record
    path: str
    data: bytes
    index: str


@attrs.define(eq=False)
class _PendingPut:
    """One :meth:`MetadataStore.put` call waiting for the commit that holds it."""

    client: PfsClient
    entries: list[_Entry]
    size: int
    waiter: Deferred[None]

    def paths(self) -> set[str]:
        return {e.path for e in self.entries}


class MetadataStore:
    """Records in ``_s3gateway_meta_`` with an LRU in front.

    One store is shared by all backends of a factory (the cache is the
    point); each call takes the caller's :class:`PfsClient`, so records are
    read and written with the caller's token.

    Threads: every method is called on the reactor thread. The write queue
    (group commit, see the module doc) relies on it: it has no lock.
    """

    def __init__(
        self,
        reactor: Any,
        pool: ThreadPool,
        cache_size: int = 65536,
        fetch_concurrency: int = 8,
    ) -> None:
        self._reactor = reactor
        self._pool = pool
        self._cache: collections.OrderedDict[str, Record | None] = collections.OrderedDict()
        self._cache_size = cache_size
        self._fetch_concurrency = fetch_concurrency
        #: ETags only, as learnt from the index by listings.
        self._etags: collections.OrderedDict[str, str | None] = collections.OrderedDict()
        self._repo_ready = False
        #: Puts waiting for the metadata commit in flight to finish (oldest first).
        self._queue: collections.deque[_PendingPut] = collections.deque()
        #: A metadata commit is in flight (the writer loop runs).
        self._writing = False
        #: Counters for tests and benchmarks.
        self.commits = 0
        self.fetches = 0
        self.index_walks = 0
        self.hits = 0

    # cache ---------------------------------------------------------------

    def _remember(self, rid: str, record: Record | None) -> None:
        self._cache[rid] = record
        self._cache.move_to_end(rid)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _remember_etag(self, rid: str, etag: str | None) -> None:
        self._etags[rid] = etag
        self._etags.move_to_end(rid)
        while len(self._etags) > self._cache_size:
            self._etags.popitem(last=False)

    def _cached(self, rid: str) -> tuple[bool, Record | None]:
        if rid in self._cache:
            self._cache.move_to_end(rid)
            self.hits += 1
            return True, self._cache[rid]
        return False, None

    # reads -----------------------------------------------------------------

    async def _fetch(self, client: PfsClient, rid: str) -> Record | None:
        self.fetches += 1
        head = refs.branch_head(META_REPO, META_BRANCH)
        try:
            data = await read_bytes(client, self._reactor, self._pool, refs.file(head, record_path(rid)))
        except (pfs_errors.NotFound, pfs_errors.PermissionDenied):
            return None
        try:
            return Record.from_json(data)
        except (ValueError, KeyError, TypeError):
            log.warn("ignoring malformed metadata record {record}", record=rid)
            return None

    async def get(
        self, client: PfsClient, project: str, repo: str, key: str, pfs_hash: bytes
    ) -> Record:
        """The record for one content of one key, or the fallback."""
        found = await self.get_many(client, project, repo, [(key, pfs_hash)])
        return found[0]

    async def get_many(
        self,
        client: PfsClient,
        project: str,
        repo: str,
        items: Sequence[tuple[str, bytes]],
    ) -> list[Record]:
        """Records for a page of ``(key, pfs_hash)``: cached ones free, misses fetched
        concurrently (a bounded number at a time)."""
        rids = [record_id(project, repo, key, h) for key, h in items]
        results: list[Record | None] = [None] * len(items)
        missing: dict[str, list[int]] = {}
        for i, rid in enumerate(rids):
            known, record = self._cached(rid)
            if known:
                results[i] = record
            else:
                missing.setdefault(rid, []).append(i)
        if missing:
            semaphore = DeferredSemaphore(self._fetch_concurrency)
            order = list(missing)
            fetched = await gatherResults(
                [semaphore.run(self._fetch, client, rid) for rid in order],
                consumeErrors=True,
            )
            for rid, record in zip(order, fetched):
                self._remember(rid, record)
                for i in missing[rid]:
                    results[i] = record
        return [
            record if record is not None else fallback_record(key, h)
            for record, (key, h) in zip(results, items)
        ]

    async def etags(
        self,
        client: PfsClient,
        project: str,
        repo: str,
        items: Sequence[tuple[str, bytes]],
    ) -> list[str]:
        """ETags for a listing page of ``(key, pfs_hash)``.

        From the caches if known; else one capped WalkFile of the index over
        the page's key range; what the walk could not settle is read per key.
        """
        rids = [record_id(project, repo, key, h) for key, h in items]
        etags: list[str | None] = [None] * len(items)
        unknown: list[int] = []
        for i, rid in enumerate(rids):
            if rid in self._cache:
                record = self._cached(rid)[1]
                etags[i] = record.etag if record is not None else ""
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
                etag = found.get((key.encode("utf-8").hex(), h.hex()))
                if etag is not None or complete:
                    self._remember_etag(rids[i], etag)
                    etags[i] = etag or ""
                else:
                    still.append(i)
            unknown = still
        if unknown:
            records = await self.get_many(client, project, repo, [items[i] for i in unknown])
            for i, record in zip(unknown, records):
                etags[i] = "" if record.derived else record.etag
        return [etag or h.hex() for etag, (_, h) in zip(etags, items)]

    async def _walk_index(
        self, client: PfsClient, project: str, repo: str, wanted: set[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], str], bool]:
        """``(hex key, hash hex) -> etag`` over the range of ``wanted``; and
        whether the walk covered the whole range (then absence means no record)."""
        self.index_walks += 1
        hex_keys = sorted({hk for hk, _ in wanted})
        base = index_dir(project, repo)
        marker = base + hex_keys[0]
        upper = base + hex_keys[-1] + "0"  # "/" < "0": past the last key's entries
        budget = 4 * len(wanted) + 64
        head = refs.file(refs.branch_head(META_REPO, META_BRANCH), base)
        found: dict[tuple[str, str], str] = {}
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
                    found[(hex_key, pfs_hash)] = etag
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
        entries: Iterable[tuple[str, bytes, Record]],
    ) -> None:
        """Store records for ``(key, pfs_hash, record)`` in ONE metadata commit.

        Returns when that commit has finished. The commit may also carry
        other callers' records (group commit, see the module doc); with no
        metadata commit in flight it goes out at once. Failures are logged,
        not raised: the data commit already happened. Cancelling the call
        only stops waiting: the queued records are still written.
        """
        prepared = [self._prepare(project, repo, *entry) for entry in entries]
        if not prepared:
            return
        waiter: Deferred[None] = Deferred()
        size = sum(len(e.data) + len(e.path) + len(e.index) for e in prepared)
        self._queue.append(_PendingPut(client, prepared, size, waiter))
        if not self._writing:
            self._send_next()
        await waiter

    @staticmethod
    def _prepare(project: str, repo: str, key: str, pfs_hash: bytes, record: Record) -> _Entry:
        rid = record_id(project, repo, key, pfs_hash)
        return _Entry(
            rid=rid,
            record=record,
            path=record_path(rid),
            data=record.to_json(pfs_hash.hex()),
            index=index_path(project, repo, key, pfs_hash, record.etag),
        )

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

        Several entries for one record path: the last one is written (and
        cached). A PFS failure is logged and drops the batch's cache entries
        (the callers return normally, as the data commit happened); any
        other failure is returned (not raised, not a Failure: a Deferred would
        take it for an error), for every caller of the batch.
        """
        client = batch[0].client
        entries = [e for pending in batch for e in pending.entries]
        last = {e.path: e for e in entries}
        requests = [pfs_client.set_commit(refs.branch_head(META_REPO, META_BRANCH))]
        indexed: set[str] = set()
        for e in entries:
            if last[e.path] is e:
                requests.append(pfs_client.delete_file(e.path))
                requests.append(pfs_client.add_bytes(e.path, e.data))
            if e.index not in indexed:
                indexed.add(e.index)
                requests.append(pfs_client.delete_file(e.index))
                requests.append(pfs_client.add_empty(e.index))
        failure: BaseException | None = None
        try:
            if not self._repo_ready:
                await ensure_repo(client, META_REPO, META_BRANCH)
                self._repo_ready = True
            self.commits += 1
            await client.modify_file(requests)
        except pfs_errors.PfsError as e:
            log.warn(
                "metadata write failed (objects keep PFS-hash ETags; {records} record(s)): {error}",
                records=len(last),
                error=e,
            )
            self._repo_ready = False
            for entry in entries:
                self._cache.pop(entry.rid, None)
                self._etags.pop(entry.rid, None)
        except Exception as e:
            failure = e
        else:
            for entry in entries:
                self._remember(entry.rid, entry.record)
                self._etags.pop(entry.rid, None)
        return failure
