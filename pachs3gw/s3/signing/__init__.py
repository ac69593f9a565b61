"""AWS request signatures: SigV4 and SigV2, in the Authorization header or presigned.

Pure and synchronous: the HTTP layer builds a :class:`SignedRequest` from the
request line and headers, calls :func:`parse_credentials` to learn the access
key (the Pachyderm token), looks the secret up, and calls :func:`verify`.
"""

from pachs3gw.s3.signing._chunk import ChunkSignatureVerifier

__all__ = ["ChunkSignatureVerifier"]
