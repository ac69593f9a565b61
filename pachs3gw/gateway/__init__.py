"""S3 semantics over PFS: the backend the S3 HTTP layer calls, over the PFS client."""

from pachs3gw.gateway.auth import PachydermAuthenticator
from pachs3gw.gateway.backend import PfsBackend, PfsBackendFactory
from pachs3gw.gateway.buckets import BucketRef, parse_bucket

__all__ = [
    "BucketRef",
    "PachydermAuthenticator",
    "PfsBackend",
    "PfsBackendFactory",
    "parse_bucket",
]
