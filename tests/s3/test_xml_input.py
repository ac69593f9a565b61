import pytest

from pachs3gw.s3 import errors
from pachs3gw.s3.interfaces import CompletedPart
from pachs3gw.s3.limits import MAX_XML_BODY
from pachs3gw.s3.xml_input import (
    parse_complete_multipart,
    parse_create_bucket,
    parse_delete,
)

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


@pytest.mark.parametrize("ns", [NS, ""])
def test_complete_multipart_parts_in_document_order(ns: str) -> None:
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
    <CompleteMultipartUpload {ns}>
      <Part><ETag>"aaa"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>
      <Part><PartNumber> 2 </PartNumber><ETag>bbb</ETag></Part>
    </CompleteMultipartUpload>""".encode()
    assert parse_complete_multipart(body) == [
        CompletedPart(1, "aaa", {"CRC32": "AAAAAA=="}),
        CompletedPart(2, "bbb", {}),
    ]


def test_complete_multipart_etag_entity_quotes() -> None:
    body = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;abc&quot;</ETag></Part></CompleteMultipartUpload>"
    assert parse_complete_multipart(body)[0].etag == "abc"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<CompleteMultipartUpload/>",
        b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><ETag>a</ETag></Part></CompleteMultipartUpload>",
        b"<Other><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Other>",
        b'<CompleteMultipartUpload xmlns="urn:other"><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>',
        b"<CompleteMultipartUpload><Part>",
    ],
)
def test_malformed_complete_multipart(body: bytes) -> None:
    with pytest.raises(errors.MalformedXML):
        parse_complete_multipart(body)


def test_part_number_out_of_range_is_invalid_argument() -> None:
    with pytest.raises(errors.InvalidArgument):
        parse_complete_multipart(
            b"<CompleteMultipartUpload><Part><PartNumber>10001</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>"
        )


@pytest.mark.parametrize("ns", [NS, ""])
def test_delete_objects_keys_versions_and_quiet(ns: str) -> None:
    body = f"""<Delete {ns}><Quiet>True</Quiet>
      <Object><Key>a/b c.txt</Key></Object>
      <Object><Key> ünï&amp;code </Key><VersionId>0123</VersionId></Object>
    </Delete>""".encode()
    req = parse_delete(body)
    assert req.quiet is True
    assert req.objects == [("a/b c.txt", None), (" ünï&code ", "0123")]


def test_delete_objects_quiet_defaults_to_false() -> None:
    assert parse_delete(b"<Delete><Object><Key>k</Key></Object></Delete>").quiet is False


def test_delete_objects_limit_is_1000_keys() -> None:
    objs = "".join(f"<Object><Key>k{i}</Key></Object>" for i in range(1000))
    assert len(parse_delete(f"<Delete>{objs}</Delete>".encode()).objects) == 1000
    objs += "<Object><Key>one-too-many</Key></Object>"
    with pytest.raises(errors.MalformedXML):
        parse_delete(f"<Delete>{objs}</Delete>".encode())


@pytest.mark.parametrize(
    "body",
    [
        b"<Delete></Delete>",
        b"<Delete><Object></Object></Delete>",
        b"<Delete><Object><Key></Key></Object></Delete>",
        b"<Delete><Quiet>maybe</Quiet><Object><Key>k</Key></Object></Delete>",
        b"<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>",
        b"not xml",
    ],
)
def test_malformed_delete(body: bytes) -> None:
    with pytest.raises(errors.MalformedXML):
        parse_delete(body)


def test_xxe_is_refused() -> None:
    body = b"""<?xml version="1.0"?>
    <!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
    <Delete><Object><Key>&x;</Key></Object></Delete>"""
    with pytest.raises(errors.MalformedXML):
        parse_delete(body)


def test_billion_laughs_is_refused() -> None:
    body = b"""<?xml version="1.0"?>
    <!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
    <Delete><Object><Key>&b;</Key></Object></Delete>"""
    with pytest.raises(errors.MalformedXML):
        parse_delete(body)


def test_oversized_body_is_refused() -> None:
    with pytest.raises(errors.MalformedXML):
        parse_delete(b" " * (MAX_XML_BODY + 1))


def test_create_bucket_location() -> None:
    assert parse_create_bucket(b"") is None
    assert parse_create_bucket(b"  \n") is None
    assert (
        parse_create_bucket(
            f"<CreateBucketConfiguration {NS}><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>".encode()
        )
        == "eu-west-1"
    )
    assert parse_create_bucket(b"<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>") is None
    with pytest.raises(errors.MalformedXML):
        parse_create_bucket(b"<Bucket/>")


@pytest.mark.parametrize(
    "encoding", ["EBCDIC", "rot13", "base64", "idna", "undefined", "utf-7", "utf-32", "nonsense"]
)
def test_a_declared_encoding_that_cannot_be_read_is_malformed_xml(encoding: str) -> None:
    body = (
        f'<?xml version="1.0" encoding="{encoding}"?>'
        "<Delete><Object><Key>a</Key></Object></Delete>"
    ).encode()
    with pytest.raises(errors.S3Error) as e:
        parse_delete(body)
    assert e.value.code == "MalformedXML"
    with pytest.raises(errors.S3Error) as e:
        parse_complete_multipart(body.replace(b"Delete", b"CompleteMultipartUpload"))
    assert e.value.code == "MalformedXML"
