"""The gRPC face of the store: ``pfs_v2.API`` and ``auth_v2.API/WhoAmI``.

Translates protobuf messages to store calls and store errors to gRPC
statuses. Every method runs on a gRPC server worker thread. Any exception
that is not a ``PfsError`` becomes UNKNOWN (and is logged): a bad request
must never take the server down.
"""

from __future__ import annotations

import functools
import io
import tarfile
import threading
import time
from typing import Any, Callable, Iterator, Mapping, Optional, TypeVar, cast

import grpc
from google.protobuf import empty_pb2, wrappers_pb2
from twisted.logger import Logger
from twisted.python.failure import Failure

from pachs3gw.pfsd import _content, _diff, _errors
from pachs3gw.pfsd._errors import PfsError
from pachs3gw.pfsd._messages import (
    repo_pb as _repo_pb,
    commit_pb as _commit_pb,
    parent_pb as _parent_pb,
    ts as _ts,
    commit_info as _commit_info,
    branch_pb as _branch_pb,
    branch_info as _branch_info,
    repo_info as _repo_info,
    file_info as _file_info,
    limit as _limit,
)
from pachs3gw.pfsd._refs import commit_ref as _commit_ref
from pachs3gw.pfsd._refs import commit_repo, names_commit
from pachs3gw.pfsd._refs import project_name as _project
from pachs3gw.pfsd._records import CommitRec, CommitRef
from pachs3gw.pfsd._store import Store
from pachs3gw.pfsd._tree import Tree
from pachs3gw.pfsd._upload import Upload
from pachs3gw.proto import auth_v2_pb2 as auth
from pachs3gw.proto import auth_v2_pb2_grpc as auth_grpc
from pachs3gw.proto import pfs_v2_pb2 as pfs
from pachs3gw.proto.conventions import DEFER_SYNC_METADATA, END_OF_STREAM_PATH
from pachs3gw.proto import pfs_v2_pb2_grpc as pfs_grpc

log = Logger()

#: GetFile message payload. Just under the gateway's mmap threshold
#: (``pachs3gw.malloc``): every larger buffer is a fresh mmap with a page
#: fault per 4 KiB, and a GET copies each piece a few times, so 1 MiB pieces
#: held a 1 GiB GET to ~250 MB/s where 252 KiB pieces reach ~1 GB/s.
READ_PIECE = (256 << 10) - 4096

#: How long after the end of a ModifyFile stream a cancellation may still
#: surface in grpcio (measured: usually < 1 ms, up to ~25 ms with a busy
#: GIL), for streams that end without ``END_OF_STREAM_PATH``. A client that
#: must never commit on abort should not rely on this alone: ours
#: (``PfsClient.modify_file``) ends a failed stream with
#: ``proto.conventions.abort_request()``, a CopyFile from a repo that never
#: exists, which this server (NOT_FOUND) and pachd both refuse.
CANCEL_SETTLE_SECONDS = 0.01

F = TypeVar("F", bound=Callable[..., Any])


class Authenticator:
    """Checks the ``authn-token`` metadata when tokens are configured."""

    def __init__(self, tokens: Optional[Mapping[str, str]]) -> None:
        self.tokens = dict(tokens) if tokens is not None else None

    def check(self, context: grpc.ServicerContext) -> Optional[str]:
        """The caller's username, or None when auth is not active."""
        if self.tokens is None:
            return None
        token = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authn-token":
                token = value if isinstance(value, str) else value.decode()
        if not token:
            raise PfsError(grpc.StatusCode.UNAUTHENTICATED, _errors.NO_TOKEN)
        user = self.tokens.get(token)
        if user is None:
            raise PfsError(grpc.StatusCode.UNAUTHENTICATED, _errors.BAD_TOKEN)
        return user


def _abort(context: grpc.ServicerContext, error: BaseException) -> None:
    if isinstance(error, PfsError):
        context.abort(error.code, error.message)
    log.failure("unexpected error", failure=Failure(error, type(error), error.__traceback__))
    context.abort(grpc.StatusCode.UNKNOWN, f"{type(error).__name__}: {error}")


def unary(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: "PfsServicer", request: Any, context: grpc.ServicerContext) -> Any:
        try:
            self.auth.check(context)
            return method(self, request, context)
        except Exception as e:
            if _is_abort(e):
                raise
            _abort(context, e)

    return cast(F, wrapper)


def streaming(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: "PfsServicer", request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            self.auth.check(context)
            yield from method(self, request, context)
        except Exception as e:
            if _is_abort(e):
                raise
            _abort(context, e)

    return cast(F, wrapper)


def _is_abort(e: Exception) -> bool:
    """Whether ``e`` is what ``context.abort()`` raised (a bare ``Exception()``)."""
    return type(e) is Exception and not e.args


class PfsServicer(pfs_grpc.APIServicer):
    """``pfs_v2.API`` over a ``Store``."""

    def __init__(
        self,
        store: Store,
        authenticator: Authenticator,
        cancel_settle: float = CANCEL_SETTLE_SECONDS,
    ) -> None:
        self.store = store
        self.auth = authenticator
        self.cancel_settle = cancel_settle

    # projects ---------------------------------------------------------------

    @unary
    def CreateProject(self, request: pfs.CreateProjectRequest, context: Any) -> empty_pb2.Empty:
        self.store.create_project(request.project.name, request.description, request.update)
        return empty_pb2.Empty()

    @unary
    def InspectProject(self, request: pfs.InspectProjectRequest, context: Any) -> pfs.ProjectInfo:
        name, description, created = self.store.inspect_project(request.project.name)
        info = pfs.ProjectInfo(project=pfs.Project(name=name), description=description)
        _ts(info.created_at, created)
        return info

    @streaming
    def ListProject(self, request: pfs.ListProjectRequest, context: Any) -> Iterator[pfs.ProjectInfo]:
        for name, description, created in self.store.list_projects():
            info = pfs.ProjectInfo(project=pfs.Project(name=name), description=description)
            _ts(info.created_at, created)
            yield info

    @unary
    def DeleteProject(self, request: pfs.DeleteProjectRequest, context: Any) -> empty_pb2.Empty:
        self.store.delete_project(request.project.name, request.force)
        return empty_pb2.Empty()

    # repos ------------------------------------------------------------------

    @unary
    def CreateRepo(self, request: pfs.CreateRepoRequest, context: Any) -> empty_pb2.Empty:
        self.store.create_repo(
            _project(request.repo.project),
            request.repo.name,
            request.repo.type,
            request.description,
            request.update,
        )
        return empty_pb2.Empty()

    @unary
    def InspectRepo(self, request: pfs.InspectRepoRequest, context: Any) -> pfs.RepoInfo:
        return _repo_info(*self.store.inspect_repo(_project(request.repo.project), request.repo.name))

    @streaming
    def ListRepo(self, request: pfs.ListRepoRequest, context: Any) -> Iterator[pfs.RepoInfo]:
        projects = [p.name for p in request.projects if p.name]
        for repo, branches, size in self.store.list_repos(projects, request.type):
            yield _repo_info(repo, branches, size)

    @unary
    def DeleteRepo(self, request: pfs.DeleteRepoRequest, context: Any) -> pfs.DeleteRepoResponse:
        self.store.delete_repo(_project(request.repo.project), request.repo.name, request.force)
        return pfs.DeleteRepoResponse(deleted=True)

    # commits ----------------------------------------------------------------

    @unary
    def StartCommit(self, request: pfs.StartCommitRequest, context: Any) -> pfs.Commit:
        branch = request.branch
        repo = branch.repo if branch.repo.name else commit_repo(request.parent)
        if not repo.name:
            raise _errors.unknown(_errors.NO_REPO)
        parent = _commit_ref(request.parent) if names_commit(request.parent) else None
        commit = self.store.start_commit(
            _project(repo.project), repo.name, branch.name, parent, request.description
        )
        return _commit_pb(commit)

    @unary
    def FinishCommit(self, request: pfs.FinishCommitRequest, context: Any) -> empty_pb2.Empty:
        self.store.finish_commit(
            _commit_ref(request.commit), request.description, request.error, request.force
        )
        return empty_pb2.Empty()

    @unary
    def ClearCommit(self, request: pfs.ClearCommitRequest, context: Any) -> empty_pb2.Empty:
        self.store.clear_commit(_commit_ref(request.commit))
        return empty_pb2.Empty()

    @unary
    def InspectCommit(self, request: pfs.InspectCommitRequest, context: Any) -> pfs.CommitInfo:
        wait = request.wait in (pfs.FINISHING, pfs.FINISHED)
        commit = self.store.inspect_commit(_commit_ref(request.commit), wait, context.is_active)
        return _commit_info(self.store, commit)

    @streaming
    def ListCommit(self, request: pfs.ListCommitRequest, context: Any) -> Iterator[pfs.CommitInfo]:
        if not request.repo.name:
            raise _errors.unknown(_errors.NO_REPO)
        from_pb = getattr(request, "from")
        to = _commit_ref(request.to) if names_commit(request.to) else None
        from_ = _commit_ref(from_pb) if names_commit(from_pb) else None
        started = None
        if request.HasField("started_time"):
            started = request.started_time.ToNanoseconds() / 1e9
        commits = self.store.list_commits(
            _project(request.repo.project),
            request.repo.name,
            to,
            from_,
            request.number,
            request.reverse,
            origin=0 if request.all else int(request.origin_kind),
            started=started,
        )
        for commit in commits:
            yield _commit_info(self.store, commit)

    @unary
    def SquashCommit(self, request: pfs.SquashCommitRequest, context: Any) -> pfs.SquashCommitResponse:
        self.store.squash_commit(_commit_ref(request.commit))
        return pfs.SquashCommitResponse()

    @unary
    def DropCommit(self, request: pfs.DropCommitRequest, context: Any) -> pfs.DropCommitResponse:
        self.store.drop_commit(_commit_ref(request.commit))
        return pfs.DropCommitResponse()

    # commit sets: one commit each here (nothing propagates downstream) -----------

    def _commit_set(self, commit_set: pfs.CommitSet) -> list[CommitRec]:
        commits = self.store.commit_set(commit_set.id)
        if not commits:
            raise PfsError(
                grpc.StatusCode.NOT_FOUND, f"no commits found for commitset {commit_set.id}"
            )
        return commits

    @streaming
    def InspectCommitSet(self, request: pfs.InspectCommitSetRequest, context: Any) -> Iterator[pfs.CommitInfo]:
        for commit in self._commit_set(request.commit_set):
            if request.wait:
                ref = CommitRef(commit.repo.project, commit.repo.name, id=commit.id)
                commit = self.store.inspect_commit(ref, True, context.is_active)
            yield _commit_info(self.store, commit)

    @streaming
    def ListCommitSet(self, request: pfs.ListCommitSetRequest, context: Any) -> Iterator[pfs.CommitSetInfo]:
        for commit in self.store.all_commits(request.project.name):
            yield pfs.CommitSetInfo(
                commit_set=pfs.CommitSet(id=commit.id), commits=[_commit_info(self.store, commit)]
            )

    @unary
    def SquashCommitSet(self, request: pfs.SquashCommitSetRequest, context: Any) -> empty_pb2.Empty:
        for commit in self._commit_set(request.commit_set):
            self.store.squash_commit(CommitRef(commit.repo.project, commit.repo.name, id=commit.id))
        return empty_pb2.Empty()

    @unary
    def DropCommitSet(self, request: pfs.DropCommitSetRequest, context: Any) -> empty_pb2.Empty:
        for commit in self._commit_set(request.commit_set):
            self.store.drop_commit(CommitRef(commit.repo.project, commit.repo.name, id=commit.id))
        return empty_pb2.Empty()

    # branches -----------------------------------------------------------------

    @unary
    def CreateBranch(self, request: pfs.CreateBranchRequest, context: Any) -> empty_pb2.Empty:
        branch = request.branch
        if not branch.repo.name:
            raise _errors.unknown(_errors.NO_REPO)
        head = _commit_ref(request.head) if names_commit(request.head) else None
        provenance = [(_project(p.repo.project), p.repo.name, p.name) for p in request.provenance]
        self.store.create_branch(
            _project(branch.repo.project), branch.repo.name, branch.name, head, provenance
        )
        return empty_pb2.Empty()

    @unary
    def InspectBranch(self, request: pfs.InspectBranchRequest, context: Any) -> pfs.BranchInfo:
        b = request.branch
        return _branch_info(self.store.inspect_branch(_project(b.repo.project), b.repo.name, b.name))

    @streaming
    def ListBranch(self, request: pfs.ListBranchRequest, context: Any) -> Iterator[pfs.BranchInfo]:
        repo = request.repo
        for branch in self.store.list_branches(_project(repo.project), repo.name, request.reverse):
            yield _branch_info(branch)

    @unary
    def DeleteBranch(self, request: pfs.DeleteBranchRequest, context: Any) -> empty_pb2.Empty:
        b = request.branch
        self.store.delete_branch(_project(b.repo.project), b.repo.name, b.name, request.force)
        return empty_pb2.Empty()

    # files ------------------------------------------------------------------------

    def ModifyFile(self, request_iterator: Iterator[pfs.ModifyFileRequest], context: Any) -> empty_pb2.Empty:
        upload: Optional[Upload] = None
        terminated = threading.Event()
        context.add_callback(terminated.set)
        try:
            self.auth.check(context)
            defer_sync = DEFER_SYNC_METADATA in tuple(context.invocation_metadata() or ())
            target: Optional[CommitRef] = None
            upload = Upload(self.store)
            finished_on_purpose = False
            for request in request_iterator:
                kind = request.WhichOneof("body")
                finished_on_purpose = (
                    kind == "delete_file" and request.delete_file.path == END_OF_STREAM_PATH
                )
                if finished_on_purpose:
                    continue
                if kind == "set_commit":
                    ref = _commit_ref(request.set_commit)
                    if target is not None and ref != target:
                        edits, dirs = upload.finish()
                        self.store.modify(target, edits, dirs, upload.lease.inline, defer_sync)
                        upload.committed()
                        upload = Upload(self.store)
                    target = ref
                    self.store.check_writable(target)
                elif target is None:
                    raise _errors.unknown(_errors.FIRST_MESSAGE_NOT_COMMIT)
                elif kind == "add_file":
                    add = request.add_file
                    source = add.WhichOneof("source")
                    if source == "url":
                        raise PfsError(
                            grpc.StatusCode.UNIMPLEMENTED, "AddFile from a URL is not supported"
                        )
                    upload.add(add.path, add.raw.value if source == "raw" else b"")
                elif kind == "delete_file":
                    upload.delete(request.delete_file.path)
                elif kind == "copy_file":
                    copy = request.copy_file
                    upload.copy(copy.dst, _commit_ref(copy.src.commit), copy.src.path, copy.append)
                else:
                    raise _errors.invalid_argument("empty ModifyFile message")
            ended = time.monotonic()
            if target is not None:
                edits, dirs = upload.finish()
                # grpcio reports a client's cancellation (RST_STREAM) as an
                # ordinary end of the request stream, and flags the call as
                # cancelled only when its poller gets to the close event,
                # milliseconds later. Give it that time (overlapped with the
                # final fsyncs above) before making the commit visible.
                # A client that ends with the end-of-stream marker has
                # certainly finished: no need to wait.
                settle = self.cancel_settle - (time.monotonic() - ended)
                if settle > 0 and not finished_on_purpose:
                    terminated.wait(settle)
                if terminated.is_set() or not context.is_active():
                    raise PfsError(grpc.StatusCode.CANCELLED, "ModifyFile cancelled")
                self.store.modify(target, edits, dirs, upload.lease.inline, defer_sync)
            upload.committed()
            upload = None
            return empty_pb2.Empty()
        except Exception as e:
            if upload is not None:
                try:
                    upload.abort()
                except Exception:
                    log.failure("discarding a failed upload")
            if _is_abort(e):
                raise
            if isinstance(e, grpc.RpcError):
                # The client went away mid-stream; nothing was committed.
                context.abort(grpc.StatusCode.CANCELLED, "ModifyFile cancelled")
            _abort(context, e)
            raise  # unreachable: abort raises

    def _tree(self, commit: pfs.Commit) -> Tree:
        return Tree(self.store, self.store.resolve(_commit_ref(commit)))

    @streaming
    def GetFile(self, request: pfs.GetFileRequest, context: Any) -> Iterator[wrappers_pb2.BytesValue]:
        if request.URL:
            raise PfsError(grpc.StatusCode.UNIMPLEMENTED, "GetFile to a URL is not supported")
        tree = self._tree(request.file.commit)
        found = tree.regular_file(request.file.path)
        assert found.content is not None
        offset = max(0, request.offset)
        for piece in _content.iter_bytes(
            found.content.extents, offset, self.store.chunks.read, READ_PIECE
        ):
            yield wrappers_pb2.BytesValue(value=piece)

    @streaming
    def GetFileTAR(self, request: pfs.GetFileRequest, context: Any) -> Iterator[wrappers_pb2.BytesValue]:
        tree = self._tree(request.file.commit)
        path = request.file.path or "/"
        found = tree.inspect(path)
        files = tree.walk(found.path) if found.is_dir else iter([found])
        for f in files:
            info = tarfile.TarInfo(f.path.lstrip("/").rstrip("/") or ".")
            if f.committed is not None:
                info.mtime = int(f.committed)
            if f.is_dir:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                yield wrappers_pb2.BytesValue(value=info.tobuf(tarfile.PAX_FORMAT))
                continue
            assert f.content is not None
            info.size = f.content.size
            info.mode = 0o644
            yield wrappers_pb2.BytesValue(value=info.tobuf(tarfile.PAX_FORMAT))
            for piece in _content.iter_bytes(f.content.extents, 0, self.store.chunks.read, READ_PIECE):
                yield wrappers_pb2.BytesValue(value=piece)
            pad = -f.content.size % tarfile.BLOCKSIZE
            if pad:
                yield wrappers_pb2.BytesValue(value=b"\0" * pad)
        yield wrappers_pb2.BytesValue(value=b"\0" * (2 * tarfile.BLOCKSIZE))

    @unary
    def InspectFile(self, request: pfs.InspectFileRequest, context: Any) -> pfs.FileInfo:
        tree = self._tree(request.file.commit)
        return _file_info(_commit_pb(tree.commit), tree.inspect(request.file.path))

    @streaming
    def ListFile(self, request: pfs.ListFileRequest, context: Any) -> Iterator[pfs.FileInfo]:
        tree = self._tree(request.file.commit)
        commit = _commit_pb(tree.commit)
        entries = tree.list_dir(
            request.file.path or "/", request.paginationMarker.path, request.reverse
        )
        for f in _limit(entries, request.number):
            yield _file_info(commit, f)

    @streaming
    def WalkFile(self, request: pfs.WalkFileRequest, context: Any) -> Iterator[pfs.FileInfo]:
        tree = self._tree(request.file.commit)
        commit = _commit_pb(tree.commit)
        entries = tree.walk(request.file.path or "/", request.paginationMarker.path, request.reverse)
        for f in _limit(entries, request.number):
            yield _file_info(commit, f)

    @streaming
    def GlobFile(self, request: pfs.GlobFileRequest, context: Any) -> Iterator[pfs.FileInfo]:
        tree = self._tree(request.commit)
        commit = _commit_pb(tree.commit)
        lower, upper = request.path_range.lower, request.path_range.upper
        for f in tree.glob(request.pattern):
            if lower and f.path < lower:
                continue
            if upper and f.path >= upper:
                break
            yield _file_info(commit, f)

    @streaming
    def DiffFile(self, request: pfs.DiffFileRequest, context: Any) -> Iterator[pfs.DiffFileResponse]:
        new = self.store.resolve(_commit_ref(request.new_file.commit))
        old: Optional[CommitRec] = None
        if request.HasField("old_file"):
            old_path = request.old_file.path
            if names_commit(request.old_file.commit):
                old = self.store.resolve(_commit_ref(request.old_file.commit))
        else:
            old_path = request.new_file.path
            if new.parent:
                repo = new.repo
                old = self.store.resolve(CommitRef(repo.project, repo.name, id=new.parent))
        new_pb = _commit_pb(new)
        old_pb = _commit_pb(old) if old is not None else None
        for before, after in _diff.diff(self.store, new, request.new_file.path, old, old_path):
            response = pfs.DiffFileResponse()
            if after is not None:
                response.new_file.CopyFrom(_file_info(new_pb, after))
            if before is not None and old_pb is not None:
                response.old_file.CopyFrom(_file_info(old_pb, before))
            yield response


class AuthServicer(auth_grpc.APIServicer):
    """``auth_v2.API/WhoAmI``: the only auth call the gateway makes."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.auth = authenticator

    def WhoAmI(self, request: auth.WhoAmIRequest, context: Any) -> auth.WhoAmIResponse:
        if self.auth.tokens is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, _errors.AUTH_NOT_ACTIVATED)
        try:
            user = self.auth.check(context)
        except PfsError as e:
            context.abort(e.code, e.message)
        return auth.WhoAmIResponse(username=user or "")
