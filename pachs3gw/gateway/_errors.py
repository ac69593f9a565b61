"""PFS errors as S3 errors, in one place.

Backend operations are coroutines wrapped by :func:`s3_operation`, which
turns them into Deferreds and translates every :class:`~pachs3gw.pfs.errors.PfsError`
that escapes into the S3 error that names the fault, using the operation's
``bucket``, ``key`` and ``version_id`` arguments as context. Code that needs
another reading of an error (a missing file is success for DeleteObject,
a missing repo is not a fault when creating a bucket) catches the typed PFS
error where it happens. Errors this module does not know propagate unchanged:
the HTTP layer renders them as InternalError, a bug to fix here.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Coroutine, TypeVar

import attrs
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.logger import Logger

from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.s3 import errors

log = Logger()

T = TypeVar("T")


@attrs.frozen
class Context:
    bucket: str | None = None
    key: str | None = None
    version_id: str | None = None


def to_s3_error(error: BaseException, context: Context) -> BaseException:
    """The S3 error for a PFS error (other exceptions are returned unchanged)."""
    if not isinstance(error, pfs_errors.PfsError):
        return error
    bucket_extra = {"BucketName": context.bucket} if context.bucket else {}
    key_extra = {"Key": context.key} if context.key else {}
    if isinstance(
        error,
        (pfs_errors.RepoNotFound, pfs_errors.BranchNotFound, pfs_errors.ProjectNotFound),
    ):
        return errors.NoSuchBucket(resource=context.bucket, extra=bucket_extra)
    if isinstance(error, pfs_errors.CommitNotFound):
        if context.version_id:
            return errors.NoSuchVersion(
                resource=context.key or context.bucket,
                extra={**key_extra, "VersionId": context.version_id},
            )
        # A commit view whose commit is gone.
        return errors.NoSuchBucket(resource=context.bucket, extra=bucket_extra)
    if isinstance(error, (pfs_errors.FileNotFound, pfs_errors.NotARegularFile)):
        return errors.NoSuchKey(resource=context.key, extra=key_extra)
    if isinstance(error, pfs_errors.NotFound):
        if context.key:
            return errors.NoSuchKey(resource=context.key, extra=key_extra)
        return errors.NoSuchBucket(resource=context.bucket, extra=bucket_extra)
    if isinstance(error, pfs_errors.OutputBranch):
        return errors.AccessDenied(
            f"Bucket {context.bucket} is an output branch (it has provenance) and is "
            f"read-only: {error.details}",
            resource=context.bucket,
        )
    if isinstance(error, pfs_errors.Unavailable):
        return errors.ServiceUnavailable(
            "The storage backend (PFS) is unavailable; please retry.",
            headers={"Retry-After": "1"},
        )
    if isinstance(error, pfs_errors.StorageFull):
        # 503 SlowDown: what SDKs back off and retry on.  Nothing was written.
        return errors.SlowDown(
            "The storage backend is out of disk space: writes are refused until an operator "
            "frees space (see the README, \"When the disk is full\"); reads still work.",
            headers={"Retry-After": "30"},
        )
    if isinstance(error, pfs_errors.PermissionDenied):
        return errors.AccessDenied(f"Access Denied: {error.details}")
    if isinstance(error, pfs_errors.Unauthenticated):
        return errors.InvalidAccessKeyId(
            "The access key (a Pachyderm token) was not accepted: " + error.details
        )
    if isinstance(error, pfs_errors.InvalidName):
        if context.key:
            return errors.InvalidArgument(
                f"PFS refused the object key: {error.details}", resource=context.key
            )
        return errors.InvalidBucketName(resource=context.bucket, extra=bucket_extra)
    if isinstance(error, pfs_errors.AlreadyExists):
        return errors.BucketAlreadyOwnedByYou(resource=context.bucket, extra=bucket_extra)
    return error


def s3_operation(
    method: Callable[..., Coroutine[Any, Any, T]],
) -> Callable[..., Deferred[T]]:
    """Run a backend coroutine as a Deferred; PFS errors come out as S3 errors.

    The context (bucket, key, version) is read from the method's arguments of
    those names.
    """
    # Where the context's arguments sit, worked out once: binding the
    # signature on every call costs more than the rest of the wrapper.
    names = list(inspect.signature(method).parameters)
    positions: dict[str, int] = {
        name: names.index(name) for name in ("bucket", "key", "version_id") if name in names
    }

    def argument(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if name in kwargs:
            return kwargs[name]
        position = positions.get(name)
        if position is not None and position < len(args):
            return args[position]
        return None

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Deferred[T]:
        def translate(failure: Failure) -> Failure:
            error = failure.value
            if error is None:  # only a Failure made without an exception; an errback's has one
                return failure
            bucket = argument("bucket", args, kwargs)
            context = Context(  # read only when there is an error to say it in
                bucket=bucket if isinstance(bucket, str) else None,
                key=argument("key", args, kwargs),
                version_id=argument("version_id", args, kwargs),
            )
            translated = to_s3_error(error, context)
            if translated is error:
                return failure
            return Failure(translated)

        return Deferred.fromCoroutine(method(*args, **kwargs)).addErrback(translate)

    return wrapper
