"""AWS request signatures: SigV4 and SigV2, in the Authorization header or presigned.

Pure and synchronous, so it can run on any thread.  The HTTP layer builds a
:class:`SignedRequest` from the request line and headers, calls
:func:`parse_credentials` to learn the access key (with auth on: the
Pachyderm token), looks the secret up, and calls :func:`verify`.  For a
``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`` body, :func:`verify` returns
the :class:`ChunkSignatureVerifier` to give the aws-chunked decoder.  The
payload hash of a non-streaming SigV4 request (``x-amz-content-sha256`` as
hex) is checked on the stream by :class:`pachs3gw.s3.checksums.BodyVerifier`,
not here: it is only known once the body has been read.
"""

from __future__ import annotations

from datetime import timedelta

from pachs3gw.s3 import errors
from pachs3gw.s3.signing import _v2, _v4
from pachs3gw.s3.signing._chunk import ChunkSignatureVerifier
from pachs3gw.s3.signing._request import Credentials, Scheme, SignedRequest, query_dict
from pachs3gw.s3.signing._v4 import MAX_EXPIRES, signing_key

__all__ = [
    "MAX_EXPIRES",
    "ChunkSignatureVerifier",
    "Credentials",
    "Scheme",
    "SignedRequest",
    "parse_credentials",
    "signing_key",
    "verify",
]


def parse_credentials(req: SignedRequest) -> Credentials | None:
    """Find the signer's claims in ``req``; ``None`` for an anonymous request.

    Checks syntax only.  Raises, as S3 does: InvalidArgument (unsupported
    scheme, two auth mechanisms, bad SigV2 header),
    AuthorizationHeaderMalformed (bad SigV4 header),
    AuthorizationQueryParametersError (bad SigV4 presigned parameters),
    AccessDenied (incomplete SigV2 presigned parameters, no usable date).
    """
    authorization = req.header("authorization")
    params = req.params
    names = {p.name for p in params}
    v4_query = b"X-Amz-Algorithm" in names or b"X-Amz-Credential" in names
    v2_query = b"Signature" in names or b"AWSAccessKeyId" in names
    if authorization is not None and (v4_query or v2_query) or (v4_query and v2_query):
        raise errors.InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
            extra={"ArgumentName": "Authorization"},
        )
    if authorization is not None:
        authorization = authorization.strip()
        if authorization.startswith(_v4.ALGORITHM + " "):
            return _v4.parse_header(req, authorization)
        if authorization.startswith("AWS "):
            return _v2.parse_header(authorization, req)
        raise errors.InvalidArgument(
            "Unsupported Authorization Type",
            extra={"ArgumentName": "Authorization", "ArgumentValue": authorization[:100]},
        )
    if v4_query:
        return _v4.parse_query_auth(req, params)
    if v2_query:
        return _v2.parse_query_auth(params)
    return None


def verify(
    req: SignedRequest,
    creds: Credentials,
    secret_key: str,
    *,
    max_skew: timedelta = timedelta(minutes=15),
) -> ChunkSignatureVerifier | None:
    """Check that ``creds`` signed ``req`` with ``secret_key``, in time.

    Raises SignatureDoesNotMatch, RequestTimeTooSkewed (header auth outside
    ``max_skew``), AccessDenied("Request has expired") for an expired
    presigned URL, AccessDenied for headers S3 requires signed but
    not signed (``x-amz-*``; under header auth also Content-MD5 and
    Content-Type: see ``_v4.unsigned_headers``), InvalidRequest when SigV4 header auth lacks
    ``x-amz-content-sha256``.  Returns a :class:`ChunkSignatureVerifier`
    when the body is a signed aws-chunked stream, else ``None``.
    """
    if creds.scheme in ("v4-header", "v4-query"):
        return _v4.verify_v4(req, creds, secret_key, max_skew)
    _v2.verify_v2(req, creds, secret_key, max_skew)
    return None
