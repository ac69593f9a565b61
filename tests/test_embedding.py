"""Embedding: GatewayService inside an existing Twisted program (this test's reactor)."""

from __future__ import annotations

from pathlib import Path

import boto3
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
