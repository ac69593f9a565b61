import base64
import hashlib
import zlib

import pytest

from pachs3gw.s3 import errors
from pachs3gw.s3.checksums import BodyVerifier, checksum_of, multipart_etag

BODY = b"hello world\n" * 1000


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def run(headers: dict[str, str], body: bytes = BODY, trailers: dict[str, str] | None = None) -> BodyVerifier:
    v = BodyVerifier.from_headers(headers)
    for i in range(0, len(body), 777):
        v.update(body[i : i + 777])
    v.finish(trailers or {})
    return v


def test_md5_is_always_computed_for_the_etag() -> None:
    v = run({})
    assert v.md5_hex == hashlib.md5(BODY).hexdigest()
    assert v.size == len(BODY)
    assert v.checksums == {}


def test_content_md5_that_matches_passes_and_mismatch_is_bad_digest() -> None:
    run({"content-md5": b64(hashlib.md5(BODY).digest())})
    with pytest.raises(errors.BadDigest):
        run({"content-md5": b64(hashlib.md5(b"x").digest())})


@pytest.mark.parametrize("value", ["not base64!", b64(b"short"), "", b64(b"x" * 17)])
def test_malformed_content_md5_is_invalid_digest(value: str) -> None:
    with pytest.raises(errors.InvalidDigest):
        BodyVerifier.from_headers({"content-md5": value})


def test_content_sha256_hex_is_checked() -> None:
    run({"x-amz-content-sha256": hashlib.sha256(BODY).hexdigest()})
    run({"x-amz-content-sha256": hashlib.sha256(BODY).hexdigest().upper()})
    with pytest.raises(errors.XAmzContentSHA256Mismatch):
        run({"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()})


@pytest.mark.parametrize(
    "value",
    ["UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
     "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"],
)
def test_special_content_sha256_values_are_not_compared(value: str) -> None:
    run({"x-amz-content-sha256": value})


def test_bogus_content_sha256_is_invalid_argument() -> None:
    with pytest.raises(errors.InvalidArgument):
        BodyVerifier.from_headers({"x-amz-content-sha256": "abc"})


def test_crc32_of_known_vector() -> None:
    assert checksum_of("crc32", b"123456789") == b64((0xCBF43926).to_bytes(4, "big"))
    assert checksum_of("crc32c", b"123456789") == b64((0xE3069283).to_bytes(4, "big"))
    assert checksum_of("crc64nvme", b"123456789") == b64((0xAE8B14860A799888).to_bytes(8, "big"))
    assert checksum_of("sha1", b"abc") == b64(hashlib.sha1(b"abc").digest())


@pytest.mark.parametrize("alg", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_checksum_header_verified_and_reported(alg: str) -> None:
    good = checksum_of(alg, BODY)
    v = run({f"x-amz-checksum-{alg.lower()}": good, "x-amz-sdk-checksum-algorithm": alg})
    assert v.checksums == {alg: good}
    with pytest.raises(errors.BadDigest) as e:
        run({f"x-amz-checksum-{alg.lower()}": checksum_of(alg, b"other")})
    assert e.value.message == f"The {alg} you specified did not match the calculated checksum."


@pytest.mark.parametrize("value", ["!!!", b64(b"12345"), ""])
def test_malformed_checksum_header_is_invalid_request(value: str) -> None:
    with pytest.raises(errors.InvalidRequest) as e:
        BodyVerifier.from_headers({"x-amz-checksum-crc32": value})
    assert e.value.message == "Value for x-amz-checksum-crc32 header is invalid."


def test_two_checksum_headers_are_invalid_request() -> None:
    with pytest.raises(errors.InvalidRequest):
        BodyVerifier.from_headers(
            {"x-amz-checksum-crc32": checksum_of("crc32", b""), "x-amz-checksum-sha1": checksum_of("sha1", b"")}
        )


def test_sdk_algorithm_must_match_the_checksum_sent() -> None:
    with pytest.raises(errors.InvalidRequest):
        BodyVerifier.from_headers(
            {"x-amz-checksum-crc32": checksum_of("crc32", b""), "x-amz-sdk-checksum-algorithm": "SHA1"}
        )
    with pytest.raises(errors.InvalidRequest):
        BodyVerifier.from_headers({"x-amz-sdk-checksum-algorithm": "MD4", "x-amz-trailer": "x-amz-checksum-crc32"})
    with pytest.raises(errors.InvalidRequest):
        BodyVerifier.from_headers({"x-amz-sdk-checksum-algorithm": "CRC32"})


def test_checksum_mode_and_algorithm_headers_are_not_values() -> None:
    BodyVerifier.from_headers({"x-amz-checksum-mode": "ENABLED", "x-amz-checksum-algorithm": "CRC32"})


def test_trailer_checksum_verified() -> None:
    good = checksum_of("CRC32", BODY)
    headers = {"x-amz-trailer": "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm": "CRC32"}
    assert run(headers, trailers={"x-amz-checksum-crc32": good}).checksums == {"CRC32": good}
    with pytest.raises(errors.BadDigest):
        run(headers, trailers={"x-amz-checksum-crc32": checksum_of("CRC32", b"")})
    with pytest.raises(errors.MalformedTrailerError):
        run(headers, trailers={})
    with pytest.raises(errors.InvalidRequest):
        run(headers, trailers={"x-amz-checksum-crc32": "zz"})


def test_trailer_names_parameter() -> None:
    v = BodyVerifier.from_headers({}, trailer_names=["X-Amz-Checksum-CRC32C"])
    v.update(b"abc")
    v.finish({"x-amz-checksum-crc32c": checksum_of("crc32c", b"abc")})


def test_unsupported_trailer_is_invalid_request() -> None:
    with pytest.raises(errors.InvalidRequest):
        BodyVerifier.from_headers({"x-amz-trailer": "x-amz-meta-foo"})


def test_compute_extra_algorithm() -> None:
    v = BodyVerifier.from_headers({}, compute=["crc32"])
    v.update(b"abc")
    v.finish()
    assert v.checksums == {"CRC32": b64(zlib.crc32(b"abc").to_bytes(4, "big"))}


def test_multipart_etag_is_md5_of_binary_md5s_dash_n() -> None:
    parts = [hashlib.md5(b"a").hexdigest(), hashlib.md5(b"b").hexdigest()]
    expected = hashlib.md5(hashlib.md5(b"a").digest() + hashlib.md5(b"b").digest()).hexdigest() + "-2"
    assert multipart_etag(parts) == expected
    assert multipart_etag([f'"{p}"' for p in parts]) == expected
