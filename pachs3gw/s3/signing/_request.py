"""What a signature covers, and what a request claims about its signer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal
from urllib.parse import unquote_to_bytes

import attrs

Scheme = Literal["v4-header", "v4-query", "v2-header", "v2-query"]


@attrs.frozen
class SignedRequest:
    """The parts of an HTTP request a signature can cover, as they came off the wire.

    Signatures are computed over bytes the client chose (its own percent-
    encoding of the path and query), so the HTTP layer passes them raw rather
    than decoded: re-encoding would lose the client's choices.

    Header values are ``str``; decode them from bytes as ISO-8859-1 (lossless)
    or UTF-8 — the verifier tries both byte forms.
    """

    method: str
    #: Exactly as on the request line: percent-encoded, no query.
    raw_path: bytes
    #: The raw query string, without ``?``.
    raw_query: bytes
    #: Lowercase names → values in the order received.
    headers: Mapping[str, Sequence[str]]
    #: The server's clock (aware, UTC), injected so tests control it.
    now: datetime
    #: ``raw_query`` split once (every scheme reads it, some twice).
    params: list[QueryParam] = attrs.field(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "params", parse_query(self.raw_query))

    def header(self, name: str) -> str | None:
        """The values of a header joined with ``,`` (RFC 9110), or ``None``."""
        values = self.headers.get(name)
        if not values:
            return None
        return ",".join(values)


@attrs.frozen
class QueryParam:
    """One ``name=value`` of the query string, raw and decoded."""

    raw_name: bytes
    raw_value: bytes
    has_equals: bool
    name: bytes
    value: bytes


def parse_query(raw_query: bytes) -> list[QueryParam]:
    """Split a raw query string, keeping the raw and decoded forms (``+`` stays ``+``).

    Empty segments (``a&&b``) are kept too: some signers include them.
    """
    if not raw_query:
        return []
    params = []
    for segment in raw_query.split(b"&"):
        name, eq, value = segment.partition(b"=")
        params.append(
            QueryParam(
                raw_name=name,
                raw_value=value,
                has_equals=bool(eq),
                name=unquote_to_bytes(name),
                value=unquote_to_bytes(value),
            )
        )
    return params


def query_dict(params: Sequence[QueryParam]) -> dict[str, str]:
    """First value of each decoded parameter name, as text (for the ``X-Amz-*`` auth parameters)."""
    out: dict[str, str] = {}
    for p in params:
        name = p.name.decode("utf-8", "replace")
        if name not in out:
            out[name] = p.value.decode("utf-8", "replace")
    return out


@attrs.frozen
class Credentials:
    """Who a request says signed it, and how; enough to verify the signature once the secret is known.

    Returned by :func:`pachs3gw.s3.signing.parse_credentials` after syntax
    checks only: nothing here is trusted until
    :func:`pachs3gw.s3.signing.verify` has passed.
    """

    access_key: str
    scheme: Scheme
    signature: str
    #: SigV4: the ``SignedHeaders`` list, as given.
    signed_headers: tuple[str, ...] = ()
    #: SigV4: ``YYYYMMDD/region/service/aws4_request``.
    scope: str = ""
    #: SigV4: the request timestamp as signed (``YYYYMMDDTHHMMSSZ``).
    amz_date: str = ""
    #: The time the request claims it was signed (SigV4, SigV2 header).
    request_time: datetime | None = None
    #: SigV4 presigned: validity in seconds from ``request_time``.
    expires_in: int | None = None
    #: SigV2 presigned: absolute expiry, seconds since the epoch (also the
    #: "Date" of its string to sign).
    expires_at: int | None = None

    @property
    def region(self) -> str:
        """SigV4 region from the scope (``""`` for SigV2)."""
        parts = self.scope.split("/")
        return parts[1] if len(parts) == 4 else ""
