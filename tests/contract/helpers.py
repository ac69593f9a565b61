"""What the contract tests share: writing bodies, reading readers, catching errors."""

from __future__ import annotations

import hashlib
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from pachs3gw.s3.interfaces import IBackend, IObjectReader, ObjectMetadata, WriteResult
from tests.gateway.conftest import Body

E = TypeVar("E", bound=BaseException)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


async def put(
    backend: IBackend,
    bucket: str,
    key: str,
    data: bytes,
    metadata: ObjectMetadata | None = None,
) -> WriteResult:
    result: WriteResult = await backend.put_object(
        bucket, key, Body(data), metadata or ObjectMetadata()
    )
    return result


async def read(reader: IObjectReader, offset: int = 0, length: int | None = None) -> bytes:
    """*Worker thread* read, as the HTTP layer's producer does it."""
    n = reader.info.size - offset if length is None else length
    data: bytes = await deferToThread(lambda: b"".join(reader.read(offset, n)))
    return data


async def get_bytes(
    backend: IBackend, bucket: str, key: str, version_id: str | None = None
) -> bytes:
    return await read(await backend.get_object(bucket, key, version_id))


async def fails(d: Deferred[Any], kind: type[E]) -> E:
    """The S3 error ``d`` fails with, checked to be a ``kind``."""
    try:
        await d
    except BaseException as e:  # noqa: BLE001
        assert isinstance(e, kind), f"expected {kind.__name__}, got {type(e).__name__}: {e}"
        return e
    raise AssertionError(f"expected {kind.__name__}, the call succeeded")
