"""``pachs3gw.s3`` names its public API, and this pins it.

Adding a name is a decision (it becomes API an embedder may rely on); so is
removing one. Each name must resolve to the object of its home module, so
that ``from pachs3gw.s3 import X`` and the documented module agree.
"""

from __future__ import annotations

import subprocess
import sys

import pachs3gw.s3 as s3
from pachs3gw.s3 import app, errors, interfaces, site, testing

PUBLIC = {
    "S3Server": app.S3Server,
    "S3Site": site.S3Site,
    "make_site": site.make_site,
    "IAuthenticator": interfaces.IAuthenticator,
    "IBackend": interfaces.IBackend,
    "IBackendFactory": interfaces.IBackendFactory,
    "IBodySource": interfaces.IBodySource,
    "IBucketBackend": interfaces.IBucketBackend,
    "IMultipartBackend": interfaces.IMultipartBackend,
    "IObjectBackend": interfaces.IObjectBackend,
    "IObjectReader": interfaces.IObjectReader,
    "BodyAborted": interfaces.BodyAborted,
    "BucketEntry": interfaces.BucketEntry,
    "CompletedPart": interfaces.CompletedPart,
    "CopySource": interfaces.CopySource,
    "DeleteResult": interfaces.DeleteResult,
    "ListPage": interfaces.ListPage,
    "ObjectInfo": interfaces.ObjectInfo,
    "ObjectMetadata": interfaces.ObjectMetadata,
    "ObjectSummary": interfaces.ObjectSummary,
    "ObjectVersion": interfaces.ObjectVersion,
    "PartInfo": interfaces.PartInfo,
    "PartsPage": interfaces.PartsPage,
    "UploadInfo": interfaces.UploadInfo,
    "UploadsPage": interfaces.UploadsPage,
    "VersionsPage": interfaces.VersionsPage,
    "WriteConditions": interfaces.WriteConditions,
    "WriteResult": interfaces.WriteResult,
    "errors": errors,
    "S3Error": errors.S3Error,
    "MemoryAuthenticator": testing.MemoryAuthenticator,
    "MemoryBackend": testing.MemoryBackend,
    "MemoryObjectReader": testing.MemoryObjectReader,
}


def test_all_is_exactly_the_public_api() -> None:
    assert sorted(s3.__all__) == sorted(PUBLIC)
    assert len(s3.__all__) == len(set(s3.__all__))


def test_each_name_is_its_home_modules_object() -> None:
    for name, obj in PUBLIC.items():
        assert getattr(s3, name) is obj, name


def test_every_interface_of_the_seam_is_exported() -> None:
    from zope.interface.interface import InterfaceClass

    seam = {
        n
        for n, v in vars(interfaces).items()
        if isinstance(v, InterfaceClass) and v.__module__ == interfaces.__name__
    }
    assert "IBackend" in seam
    assert seam <= set(s3.__all__)


def test_star_import_gives_the_public_names_and_nothing_internal() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pachs3gw.s3 import *; "
            "print(' '.join(sorted(n for n in dir() if not n.startswith('__'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == sorted(PUBLIC)


def test_the_documented_embedding_works() -> None:
    from twisted.internet import reactor
    from twisted.python.threadpool import ThreadPool
    from zope.interface.verify import verifyObject

    pool = ThreadPool(minthreads=0, maxthreads=1)
    backend = s3.MemoryBackend(reactor, pool)
    assert verifyObject(s3.IBackend, backend) and verifyObject(s3.IBackendFactory, backend)
    server = s3.S3Server(reactor, pool, backend, s3.MemoryAuthenticator())
    assert isinstance(s3.make_site(server, reactor), s3.S3Site)
    assert issubclass(s3.errors.NoSuchKey, s3.S3Error)
