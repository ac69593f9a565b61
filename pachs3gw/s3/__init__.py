"""HTTP and S3: routing, XML, errors, signatures, bodies, ranges, conditions.

This layer knows nothing of PFS or gRPC; it calls the backend interfaces in
:mod:`pachs3gw.s3.interfaces`. The names below are its public API, for
embedding the S3 server over a backend of one's own::

    from pachs3gw.s3 import MemoryAuthenticator, MemoryBackend, S3Server, make_site

    server = S3Server(reactor, pool, MemoryBackend(reactor, pool), MemoryAuthenticator())
    reactor.listenTCP(0, make_site(server, reactor))

Everything else (modules and names starting with ``_``, and the helpers of
the other modules) is internal and may change. ``tests/test_s3_exports.py``
pins this list.
"""

from pachs3gw.s3 import errors
from pachs3gw.s3.app import S3Server
from pachs3gw.s3.errors import S3Error
from pachs3gw.s3.interfaces import (
    BodyAborted,
    BucketEntry,
    CompletedPart,
    CopySource,
    DeleteResult,
    IAuthenticator,
    IBackend,
    IBackendFactory,
    IBodySource,
    IBucketBackend,
    IMultipartBackend,
    IObjectBackend,
    IObjectReader,
    ListPage,
    ObjectInfo,
    ObjectMetadata,
    ObjectSummary,
    ObjectVersion,
    PartInfo,
    PartsPage,
    UploadInfo,
    UploadsPage,
    VersionsPage,
    WriteConditions,
    WriteResult,
)
from pachs3gw.s3.site import S3Site, make_site
from pachs3gw.s3.testing import MemoryAuthenticator, MemoryBackend, MemoryObjectReader

__all__ = [
    # Serving
    "S3Server",
    "S3Site",
    "make_site",
    # The backend seam
    "IAuthenticator",
    "IBackend",
    "IBackendFactory",
    "IBodySource",
    "IBucketBackend",
    "IMultipartBackend",
    "IObjectBackend",
    "IObjectReader",
    "BodyAborted",
    # Values crossing the seam
    "BucketEntry",
    "CompletedPart",
    "CopySource",
    "DeleteResult",
    "ListPage",
    "ObjectInfo",
    "ObjectMetadata",
    "ObjectSummary",
    "ObjectVersion",
    "PartInfo",
    "PartsPage",
    "UploadInfo",
    "UploadsPage",
    "VersionsPage",
    "WriteConditions",
    "WriteResult",
    # Errors: S3Error and its subclasses, one per S3 error code
    "errors",
    "S3Error",
    # Test doubles
    "MemoryAuthenticator",
    "MemoryBackend",
    "MemoryObjectReader",
]
