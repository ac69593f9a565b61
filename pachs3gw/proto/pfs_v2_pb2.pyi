import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import wrappers_pb2 as _wrappers_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OriginKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORIGIN_KIND_UNKNOWN: _ClassVar[OriginKind]
    USER: _ClassVar[OriginKind]
    AUTO: _ClassVar[OriginKind]
    FSCK: _ClassVar[OriginKind]

class CommitState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMIT_STATE_UNKNOWN: _ClassVar[CommitState]
    STARTED: _ClassVar[CommitState]
    READY: _ClassVar[CommitState]
    FINISHING: _ClassVar[CommitState]
    FINISHED: _ClassVar[CommitState]

class FileType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESERVED: _ClassVar[FileType]
    FILE: _ClassVar[FileType]
    DIR: _ClassVar[FileType]
ORIGIN_KIND_UNKNOWN: OriginKind
USER: OriginKind
AUTO: OriginKind
FSCK: OriginKind
COMMIT_STATE_UNKNOWN: CommitState
STARTED: CommitState
READY: CommitState
FINISHING: CommitState
FINISHED: CommitState
RESERVED: FileType
FILE: FileType
DIR: FileType

class Project(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Repo(_message.Message):
    __slots__ = ("name", "type", "project")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    project: Project
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., project: _Optional[_Union[Project, _Mapping]] = ...) -> None: ...

class Branch(_message.Message):
    __slots__ = ("repo", "name")
    REPO_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    repo: Repo
    name: str
    def __init__(self, repo: _Optional[_Union[Repo, _Mapping]] = ..., name: _Optional[str] = ...) -> None: ...

class File(_message.Message):
    __slots__ = ("commit", "path", "datum")
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATUM_FIELD_NUMBER: _ClassVar[int]
    commit: Commit
    path: str
    datum: str
    def __init__(self, commit: _Optional[_Union[Commit, _Mapping]] = ..., path: _Optional[str] = ..., datum: _Optional[str] = ...) -> None: ...

class RepoInfo(_message.Message):
    __slots__ = ("repo", "created", "size_bytes_upper_bound", "description", "branches", "details")
    class Details(_message.Message):
        __slots__ = ("size_bytes",)
        SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
        size_bytes: int
        def __init__(self, size_bytes: _Optional[int] = ...) -> None: ...
    REPO_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_UPPER_BOUND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    BRANCHES_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    repo: Repo
    created: _timestamp_pb2.Timestamp
    size_bytes_upper_bound: int
    description: str
    branches: _containers.RepeatedCompositeFieldContainer[Branch]
    details: RepoInfo.Details
    def __init__(self, repo: _Optional[_Union[Repo, _Mapping]] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., size_bytes_upper_bound: _Optional[int] = ..., description: _Optional[str] = ..., branches: _Optional[_Iterable[_Union[Branch, _Mapping]]] = ..., details: _Optional[_Union[RepoInfo.Details, _Mapping]] = ...) -> None: ...

class BranchInfo(_message.Message):
    __slots__ = ("branch", "head", "provenance", "subvenance", "direct_provenance")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    SUBVENANCE_FIELD_NUMBER: _ClassVar[int]
    DIRECT_PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    branch: Branch
    head: Commit
    provenance: _containers.RepeatedCompositeFieldContainer[Branch]
    subvenance: _containers.RepeatedCompositeFieldContainer[Branch]
    direct_provenance: _containers.RepeatedCompositeFieldContainer[Branch]
    def __init__(self, branch: _Optional[_Union[Branch, _Mapping]] = ..., head: _Optional[_Union[Commit, _Mapping]] = ..., provenance: _Optional[_Iterable[_Union[Branch, _Mapping]]] = ..., subvenance: _Optional[_Iterable[_Union[Branch, _Mapping]]] = ..., direct_provenance: _Optional[_Iterable[_Union[Branch, _Mapping]]] = ...) -> None: ...

class CommitOrigin(_message.Message):
    __slots__ = ("kind",)
    KIND_FIELD_NUMBER: _ClassVar[int]
    kind: OriginKind
    def __init__(self, kind: _Optional[_Union[OriginKind, str]] = ...) -> None: ...

class Commit(_message.Message):
    __slots__ = ("repo", "id", "branch")
    REPO_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    repo: Repo
    id: str
    branch: Branch
    def __init__(self, repo: _Optional[_Union[Repo, _Mapping]] = ..., id: _Optional[str] = ..., branch: _Optional[_Union[Branch, _Mapping]] = ...) -> None: ...

class CommitInfo(_message.Message):
    __slots__ = ("commit", "origin", "description", "parent_commit", "child_commits", "started", "finishing", "finished", "error", "size_bytes_upper_bound", "details", "direct_provenance")
    class Details(_message.Message):
        __slots__ = ("size_bytes", "compacting_time", "validating_time")
        SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
        COMPACTING_TIME_FIELD_NUMBER: _ClassVar[int]
        VALIDATING_TIME_FIELD_NUMBER: _ClassVar[int]
        size_bytes: int
        compacting_time: _duration_pb2.Duration
        validating_time: _duration_pb2.Duration
        def __init__(self, size_bytes: _Optional[int] = ..., compacting_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., validating_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARENT_COMMIT_FIELD_NUMBER: _ClassVar[int]
    CHILD_COMMITS_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    FINISHING_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_UPPER_BOUND_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    DIRECT_PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    commit: Commit
    origin: CommitOrigin
    description: str
    parent_commit: Commit
    child_commits: _containers.RepeatedCompositeFieldContainer[Commit]
    started: _timestamp_pb2.Timestamp
    finishing: _timestamp_pb2.Timestamp
    finished: _timestamp_pb2.Timestamp
    error: str
    size_bytes_upper_bound: int
    details: CommitInfo.Details
    direct_provenance: _containers.RepeatedCompositeFieldContainer[Commit]
    def __init__(self, commit: _Optional[_Union[Commit, _Mapping]] = ..., origin: _Optional[_Union[CommitOrigin, _Mapping]] = ..., description: _Optional[str] = ..., parent_commit: _Optional[_Union[Commit, _Mapping]] = ..., child_commits: _Optional[_Iterable[_Union[Commit, _Mapping]]] = ..., started: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finishing: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ..., size_bytes_upper_bound: _Optional[int] = ..., details: _Optional[_Union[CommitInfo.Details, _Mapping]] = ..., direct_provenance: _Optional[_Iterable[_Union[Commit, _Mapping]]] = ...) -> None: ...

class FileInfo(_message.Message):
    __slots__ = ("file", "file_type", "committed", "size_bytes", "hash")
    FILE_FIELD_NUMBER: _ClassVar[int]
    FILE_TYPE_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    file: File
    file_type: FileType
    committed: _timestamp_pb2.Timestamp
    size_bytes: int
    hash: bytes
    def __init__(self, file: _Optional[_Union[File, _Mapping]] = ..., file_type: _Optional[_Union[FileType, str]] = ..., committed: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., size_bytes: _Optional[int] = ..., hash: _Optional[bytes] = ...) -> None: ...

class ProjectInfo(_message.Message):
    __slots__ = ("project", "description", "created_at")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    project: Project
    description: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateRepoRequest(_message.Message):
    __slots__ = ("repo", "description", "update")
    REPO_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    repo: Repo
    description: str
    update: bool
    def __init__(self, repo: _Optional[_Union[Repo, _Mapping]] = ..., description: _Optional[str] = ..., update: _Optional[bool] = ...) -> None: ...

class InspectRepoRequest(_message.Message):
    __slots__ = ("repo",)
    REPO_FIELD_NUMBER: _ClassVar[int]
    repo: Repo
    def __init__(self, repo: _Optional[_Union[Repo, _Mapping]] = ...) -> None: ...

class ListRepoRequest(_message.Message):
    __slots__ = ("type", "projects")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    type: str
    projects: _containers.RepeatedCompositeFieldContainer[Project]
    def __init__(self, type: _Optional[str] = ..., projects: _Optional[_Iterable[_Union[Project, _Mapping]]] = ...) -> None: ...

class DeleteRepoRequest(_message.Message):
    __slots__ = ("repo", "force")
    REPO_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    repo: Repo
    force: bool
    def __init__(self, repo: _Optional[_Union[Repo, _Mapping]] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteRepoResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class StartCommitRequest(_message.Message):
    __slots__ = ("parent", "description", "branch")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    parent: Commit
    description: str
    branch: Branch
    def __init__(self, parent: _Optional[_Union[Commit, _Mapping]] = ..., description: _Optional[str] = ..., branch: _Optional[_Union[Branch, _Mapping]] = ...) -> None: ...

class FinishCommitRequest(_message.Message):
    __slots__ = ("commit", "description", "error", "force")
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    commit: Commit
    description: str
    error: str
    force: bool
    def __init__(self, commit: _Optional[_Union[Commit, _Mapping]] = ..., description: _Optional[str] = ..., error: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class InspectCommitRequest(_message.Message):
    __slots__ = ("commit", "wait")
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    commit: Commit
    wait: CommitState
    def __init__(self, commit: _Optional[_Union[Commit, _Mapping]] = ..., wait: _Optional[_Union[CommitState, str]] = ...) -> None: ...

class ListCommitRequest(_message.Message):
    __slots__ = ("repo", "to", "number", "reverse", "all", "origin_kind", "started_time")
    REPO_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    REVERSE_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_KIND_FIELD_NUMBER: _ClassVar[int]
    STARTED_TIME_FIELD_NUMBER: _ClassVar[int]
    repo: Repo
    to: Commit
    number: int
    reverse: bool
    all: bool
    origin_kind: OriginKind
    started_time: _timestamp_pb2.Timestamp
    def __init__(self, repo: _Optional[_Union[Repo, _Mapping]] = ..., to: _Optional[_Union[Commit, _Mapping]] = ..., number: _Optional[int] = ..., reverse: _Optional[bool] = ..., all: _Optional[bool] = ..., origin_kind: _Optional[_Union[OriginKind, str]] = ..., started_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., **kwargs) -> None: ...

class ClearCommitRequest(_message.Message):
    __slots__ = ("commit",)
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    commit: Commit
    def __init__(self, commit: _Optional[_Union[Commit, _Mapping]] = ...) -> None: ...

class CreateBranchRequest(_message.Message):
    __slots__ = ("head", "branch", "provenance", "new_commit_set")
    HEAD_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    NEW_COMMIT_SET_FIELD_NUMBER: _ClassVar[int]
    head: Commit
    branch: Branch
    provenance: _containers.RepeatedCompositeFieldContainer[Branch]
    new_commit_set: bool
    def __init__(self, head: _Optional[_Union[Commit, _Mapping]] = ..., branch: _Optional[_Union[Branch, _Mapping]] = ..., provenance: _Optional[_Iterable[_Union[Branch, _Mapping]]] = ..., new_commit_set: _Optional[bool] = ...) -> None: ...

class InspectBranchRequest(_message.Message):
    __slots__ = ("branch",)
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    branch: Branch
    def __init__(self, branch: _Optional[_Union[Branch, _Mapping]] = ...) -> None: ...

class ListBranchRequest(_message.Message):
    __slots__ = ("repo", "reverse")
    REPO_FIELD_NUMBER: _ClassVar[int]
    REVERSE_FIELD_NUMBER: _ClassVar[int]
    repo: Repo
    reverse: bool
    def __init__(self, repo: _Optional[_Union[Repo, _Mapping]] = ..., reverse: _Optional[bool] = ...) -> None: ...

class DeleteBranchRequest(_message.Message):
    __slots__ = ("branch", "force")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    branch: Branch
    force: bool
    def __init__(self, branch: _Optional[_Union[Branch, _Mapping]] = ..., force: _Optional[bool] = ...) -> None: ...

class CreateProjectRequest(_message.Message):
    __slots__ = ("project", "description", "update")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    project: Project
    description: str
    update: bool
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., description: _Optional[str] = ..., update: _Optional[bool] = ...) -> None: ...

class InspectProjectRequest(_message.Message):
    __slots__ = ("project",)
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    project: Project
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ...) -> None: ...

class ListProjectRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteProjectRequest(_message.Message):
    __slots__ = ("project", "force")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    project: Project
    force: bool
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., force: _Optional[bool] = ...) -> None: ...

class AddFile(_message.Message):
    __slots__ = ("path", "datum", "raw", "url")
    class URLSource(_message.Message):
        __slots__ = ("URL", "recursive", "concurrency")
        URL_FIELD_NUMBER: _ClassVar[int]
        RECURSIVE_FIELD_NUMBER: _ClassVar[int]
        CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
        URL: str
        recursive: bool
        concurrency: int
        def __init__(self, URL: _Optional[str] = ..., recursive: _Optional[bool] = ..., concurrency: _Optional[int] = ...) -> None: ...
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATUM_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    path: str
    datum: str
    raw: _wrappers_pb2.BytesValue
    url: AddFile.URLSource
    def __init__(self, path: _Optional[str] = ..., datum: _Optional[str] = ..., raw: _Optional[_Union[_wrappers_pb2.BytesValue, _Mapping]] = ..., url: _Optional[_Union[AddFile.URLSource, _Mapping]] = ...) -> None: ...

class DeleteFile(_message.Message):
    __slots__ = ("path", "datum")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATUM_FIELD_NUMBER: _ClassVar[int]
    path: str
    datum: str
    def __init__(self, path: _Optional[str] = ..., datum: _Optional[str] = ...) -> None: ...

class CopyFile(_message.Message):
    __slots__ = ("dst", "datum", "src", "append")
    DST_FIELD_NUMBER: _ClassVar[int]
    DATUM_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    APPEND_FIELD_NUMBER: _ClassVar[int]
    dst: str
    datum: str
    src: File
    append: bool
    def __init__(self, dst: _Optional[str] = ..., datum: _Optional[str] = ..., src: _Optional[_Union[File, _Mapping]] = ..., append: _Optional[bool] = ...) -> None: ...

class ModifyFileRequest(_message.Message):
    __slots__ = ("set_commit", "add_file", "delete_file", "copy_file")
    SET_COMMIT_FIELD_NUMBER: _ClassVar[int]
    ADD_FILE_FIELD_NUMBER: _ClassVar[int]
    DELETE_FILE_FIELD_NUMBER: _ClassVar[int]
    COPY_FILE_FIELD_NUMBER: _ClassVar[int]
    set_commit: Commit
    add_file: AddFile
    delete_file: DeleteFile
    copy_file: CopyFile
    def __init__(self, set_commit: _Optional[_Union[Commit, _Mapping]] = ..., add_file: _Optional[_Union[AddFile, _Mapping]] = ..., delete_file: _Optional[_Union[DeleteFile, _Mapping]] = ..., copy_file: _Optional[_Union[CopyFile, _Mapping]] = ...) -> None: ...

class PathRange(_message.Message):
    __slots__ = ("lower", "upper")
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    lower: str
    upper: str
    def __init__(self, lower: _Optional[str] = ..., upper: _Optional[str] = ...) -> None: ...

class GetFileRequest(_message.Message):
    __slots__ = ("file", "URL", "offset", "path_range")
    FILE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    PATH_RANGE_FIELD_NUMBER: _ClassVar[int]
    file: File
    URL: str
    offset: int
    path_range: PathRange
    def __init__(self, file: _Optional[_Union[File, _Mapping]] = ..., URL: _Optional[str] = ..., offset: _Optional[int] = ..., path_range: _Optional[_Union[PathRange, _Mapping]] = ...) -> None: ...

class InspectFileRequest(_message.Message):
    __slots__ = ("file",)
    FILE_FIELD_NUMBER: _ClassVar[int]
    file: File
    def __init__(self, file: _Optional[_Union[File, _Mapping]] = ...) -> None: ...

class ListFileRequest(_message.Message):
    __slots__ = ("file", "paginationMarker", "number", "reverse")
    FILE_FIELD_NUMBER: _ClassVar[int]
    PAGINATIONMARKER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    REVERSE_FIELD_NUMBER: _ClassVar[int]
    file: File
    paginationMarker: File
    number: int
    reverse: bool
    def __init__(self, file: _Optional[_Union[File, _Mapping]] = ..., paginationMarker: _Optional[_Union[File, _Mapping]] = ..., number: _Optional[int] = ..., reverse: _Optional[bool] = ...) -> None: ...

class WalkFileRequest(_message.Message):
    __slots__ = ("file", "paginationMarker", "number", "reverse")
    FILE_FIELD_NUMBER: _ClassVar[int]
    PAGINATIONMARKER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    REVERSE_FIELD_NUMBER: _ClassVar[int]
    file: File
    paginationMarker: File
    number: int
    reverse: bool
    def __init__(self, file: _Optional[_Union[File, _Mapping]] = ..., paginationMarker: _Optional[_Union[File, _Mapping]] = ..., number: _Optional[int] = ..., reverse: _Optional[bool] = ...) -> None: ...

class GlobFileRequest(_message.Message):
    __slots__ = ("commit", "pattern", "path_range")
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    PATH_RANGE_FIELD_NUMBER: _ClassVar[int]
    commit: Commit
    pattern: str
    path_range: PathRange
    def __init__(self, commit: _Optional[_Union[Commit, _Mapping]] = ..., pattern: _Optional[str] = ..., path_range: _Optional[_Union[PathRange, _Mapping]] = ...) -> None: ...

class CommitSet(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CommitSetInfo(_message.Message):
    __slots__ = ("commit_set", "commits")
    COMMIT_SET_FIELD_NUMBER: _ClassVar[int]
    COMMITS_FIELD_NUMBER: _ClassVar[int]
    commit_set: CommitSet
    commits: _containers.RepeatedCompositeFieldContainer[CommitInfo]
    def __init__(self, commit_set: _Optional[_Union[CommitSet, _Mapping]] = ..., commits: _Optional[_Iterable[_Union[CommitInfo, _Mapping]]] = ...) -> None: ...

class InspectCommitSetRequest(_message.Message):
    __slots__ = ("commit_set", "wait")
    COMMIT_SET_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    commit_set: CommitSet
    wait: bool
    def __init__(self, commit_set: _Optional[_Union[CommitSet, _Mapping]] = ..., wait: _Optional[bool] = ...) -> None: ...

class ListCommitSetRequest(_message.Message):
    __slots__ = ("project",)
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    project: Project
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ...) -> None: ...

class SquashCommitSetRequest(_message.Message):
    __slots__ = ("commit_set",)
    COMMIT_SET_FIELD_NUMBER: _ClassVar[int]
    commit_set: CommitSet
    def __init__(self, commit_set: _Optional[_Union[CommitSet, _Mapping]] = ...) -> None: ...

class DropCommitSetRequest(_message.Message):
    __slots__ = ("commit_set",)
    COMMIT_SET_FIELD_NUMBER: _ClassVar[int]
    commit_set: CommitSet
    def __init__(self, commit_set: _Optional[_Union[CommitSet, _Mapping]] = ...) -> None: ...

class SquashCommitRequest(_message.Message):
    __slots__ = ("commit", "recursive")
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    commit: Commit
    recursive: bool
    def __init__(self, commit: _Optional[_Union[Commit, _Mapping]] = ..., recursive: _Optional[bool] = ...) -> None: ...

class SquashCommitResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DropCommitRequest(_message.Message):
    __slots__ = ("commit", "recursive")
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    commit: Commit
    recursive: bool
    def __init__(self, commit: _Optional[_Union[Commit, _Mapping]] = ..., recursive: _Optional[bool] = ...) -> None: ...

class DropCommitResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DiffFileRequest(_message.Message):
    __slots__ = ("new_file", "old_file", "shallow")
    NEW_FILE_FIELD_NUMBER: _ClassVar[int]
    OLD_FILE_FIELD_NUMBER: _ClassVar[int]
    SHALLOW_FIELD_NUMBER: _ClassVar[int]
    new_file: File
    old_file: File
    shallow: bool
    def __init__(self, new_file: _Optional[_Union[File, _Mapping]] = ..., old_file: _Optional[_Union[File, _Mapping]] = ..., shallow: _Optional[bool] = ...) -> None: ...

class DiffFileResponse(_message.Message):
    __slots__ = ("new_file", "old_file")
    NEW_FILE_FIELD_NUMBER: _ClassVar[int]
    OLD_FILE_FIELD_NUMBER: _ClassVar[int]
    new_file: FileInfo
    old_file: FileInfo
    def __init__(self, new_file: _Optional[_Union[FileInfo, _Mapping]] = ..., old_file: _Optional[_Union[FileInfo, _Mapping]] = ...) -> None: ...
