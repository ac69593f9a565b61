"""The key ⇄ path mapping on its own: one to one, paths every server keeps as they are, S3 order.

pachd's rules are re-stated here from its source (``storage.ValidateFilename``:
printable ASCII, no glob characters, no ``.``/``..`` segments; ``CleanPath``:
``path.Clean`` plus a leading ``/`` and no trailing one); the embedded
store's are its own ``clean_path``.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer

from pachs3gw.gateway.keys import (
    ENCODED_DIR,
    KeyPaths,
    Placement,
    could_be_plain_prefix,
    encoded_path,
    hex_prefix,
    path_to_key,
    placement,
    plain_path,
)
from pachs3gw.pfs import errors as pfs_errors
from pachs3gw.pfs import refs
from pachs3gw.pfsd._records import clean_path
from pachs3gw.s3 import errors

_PACHD_VALID = re.compile(r"^[ -~]+$")
_PACHD_GLOB = re.compile(r"[*?\[\]{}!()@+^]")


def pachd_accepts_unchanged(path: str) -> bool:
    """What pachd's ModifyFile stores at exactly ``path`` (ValidateFilename, then Clean)."""
    if not _PACHD_VALID.match(path) or _PACHD_GLOB.search(path) or path.endswith("/"):
        return False
    if any(part in (".", "..") for part in path.split("/")):
        return False
    cleaned = "/" + posixpath.normpath(path).strip("/")
    return cleaned == path


def embedded_accepts_unchanged(path: str) -> bool:
    try:
        return clean_path(path) == path
    except Exception:  # noqa: BLE001 - the store refuses it
        return False


def stored_path(key: str, allows_any: bool) -> str:
    paths = KeyPaths(allows_any_characters=allows_any).read_paths(key)
    assert len(paths) == 1
    return paths[0]


ODD_KEYS = [
    "../x", "./x", "a//b", "/lead", ".", "..", "a/./b", "a/../b", "a//", "/", "//", "a/b//",
    "x/.s3folder", ".s3folder", ".s3folder/", "a/.s3folder/b", ".pachs3gw-keys", ".pachs3gw-keys/x",
    ".pachs3gw-end-of-stream", "nul\x00byte", "top\U0010ffff", "trailing/..", "../",
]
PLAIN_KEYS = ["a", "a/b.csv", "a/", "a/b/", ".env", "..x", "x..", ".s3folderX", "a b/c~d=e&f%g#h$"]
DEPENDS_KEYS = ["café", "photo (1).jpg", "a+b", "ctl\x01char", "tab\tkey/", "日本/語", "a*b", "x^y"]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_keys_pfs_would_refuse_or_rewrite_are_encoded_everywhere(key: str) -> None:
    assert placement(key) is Placement.ENCODED
    for allows in (True, False):
        path = stored_path(key, allows)
        assert path == ENCODED_DIR + key.encode().hex()
        assert pachd_accepts_unchanged(path) and embedded_accepts_unchanged(path)
        assert path_to_key(path) == key


@pytest.mark.parametrize("key", PLAIN_KEYS)
def test_keys_every_server_keeps_stay_at_their_plain_path(key: str) -> None:
    assert placement(key) is Placement.PLAIN
    expected = "/" + key + (".s3folder" if key.endswith("/") else "")
    assert KeyPaths().read_paths(key) == (expected,)
    assert pachd_accepts_unchanged(expected) and embedded_accepts_unchanged(expected)
    assert path_to_key(expected) == key


@pytest.mark.parametrize("key", DEPENDS_KEYS)
def test_keys_pachd_refuses_are_plain_on_the_embedded_store_and_encoded_on_pachd(key: str) -> None:
    assert placement(key) is Placement.PLAIN_IF_ALLOWED
    assert stored_path(key, True) == plain_path(key)
    assert embedded_accepts_unchanged(plain_path(key))
    assert not pachd_accepts_unchanged(plain_path(key))
    assert stored_path(key, False) == encoded_path(key)
    # Until the server is known, a read looks at both, the plain path first.
    assert KeyPaths().read_paths(key) == (plain_path(key), encoded_path(key))
    assert path_to_key(plain_path(key)) == key == path_to_key(encoded_path(key))


@pytest.mark.parametrize(
    "path",
    [
        ENCODED_DIR + "zz", ENCODED_DIR + "616", ENCODED_DIR + "6162",  # junk, odd length, a plain key
        ENCODED_DIR + "ff", ENCODED_DIR, "/a/.s3folder/b", "/.s3folder", "/.pachs3gw-keys",
        "/.pachs3gw-end-of-stream", ENCODED_DIR + "61" * 1025,
    ],
)
def test_paths_the_mapping_never_makes_are_no_key(path: str) -> None:
    assert path_to_key(path) is None


def test_empty_and_too_long_keys_are_refused_as_s3_does() -> None:
    with pytest.raises(errors.InvalidArgument):
        placement("")
    with pytest.raises(errors.KeyTooLongError):
        KeyPaths().read_paths("é" * 513)
    assert placement("é" * 512) is Placement.PLAIN_IF_ALLOWED  # 1024 bytes: allowed


_KEY_CHARS = st.sampled_from(list("ab/.-_ ~é(\x01\x00") + ["\U0010ffff", "s3folder", ".s3folder", "日"])
KEYS = st.lists(_KEY_CHARS, min_size=1, max_size=12).map("".join)


@settings(max_examples=500, deadline=None)
@given(key=KEYS | st.text(min_size=1, max_size=40))
def test_every_key_round_trips_through_a_path_each_server_keeps(key: str) -> None:
    for allows in (True, False):
        path = stored_path(key, allows)
        assert path_to_key(path) == key
        assert embedded_accepts_unchanged(path)
        if not allows:
            assert pachd_accepts_unchanged(path)


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(KEYS | st.text(min_size=1, max_size=20), min_size=2, max_size=20, unique=True))
def test_distinct_keys_never_share_a_path(keys: list[str]) -> None:
    for allows in (True, False):
        paths = [stored_path(k, allows) for k in keys]
        assert len(set(paths)) == len(keys)


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(st.text(min_size=1, max_size=20), min_size=2, max_size=20, unique=True),
       prefix=st.text(max_size=4))
def test_encoded_names_sort_as_the_keys_bytes_and_keep_prefixes(keys: list[str], prefix: str) -> None:
    by_bytes = sorted(keys, key=lambda k: k.encode("utf-8"))
    assert sorted(keys) == by_bytes  # str order is UTF-8 byte order
    assert sorted(keys, key=encoded_path) == by_bytes
    for k in keys:
        assert k.startswith(prefix) == encoded_path(k)[len(ENCODED_DIR):].startswith(hex_prefix(prefix))


@settings(max_examples=300, deadline=None)
@given(key=KEYS | st.text(min_size=1, max_size=30), cut=st.integers(min_value=0, max_value=30))
def test_a_prefix_of_a_plain_key_is_never_ruled_out(key: str, cut: int) -> None:
    if placement(key) is not Placement.ENCODED:
        assert could_be_plain_prefix(key[:cut])


def test_prefixes_no_plain_key_can_have_skip_the_plain_listing() -> None:
    for prefix in ("a//", "/x", "../", "./", ".pachs3gw-keys/", "a/.s3folder/", "\x00"):
        assert not could_be_plain_prefix(prefix)
    for prefix in ("", "a", "a/", "..", ".", "a/.", ".pachs3gw-keys", "café/"):
        assert could_be_plain_prefix(prefix)


# Learning the server's rules ---------------------------------------------------


class _ProbeClient:
    """Answers the probe ModifyFile as a server would."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.requests: list[Any] = []

    def modify_file(self, requests: Any) -> defer.Deferred[None]:
        self.requests = list(requests)
        return defer.fail(self.error)


HEAD = refs.branch_head("repo", "master")


def _run(coro: Any) -> Any:
    d = defer.ensureDeferred(coro)
    results: list[Any] = []
    d.addBoth(results.append)
    result = results[0]
    if hasattr(result, "raiseException"):
        result.raiseException()
    return result


def test_pachd_refusing_the_probe_path_sends_those_keys_to_the_encoded_directory() -> None:
    keys = KeyPaths()
    refusal = pfs_errors.InvalidName("path (/x) invalid: only printable ASCII characters allowed")
    client: Any = _ProbeClient(refusal)
    head = HEAD
    assert _run(keys.write_path(client, head, "café")) == encoded_path("café")
    assert keys.allows_any_characters is False and keys.probes == 1
    # The probe ends with a request no server accepts: it can never commit.
    assert client.requests[-1].copy_file.src.commit.repo.name == "_s3gateway_poison_"
    assert _run(keys.write_path(client, head, "photo (1).jpg")) == encoded_path("photo (1).jpg")
    assert keys.probes == 1
    assert _run(keys.write_path(client, head, "plain")) == "/plain"


def test_a_server_failing_only_at_the_poison_keeps_those_keys_plain() -> None:
    keys = KeyPaths()
    client: Any = _ProbeClient(pfs_errors.RepoNotFound("repo default/_s3gateway_poison_ not found"))
    assert _run(keys.write_path(client, HEAD, "café")) == "/café"
    assert keys.allows_any_characters is True
    assert keys.read_paths("café") == ("/café",)


def test_any_other_probe_failure_is_the_writes_failure_and_teaches_nothing() -> None:
    keys = KeyPaths()
    client: Any = _ProbeClient(pfs_errors.PermissionDenied("not authorized"))
    with pytest.raises(pfs_errors.PermissionDenied):
        _run(keys.write_path(client, HEAD, "café"))
    assert keys.allows_any_characters is None


def test_keys_every_server_keeps_need_no_probe() -> None:
    keys = KeyPaths()
    client: Any = _ProbeClient(AssertionError("no probe expected"))
    assert _run(keys.write_path(client, HEAD, "../x")) == encoded_path("../x")
    assert _run(keys.write_path(client, HEAD, "a/b")) == "/a/b"
    assert keys.probes == 0
