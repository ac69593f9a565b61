"""Embedding: GatewayService inside an existing Twisted program (this test's reactor)."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
import pytest_twisted
from twisted.application.service import IService
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from zope.interface.verify import verifyObject

from pachs3gw.service import GatewayConfig, GatewayService


@pytest_twisted.inlineCallbacks
def test_gateway_service_in_process_with_in_process_pfs(tmp_path: Path):
    service = GatewayService(
        reactor,
        GatewayConfig(
            endpoint="tcp:0:interface=127.0.0.1",
            data_dir=str(tmp_path / "data"),
            embedded="inprocess",
            threads=4,
        ),
    )
    verifyObject(IService, service)
    service.startService()
    try:
        yield service.when_started()
        assert service.port is not None
        url = f"http://127.0.0.1:{service.port.getHost().port}"

        def use_it() -> bytes:
            s3 = boto3.client(
                "s3", endpoint_url=url, aws_access_key_id="k", aws_secret_access_key="s",
                region_name="us-east-1",
            )
            s3.create_bucket(Bucket="master.embedded")
            s3.put_object(Bucket="master.embedded", Key="a/b", Body=b"embedded bytes")
            return s3.get_object(Bucket="master.embedded", Key="a/b")["Body"].read()

        assert (yield deferToThread(use_it)) == b"embedded bytes"

        # The bare resource, for a site of the embedder's own.
        from twisted.web.resource import IResource

        from pachs3gw.pfs import PfsClient
        from pachs3gw.service import make_resource

        client = PfsClient(service.channel, reactor, service.pool)
        assert IResource.providedBy(make_resource(reactor, client, service.pool))
    finally:
        yield service.stopService()


TOKEN = "embedder-token-0123456789"


@pytest_twisted.inlineCallbacks
def test_make_resource_under_a_plain_site_at_root_and_at_a_child_path(tmp_path: Path):
    """An ordinary twisted.web Site: PUT/GET/multipart through boto3, SigV4 over ``/s3/...``."""
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from twisted.web.resource import Resource
    from twisted.web.server import Site
    from twisted.web.static import Data

    from pachs3gw.pfs import PfsClient
    from pachs3gw.service import make_resource

    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN} embedder\n")
    service = GatewayService(
        reactor,
        GatewayConfig(endpoint="tcp:0:interface=127.0.0.1", data_dir=str(tmp_path / "data"),
                      embedded="inprocess", threads=4, auth_tokens=str(tokens)),
    )
    service.startService()
    ports = []
    try:
        yield service.when_started()
        client = PfsClient(service.channel, reactor, service.pool)
        root = Resource()
        root.putChild(b"", Data(b"the embedder's own page", "text/plain"))
        root.putChild(b"s3", make_resource(reactor, client, service.pool))
        ports.append(reactor.listenTCP(0, Site(root), interface="127.0.0.1"))
        ports.append(reactor.listenTCP(0, Site(make_resource(reactor, client, service.pool)), interface="127.0.0.1"))
        child_url = f"http://127.0.0.1:{ports[0].getHost().port}/s3"
        root_url = f"http://127.0.0.1:{ports[1].getHost().port}"
        big = os.urandom(5 * 1024 * 1024 + 123)

        def s3_at(url: str, secret: str = TOKEN):  # type: ignore[no-untyped-def]
            return boto3.client(
                "s3", endpoint_url=url, aws_access_key_id=TOKEN, aws_secret_access_key=secret,
                region_name="us-east-1",
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            )

        def use_it() -> None:
            import urllib.request

            s3 = s3_at(child_url)
            s3.create_bucket(Bucket="master.mounted")
            s3.put_object(Bucket="master.mounted", Key="dir/big", Body=big)
            got = s3.get_object(Bucket="master.mounted", Key="dir/big")
            assert got["Body"].read() == big
            assert got["ContentLength"] == len(big)
            ranged = s3.get_object(Bucket="master.mounted", Key="dir/big", Range="bytes=10-19")
            assert ranged["Body"].read() == big[10:20]
            upload = s3.create_multipart_upload(Bucket="master.mounted", Key="mp")
            etag = s3.upload_part(Bucket="master.mounted", Key="mp", PartNumber=1,
                                  UploadId=upload["UploadId"], Body=big)["ETag"]
            s3.complete_multipart_upload(
                Bucket="master.mounted", Key="mp", UploadId=upload["UploadId"],
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
            )
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="master.mounted")["Contents"]]
            assert keys == ["dir/big", "mp"]
            # The signature is checked over the whole path, mount point included.
            with pytest.raises(ClientError) as e:
                s3_at(child_url, secret="wrong").get_object(Bucket="master.mounted", Key="dir/big")
            assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
            # The rest of the embedder's site is untouched.
            with urllib.request.urlopen(child_url[: -len("/s3")] + "/") as page:
                assert page.read() == b"the embedder's own page"
            # The same resource at the root of its own plain Site.
            s3_root = s3_at(root_url)
            assert s3_root.get_object(Bucket="master.mounted", Key="mp")["Body"].read() == big
            s3_root.put_object(Bucket="master.mounted", Key="small", Body=b"tiny")
            assert s3.get_object(Bucket="master.mounted", Key="small")["Body"].read() == b"tiny"

        yield deferToThread(use_it)
    finally:
        for port in ports:
            yield port.stopListening()
        yield service.stopService()
