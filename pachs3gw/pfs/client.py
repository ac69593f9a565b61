"""A typed PFS client for a Twisted program.

Unary calls go out as grpc futures and come back as Deferreds on the reactor
thread; cancelling the Deferred cancels the call. Server streams are started
on the reactor thread and drained in the client's thread pool (never the
reactor's, which also resolves names). ModifyFile takes a request iterator
that grpc consumes on a thread of its own: the iterator may block (it is fed
by an HTTP body), and if it raises, the stream ends with a request every PFS
server refuses (``proto.conventions``), so the server never commits a
half-sent write.

The same client talks to a real pachd and to the embedded server.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import grpc
from google.protobuf import empty_pb2
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from pachs3gw.pfs import errors
from pachs3gw.pfs import refs
from pachs3gw.proto import auth_v2_pb2 as auth
from pachs3gw.proto.conventions import DEFER_SYNC_METADATA, END_OF_STREAM_PATH, abort_request
from pachs3gw.proto import auth_v2_pb2_grpc as auth_grpc
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.proto import pfs_v2_pb2_grpc as pfs_grpc

#: pachd's MaxMsgSize; it sends GetFile chunks of up to 19 MiB.
MAX_MESSAGE_BYTES = 20 * 1024 * 1024
#: What we put in one AddFile message.
UPLOAD_CHUNK_BYTES = 1024 * 1024

CHANNEL_OPTIONS: Sequence[tuple[str, Any]] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Reconnect quickly once the backend comes back after an outage.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    # Keep what a download stream buffers ahead of its reader small: with
    # BDP probing, each stream's window grows to many MiB, and ten parallel
    # ranged GETs (boto3's download_file) would hold them all in memory.
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 2 * 1024 * 1024),
)

#: Deadline of unary calls and listings, seconds: a backend that hangs gets
#: a 503 instead of holding requests forever. Uploads and downloads have none.
DEFAULT_TIMEOUT = 30.0

T = TypeVar("T")

log = Logger()


def open_channel(target: str) -> grpc.Channel:
    """A channel to pachd or the embedded server (``host:port`` or ``unix:PATH``)."""
    return grpc.insecure_channel(target, options=list(CHANNEL_OPTIONS))


# ModifyFile request builders ------------------------------------------------


def set_commit(commit: pfs.Commit) -> pfs.ModifyFileRequest:
    return pfs.ModifyFileRequest(set_commit=commit)


def add_bytes(path: str, data: bytes) -> pfs.ModifyFileRequest:
    """Append ``data`` to ``path`` (AddFile appends within one stream).

    Fields are set one by one: with upb, building the nested message through
    constructor keywords copies the payload several times (~300 MB/s), field
    assignment does not (~20 GB/s).
    """
    request = pfs.ModifyFileRequest()
    request.add_file.path = refs.absolute(path)
    request.add_file.raw.value = data
    return request


def add_empty(path: str) -> pfs.ModifyFileRequest:
    return pfs.ModifyFileRequest(add_file=pfs.AddFile(path=refs.absolute(path)))


def delete_file(path: str) -> pfs.ModifyFileRequest:
    return pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=refs.absolute(path)))


def copy_file(dst: str, src: pfs.File, append: bool = False) -> pfs.ModifyFileRequest:
    return pfs.ModifyFileRequest(
        copy_file=pfs.CopyFile(dst=refs.absolute(dst), src=src, append=append)
    )


def put_file(path: str, chunks: Iterable[bytes]) -> Iterator[pfs.ModifyFileRequest]:
    """Overwrite ``path`` with the bytes of ``chunks`` (delete, then append).

    Chunks larger than :data:`UPLOAD_CHUNK_BYTES` are split; an empty body
    still creates the file.
    """
    yield delete_file(path)
    wrote = False
    for chunk in chunks:
        view = memoryview(chunk)
        for start in range(0, len(view), UPLOAD_CHUNK_BYTES):
            yield add_bytes(path, bytes(view[start : start + UPLOAD_CHUNK_BYTES]))
            wrote = True
    if not wrote:
        yield add_empty(path)


# Reading ------------------------------------------------------------------


class FileReader:
    """The bytes of one file, as a blocking iterator for a worker thread.

    Threads: iterate on a worker thread; ``cancel`` from any thread.
    """

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> Iterator[bytes]:
        try:
            for message in self._call:
                if message.value:
                    yield message.value
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None

    def cancel(self) -> None:
        self._call.cancel()


# The client ----------------------------------------------------------------


class PfsClient:
    """PFS for one caller (an optional Pachyderm token on every call).

    :param timeout: deadline of unary calls and listings (None: none).

    Threads: every method that returns a Deferred is called on the reactor
    thread. :meth:`open_file` and the iterators it returns, and the request
    iterators given to :meth:`modify_file`, are for worker threads.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        reactor: IReactorFromThreads,
        pool: ThreadPool,
        token: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        self._channel = channel
        self._timeout = timeout
        self._reactor = reactor
        self._pool = pool
        self._token = token
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authn-token", token),) if token else ()
        )
        self._pfs = pfs_grpc.APIStub(channel)
        self._auth = auth_grpc.APIStub(channel)

    @property
    def token(self) -> str | None:
        return self._token

    @property
    def reactor(self) -> IReactorFromThreads:
        """The reactor Deferreds fire on."""
        return self._reactor

    @property
    def pool(self) -> ThreadPool:
        """The worker pool streams are drained in (shared with helpers that read files)."""
        return self._pool

    def with_token(self, token: str | None) -> PfsClient:
        """The same channel and pool, acting for another caller."""
        if token == self._token:
            return self
        return PfsClient(self._channel, self._reactor, self._pool, token, self._timeout)

    # plumbing -------------------------------------------------------------

    def _unary(self, method: Any, request: Any) -> Deferred[Any]:
        future = method.future(request, metadata=self._metadata, timeout=self._timeout)
        return self._deferred_from_future(future)

    def _deferred_from_future(self, future: grpc.Future) -> Deferred[Any]:
        def cancel(_: Deferred[Any]) -> None:
            future.cancel()

        result: Deferred[Any] = Deferred(cancel)
        if future.done():
            # Answered on this thread (an in-process read): no hop back.
            _fire(result, future)
            return result

        def deliver(done: grpc.Future) -> None:
            # grpc thread (or this thread if already done).
            self._reactor.callFromThread(_fire, result, done)

        future.add_done_callback(deliver)
        return result

    def _collect(
        self, method: Any, request: Any, keep: Callable[[Any], bool] | None = None
    ) -> Deferred[list[Any]]:
        call = method(request, metadata=self._metadata, timeout=self._timeout)

        def drain() -> list[Any]:
            try:
                return [m for m in call if keep is None or keep(m)]
            except grpc.RpcError as e:
                raise errors.from_rpc_error(e) from None

        if getattr(call, "answers_inline", False):
            # An in-process read the server promises never waits: draining it
            # here costs less than the hop to a worker thread and back.
            return maybeDeferred(drain)
        d = deferToThreadPool(self._reactor, self._pool, drain)
        outer: Deferred[list[Any]] = Deferred(lambda _: call.cancel())
        d.addCallbacks(outer.callback, lambda f: None if outer.called else outer.errback(f))
        return outer

    # projects ---------------------------------------------------------------

    def create_project(self, name: str, description: str = "") -> Deferred[None]:
        return self._unary(
            self._pfs.CreateProject,
            pfs.CreateProjectRequest(project=pfs.Project(name=name), description=description),
        )

    def inspect_project(self, name: str) -> Deferred[pfs.ProjectInfo]:
        return self._unary(
            self._pfs.InspectProject, pfs.InspectProjectRequest(project=pfs.Project(name=name))
        )

    def list_projects(self) -> Deferred[list[pfs.ProjectInfo]]:
        return self._collect(self._pfs.ListProject, pfs.ListProjectRequest())

    # repos -------------------------------------------------------------------

    def create_repo(self, repo: pfs.Repo, description: str = "") -> Deferred[None]:
        return self._unary(
            self._pfs.CreateRepo, pfs.CreateRepoRequest(repo=repo, description=description)
        )

    def inspect_repo(self, repo: pfs.Repo) -> Deferred[pfs.RepoInfo]:
        return self._unary(self._pfs.InspectRepo, pfs.InspectRepoRequest(repo=repo))

    def list_repos(self, repo_type: str = "user") -> Deferred[list[pfs.RepoInfo]]:
        """Repos of one type: ``""`` would include pachd's spec/meta system repos."""
        return self._collect(
            self._pfs.ListRepo,
            pfs.ListRepoRequest(type=repo_type),
            keep=lambda info: not repo_type or info.repo.type == repo_type,
        )

    def delete_repo(self, repo: pfs.Repo, force: bool = False) -> Deferred[None]:
        return self._unary(self._pfs.DeleteRepo, pfs.DeleteRepoRequest(repo=repo, force=force))

    # branches ----------------------------------------------------------------

    def create_branch(
        self,
        branch: pfs.Branch,
        head: pfs.Commit | None = None,
        provenance: Sequence[pfs.Branch] = (),
    ) -> Deferred[None]:
        return self._unary(
            self._pfs.CreateBranch,
            pfs.CreateBranchRequest(branch=branch, head=head, provenance=list(provenance)),
        )

    def inspect_branch(self, branch: pfs.Branch) -> Deferred[pfs.BranchInfo]:
        return self._unary(self._pfs.InspectBranch, pfs.InspectBranchRequest(branch=branch))

    def list_branches(self, repo: pfs.Repo) -> Deferred[list[pfs.BranchInfo]]:
        return self._collect(self._pfs.ListBranch, pfs.ListBranchRequest(repo=repo))

    def delete_branch(self, branch: pfs.Branch, force: bool = False) -> Deferred[None]:
        return self._unary(
            self._pfs.DeleteBranch, pfs.DeleteBranchRequest(branch=branch, force=force)
        )

    # commits -----------------------------------------------------------------

    def start_commit(
        self, branch: pfs.Branch, parent: pfs.Commit | None = None, description: str = ""
    ) -> Deferred[pfs.Commit]:
        return self._unary(
            self._pfs.StartCommit,
            pfs.StartCommitRequest(branch=branch, parent=parent, description=description),
        )

    def finish_commit(
        self, commit: pfs.Commit, error: str = "", description: str = ""
    ) -> Deferred[None]:
        """Finish an open commit (``description``, if set, replaces the commit's)."""
        return self._unary(
            self._pfs.FinishCommit,
            pfs.FinishCommitRequest(commit=commit, error=error, description=description),
        )

    def clear_commit(self, commit: pfs.Commit) -> Deferred[None]:
        """Drop everything written to an open commit so far (it stays open)."""
        return self._unary(self._pfs.ClearCommit, pfs.ClearCommitRequest(commit=commit))

    def drop_commit(self, commit: pfs.Commit) -> Deferred[None]:
        """Delete a commit without children, and its changes (pachd 2.8+).

        Its branch moves back to the parent: no trace is left in the history.
        """
        d = self._unary(self._pfs.DropCommit, pfs.DropCommitRequest(commit=commit))
        return d.addCallback(lambda _: None)

    def inspect_commit(
        self, commit: pfs.Commit, wait: pfs.CommitState = pfs.COMMIT_STATE_UNKNOWN
    ) -> Deferred[pfs.CommitInfo]:
        return self._unary(
            self._pfs.InspectCommit, pfs.InspectCommitRequest(commit=commit, wait=wait)
        )

    def list_commits(
        self,
        repo: pfs.Repo,
        to: pfs.Commit | None = None,
        number: int = 0,
        from_: pfs.Commit | None = None,
    ) -> Deferred[list[pfs.CommitInfo]]:
        """Newest first, from ``to`` (e.g. a branch head) back along its parents."""
        request = pfs.ListCommitRequest(repo=repo, to=to, number=number)
        if from_ is not None:
            getattr(request, "from").CopyFrom(from_)
        return self._collect(self._pfs.ListCommit, request)

    # files --------------------------------------------------------------------

    def modify_file(
        self, requests: Iterable[pfs.ModifyFileRequest], defer_sync: bool = False
    ) -> Deferred[None]:
        """Send one ModifyFile stream, all or nothing; the first request must be :func:`set_commit`.

        Addressed to a branch head that is finished, the server writes one new
        commit atomically when the stream ends. The framing is
        :mod:`pachs3gw.proto.conventions`': when ``requests`` runs out, the
        stream closes with the ``END_OF_STREAM_PATH`` no-op, so the embedded
        server knows it really ended; if ``requests`` raises (bad digest,
        client gone), the stream ends with ``abort_request()`` instead, which
        every PFS server refuses, so nothing is committed even where grpcio
        would take a cancellation for a normal end of stream. The Deferred
        then fails with the iterator's exception.

        ``defer_sync``: the caller will finish a later commit on this server
        that makes this one durable too (:data:`DEFER_SYNC_METADATA`); the
        embedded server then does not sync this one on its own.

        The iterator runs on the transport's request-consumer thread.
        """
        failures: list[Exception] = []

        def framed() -> Iterator[pfs.ModifyFileRequest]:
            try:
                yield from requests
            except Exception as e:  # noqa: BLE001 - re-raised below, on the reactor thread
                # Not GeneratorExit: grpc closing the iterator after the call
                # ended (e.g. the server failed it) is not a request failure.
                failures.append(e)
                yield abort_request()
                return
            yield delete_file(END_OF_STREAM_PATH)

        metadata = self._metadata + (DEFER_SYNC_METADATA,) if defer_sync else self._metadata
        future = self._pfs.ModifyFile.future(framed(), metadata=metadata)
        d = self._deferred_from_future(future)

        def accepted(_: Any) -> None:
            if failures:
                log.error("PFS accepted an aborted ModifyFile: a partial write may be visible")
                raise failures[0]

        def refused(failure: Any) -> Any:
            if failures:
                raise failures[0]
            return failure

        return d.addCallbacks(accepted, refused)

    def open_file(self, file: pfs.File, offset: int = 0) -> FileReader:
        """*Any thread.* Start a GetFile; iterate the reader on a worker thread."""
        call = self._pfs.GetFile(
            pfs.GetFileRequest(file=file, offset=offset), metadata=self._metadata
        )
        return FileReader(call)

    def read_file(self, file: pfs.File, offset: int, length: int) -> Deferred[bytes]:
        """``length`` bytes from ``offset`` at once (for small reads; big ones use :meth:`open_file`)."""
        pieces = self._collect(
            self._pfs.GetFile, pfs.GetFileRequest(file=file, offset=offset)
        )
        return pieces.addCallback(lambda got: b"".join(p.value for p in got)[:length])

    def inspect_file(self, file: pfs.File) -> Deferred[pfs.FileInfo]:
        return self._unary(self._pfs.InspectFile, pfs.InspectFileRequest(file=file))

    def list_files(
        self, file: pfs.File, after: str | None = None, number: int = 0, reverse: bool = False
    ) -> Deferred[list[pfs.FileInfo]]:
        """Children of a directory (or the file itself), from strictly ``after``."""
        request = pfs.ListFileRequest(file=file, number=number, reverse=reverse)
        if after is not None:
            request.paginationMarker.CopyFrom(pfs.File(commit=file.commit, path=after))
        return self._collect(self._pfs.ListFile, request)

    def walk_files(
        self, file: pfs.File, after: str | None = None, number: int = 0, reverse: bool = False
    ) -> Deferred[list[pfs.FileInfo]]:
        """Everything below a path, directories included, in path order."""
        request = pfs.WalkFileRequest(file=file, number=number, reverse=reverse)
        if after is not None:
            request.paginationMarker.CopyFrom(pfs.File(commit=file.commit, path=after))
        return self._collect(self._pfs.WalkFile, request)

    def glob_files(self, commit: pfs.Commit, pattern: str) -> Deferred[list[pfs.FileInfo]]:
        return self._collect(
            self._pfs.GlobFile, pfs.GlobFileRequest(commit=commit, pattern=pattern)
        )

    # auth ---------------------------------------------------------------------

    def who_am_i(self) -> Deferred[auth.WhoAmIResponse]:
        """Raise AuthNotActivated when the backend runs without auth."""
        return self._unary(self._auth.WhoAmI, auth.WhoAmIRequest())

    # history -------------------------------------------------------------------

    def diff_file(
        self, new_file: pfs.File, old_file: pfs.File | None = None
    ) -> Deferred[list[pfs.DiffFileResponse]]:
        """What changed under ``new_file.path``, one response per path, in path order.

        Compared with ``old_file`` if given, else with the same path in the
        parent of ``new_file``'s commit. A response without ``new_file`` is a
        deletion, one without ``old_file`` an addition; directories above a
        change are reported too (pachd's semantics). The embedded server's
        cost follows the number of changes, not the size of the tree.
        """
        request = pfs.DiffFileRequest(new_file=new_file)
        if old_file is not None:
            request.old_file.CopyFrom(old_file)
        return self._collect(self._pfs.DiffFile, request)


def _fire(result: Deferred[Any], done: grpc.Future) -> None:
    """Reactor thread: hand a finished future's outcome to its Deferred."""
    if result.called:  # cancelled by our caller meanwhile
        return
    if done.cancelled():
        result.errback(CancelledError())
        return
    error = done.exception()
    if error is None:
        value = done.result()
        result.callback(None if isinstance(value, empty_pb2.Empty) else value)
    elif isinstance(error, grpc.RpcError):
        result.errback(errors.from_rpc_error(error))
    else:
        result.errback(error)
