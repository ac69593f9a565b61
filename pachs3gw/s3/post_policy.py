"""Browser form uploads (POST Object): the signed policy and its conditions.

A web page uploads to S3 without a proxy by posting a form whose fields
carry a policy -- a base64 JSON document with an expiration and conditions
on the other fields -- signed with the uploader's secret (SigV4 as boto3's
``generate_presigned_post`` does, or SigV2). This module checks such a form
as S3 does:

- the signature over the base64 policy text (SigV4: the hex HMAC-SHA256 with
  the scope's signing key; SigV2: the base64 HMAC-SHA1 with the secret);
- the expiration;
- every condition: ``{"field": value}`` and ``["eq", "$field", value]``
  (exact), ``["starts-with", "$field", prefix]``, and
  ``["content-length-range", min, max]`` (returned, checked as the file streams);
- every form field except the policy, the signature, ``file`` and
  ``x-ignore-*`` fields must be named by a condition.

Field names are compared case-insensitively; values exactly. Pure
functions: safe from any thread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime, timezone
from typing import Any, Mapping

import attrs

from pachs3gw.s3 import errors
from pachs3gw.s3.signing._v4 import signing_key

#: Fields no condition needs to name (S3's list).
_EXEMPT = frozenset({"policy", "x-amz-signature", "signature", "file", "awsaccesskeyid"})
#: The largest body S3 accepts in one POST.
MAX_POST_SIZE = 5 * 1024**3


@attrs.frozen
class Policy:
    """A decoded policy: what the upload may be, and who signed it."""

    expiration: datetime
    conditions: tuple[Any, ...]
    #: Inclusive bounds of the file's size (``content-length-range``).
    min_size: int = 0
    max_size: int = MAX_POST_SIZE


@attrs.frozen
class FormSignature:
    """Who signed a form, and how to check it once the secret is known."""

    access_key: str
    version: int  # 2 or 4
    signature: str
    scope: str = ""


def _invalid_policy(why: str) -> errors.S3Error:
    return errors.InvalidPolicyDocument(f"Invalid Policy: {why}")


def _denied(why: str) -> errors.S3Error:
    return errors.AccessDenied(f"Invalid according to Policy: {why}")


def _parse_time(value: str) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


def decode_policy(policy_b64: str) -> Policy:
    """Parse the ``policy`` field; InvalidPolicyDocument if it is not a policy."""
    try:
        raw = json.loads(base64.b64decode(policy_b64.encode("ascii"), validate=True))
    except (binascii.Error, ValueError, UnicodeError):
        raise _invalid_policy("Invalid JSON.") from None
    if not isinstance(raw, dict):
        raise _invalid_policy("Invalid JSON.")
    expiration = raw.get("expiration")
    if not isinstance(expiration, str) or _parse_time(expiration) is None:
        raise _invalid_policy("Policy missing expiration, or expiration is not a date.")
    conditions = raw.get("conditions")
    if not isinstance(conditions, list):
        raise _invalid_policy("Policy missing conditions.")
    min_size, max_size = 0, MAX_POST_SIZE
    for c in conditions:
        if isinstance(c, list) and c and str(c[0]).lower() == "content-length-range":
            try:
                min_size, max_size = int(c[1]), int(c[2])
            except (IndexError, TypeError, ValueError):
                raise _invalid_policy("Invalid content-length-range.") from None
        elif isinstance(c, dict):
            if len(c) != 1:
                raise _invalid_policy("Each condition object must have exactly one field.")
        elif not (isinstance(c, list) and len(c) == 3 and str(c[0]).lower() in ("eq", "starts-with")):
            raise _invalid_policy(f"Invalid condition {json.dumps(c)}.")
    parsed = _parse_time(expiration)
    assert parsed is not None
    return Policy(parsed, tuple(conditions), min_size, max_size)


def form_signature(fields: Mapping[str, str]) -> FormSignature | None:
    """The signer of a form (SigV4 or SigV2 fields), or None for an unsigned form."""
    if "x-amz-signature" in fields or "x-amz-credential" in fields:
        algorithm = fields.get("x-amz-algorithm", "")
        if algorithm != "AWS4-HMAC-SHA256":
            raise errors.InvalidArgument(
                "Only AWS4-HMAC-SHA256 is supported as x-amz-algorithm.",
                extra={"ArgumentName": "x-amz-algorithm", "ArgumentValue": algorithm},
            )
        credential = fields.get("x-amz-credential", "")
        access_key, _, scope = credential.partition("/")
        parts = scope.split("/")
        if not access_key or len(parts) != 4 or parts[3] != "aws4_request":
            raise errors.InvalidArgument(
                "x-amz-credential must be <access key>/<date>/<region>/s3/aws4_request.",
                extra={"ArgumentName": "x-amz-credential", "ArgumentValue": credential},
            )
        return FormSignature(access_key, 4, fields.get("x-amz-signature", ""), scope)
    if "signature" in fields or "awsaccesskeyid" in fields:
        return FormSignature(fields.get("awsaccesskeyid", ""), 2, fields.get("signature", ""))
    return None


def check_signature(sig: FormSignature, policy_b64: str, secret: str) -> None:
    """SignatureDoesNotMatch unless ``sig`` signs ``policy_b64`` with ``secret``."""
    if sig.version == 4:
        key = signing_key(secret, sig.scope)
        expected = hmac.new(key, policy_b64.encode("ascii"), hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, sig.signature.strip().lower())
    else:
        digest = hmac.new(secret.encode("utf-8"), policy_b64.encode("ascii"), hashlib.sha1).digest()
        ok = hmac.compare_digest(base64.b64encode(digest).decode("ascii"), sig.signature.strip())
    if not ok:
        raise errors.SignatureDoesNotMatch(
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method."
        )


def check_conditions(
    policy: Policy, fields: Mapping[str, str], bucket: str, now: datetime
) -> None:
    """AccessDenied unless the form (with ``bucket`` and the final ``key``) meets the policy."""
    if now >= policy.expiration:
        raise _denied("Policy expired.")
    values = dict(fields)
    values["bucket"] = bucket
    named: set[str] = set()
    for c in policy.conditions:
        if isinstance(c, dict):
            ((name, expected),) = c.items()
            op, field = "eq", str(name).lower().lstrip("$")
        else:
            op = str(c[0]).lower()
            if op == "content-length-range":
                continue
            field, expected = str(c[1]).lower(), c[2]
            if not field.startswith("$"):
                raise _invalid_policy(f"Condition field must start with '$': {json.dumps(c)}.")
            field = field[1:]
        named.add(field)
        actual = values.get(field, "")
        expected = "" if expected is None else str(expected)
        if op == "eq" and actual != expected or op == "starts-with" and not actual.startswith(expected):
            raise _denied(f"Policy Condition failed: {json.dumps([op, '$' + field, expected])}")
    extra = sorted(
        name
        for name in fields
        if name not in named and name not in _EXEMPT and not name.startswith("x-ignore-")
    )
    if extra:
        raise _denied(f"Extra input fields: {', '.join(extra)}")


def check_size(policy: Policy | None, size: int, *, final: bool) -> None:
    """EntityTooLarge as soon as the file passes the maximum; EntityTooSmall at its end."""
    low, high = (policy.min_size, policy.max_size) if policy is not None else (0, MAX_POST_SIZE)
    if size > high:
        raise errors.EntityTooLarge(
            "Your proposed upload exceeds the maximum allowed size",
            extra={"ProposedSize": str(size), "MaxSizeAllowed": str(high)},
        )
    if final and size < low:
        raise errors.EntityTooSmall(
            "Your proposed upload is smaller than the minimum allowed size",
            extra={"ProposedSize": str(size), "MinSizeAllowed": str(low)},
        )
