import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pachs3gw.s3 import errors
from pachs3gw.s3.chunked import AwsChunkedDecoder
from pachs3gw.s3.signing import ChunkSignatureVerifier

KEY = b"k" * 32
DATE = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
EMPTY = hashlib.sha256(b"").hexdigest()


def encode_unsigned(chunks: list[bytes], trailers: dict[str, str] | None = None) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c)
    out += b"0\r\n"
    for name, value in (trailers or {}).items():
        out += f"{name}:{value}\r\n".encode()
    return out + b"\r\n"


def encode_signed(chunks: list[bytes], trailers: dict[str, str] | None = None) -> bytes:
    prev = SEED
    out = b""

    def sig(kind: str, last: str) -> str:
        sts = "\n".join(["AWS4-HMAC-SHA256-" + kind, DATE, SCOPE, prev, *last])
        return hmac.new(KEY, sts.encode(), hashlib.sha256).hexdigest()

    for c in [c for c in chunks if c] + [b""]:
        s = sig("PAYLOAD", [EMPTY, hashlib.sha256(c).hexdigest()])
        out += b"%x;chunk-signature=%s\r\n%s" % (len(c), s.encode(), c)
        out += b"\r\n" if c else b""
        prev = s
    if trailers is not None:
        text = "".join(f"{n}:{v}\n" for n, v in trailers.items())
        for n, v in trailers.items():
            out += f"{n}:{v}\r\n".encode()
        s = sig("TRAILER", [hashlib.sha256(text.encode()).hexdigest()])
        out += f"x-amz-trailer-signature:{s}\r\n".encode()
    return out + b"\r\n"


def verifier(trailer: bool = False) -> ChunkSignatureVerifier:
    return ChunkSignatureVerifier(KEY, DATE, SCOPE, SEED, expects_trailer=trailer)


def decode(stream: bytes, decoder: AwsChunkedDecoder, step: int = 0) -> tuple[bytes, dict[str, str]]:
    out = []
    if step:
        for i in range(0, len(stream), step):
            out += decoder.feed(stream[i : i + step])
    else:
        out += decoder.feed(stream)
    return b"".join(out), decoder.finish()


def test_unsigned_with_trailer_like_boto3() -> None:
    body, trailers = decode(
        encode_unsigned([b"hello ", b"world"], {"x-amz-checksum-crc32": "DUoRhQ=="}),
        AwsChunkedDecoder(expected_length=11),
    )
    assert body == b"hello world"
    assert trailers == {"x-amz-checksum-crc32": "DUoRhQ=="}


def test_boto3_framing_is_accepted() -> None:
    # botocore.httpchecksum.AwsChunkedWrapper's exact output.
    stream = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"
    assert decode(stream, AwsChunkedDecoder(), step=1) == (b"hello", {"x-amz-checksum-crc32": "NhCmhg=="})


def test_signed_chunks_verify_and_decode_byte_by_byte() -> None:
    stream = encode_signed([b"a" * 1000, b"b" * 10])
    assert decode(stream, AwsChunkedDecoder(verifier()), step=1)[0] == b"a" * 1000 + b"b" * 10


def test_signed_trailer_verifies() -> None:
    stream = encode_signed([b"abc"], {"x-amz-checksum-crc32c": "sOO8/Q=="})
    assert decode(stream, AwsChunkedDecoder(verifier(True)))[1] == {"x-amz-checksum-crc32c": "sOO8/Q=="}


def test_tampered_chunk_data_is_signature_does_not_match() -> None:
    stream = encode_signed([b"a" * 100, b"b" * 10]).replace(b"a" * 100, b"a" * 99 + b"X")
    with pytest.raises(errors.SignatureDoesNotMatch):
        decode(stream, AwsChunkedDecoder(verifier()))


def test_reordered_chunks_are_signature_does_not_match() -> None:
    one = encode_signed([b"a" * 10, b"b" * 10])
    lines = one.split(b"\r\n")
    # swap the two data chunks with their headers
    swapped = b"\r\n".join(lines[2:4] + lines[0:2] + lines[4:])
    with pytest.raises(errors.SignatureDoesNotMatch):
        decode(swapped, AwsChunkedDecoder(verifier()))


def test_tampered_trailer_is_signature_does_not_match() -> None:
    stream = encode_signed([b"abc"], {"x-amz-checksum-crc32c": "sOO8/Q=="}).replace(b"sOO8", b"sOO9")
    with pytest.raises(errors.SignatureDoesNotMatch):
        decode(stream, AwsChunkedDecoder(verifier(True)))


def test_missing_chunk_signature_when_signed_is_rejected() -> None:
    with pytest.raises(errors.SignatureDoesNotMatch):
        decode(encode_unsigned([b"abc"]), AwsChunkedDecoder(verifier()))


def test_missing_trailer_signature_when_expected_is_rejected() -> None:
    with pytest.raises(errors.SignatureDoesNotMatch):
        decode(encode_signed([b"abc"]), AwsChunkedDecoder(verifier(True)))


@pytest.mark.parametrize("cut", [1, 5, 8, 12, 14, 20])
def test_truncated_stream_is_incomplete_body(cut: int) -> None:
    stream = encode_unsigned([b"hello", b"world"])
    d = AwsChunkedDecoder()
    d.feed(stream[:-cut])
    with pytest.raises(errors.IncompleteBody):
        d.finish()


def test_decoded_length_must_match() -> None:
    with pytest.raises(errors.IncompleteBody):
        decode(encode_unsigned([b"hello"]), AwsChunkedDecoder(expected_length=6))
    with pytest.raises(errors.IncompleteBody):
        decode(encode_unsigned([b"hello"]), AwsChunkedDecoder(expected_length=4))


@pytest.mark.parametrize(
    "stream",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\nextra",
        b"0\r\nno-colon\r\n\r\n",
        b"0\r\nx:1\r\nx:2\r\n\r\n",
        b"1" * 5000 + b"\r\n",
    ],
)
def test_malformed_framing_is_an_s3_error(stream: bytes) -> None:
    with pytest.raises(errors.S3Error):
        decode(stream, AwsChunkedDecoder())


def test_passes_payload_through_without_waiting_for_the_chunk_end() -> None:
    d = AwsChunkedDecoder()
    assert d.feed(b"100000\r\n") == []
    assert d.feed(b"x" * 10) == [b"x" * 10]
    assert d.decoded_length == 10


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=300), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
    signed=st.booleans(),
    with_trailer=st.booleans(),
)
def test_any_split_decodes_identically(chunks: list[bytes], cuts: list[int], signed: bool, with_trailer: bool) -> None:
    trailers = {"x-amz-checksum-crc32": "AAAAAA=="} if with_trailer else None
    if signed:
        stream = encode_signed(chunks, trailers)
        d = AwsChunkedDecoder(verifier(with_trailer), expected_length=sum(map(len, chunks)))
    else:
        stream = encode_unsigned(chunks, trailers)
        d = AwsChunkedDecoder(expected_length=sum(map(len, chunks)))
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    out = []
    for a, b in zip(points, points[1:]):
        out += d.feed(stream[a:b])
    assert b"".join(out) == b"".join(chunks)
    assert d.finish() == (trailers or {})
