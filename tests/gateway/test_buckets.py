"""Bucket names: ``[commit.]branch.repo[.project]`` (pure, no server)."""

from __future__ import annotations

import pytest

from pachs3gw.gateway.buckets import BucketRef, bucket_name, parse_bucket
from pachs3gw.s3 import errors

COMMIT = "0123456789abcdef0123456789abcdef"


def test_two_parts_are_branch_and_repo_in_the_default_project() -> None:
    assert parse_bucket("master.images") == BucketRef(
        name="master.images", repo="images", branch="master", project="default"
    )


def test_three_parts_are_branch_repo_project() -> None:
    ref = parse_bucket("dev.images.vision")
    assert (ref.branch, ref.repo, ref.project, ref.commit_id) == ("dev", "images", "vision", None)
    assert not ref.read_only


def test_three_parts_starting_with_a_commit_id_are_a_commit_view() -> None:
    ref = parse_bucket(f"{COMMIT}.master.images")
    assert (ref.commit_id, ref.branch, ref.repo, ref.project) == (
        COMMIT,
        "master",
        "images",
        "default",
    )
    assert ref.read_only


def test_four_parts_are_commit_branch_repo_project() -> None:
    ref = parse_bucket(f"{COMMIT}.master.images.vision")
    assert (ref.commit_id, ref.branch, ref.repo, ref.project) == (
        COMMIT,
        "master",
        "images",
        "vision",
    )


def test_four_parts_need_a_commit_id_first() -> None:
    with pytest.raises(errors.InvalidBucketName):
        parse_bucket("notacommit.master.images.vision")


def test_uppercase_commit_ids_are_not_commit_ids() -> None:
    # Pachyderm commit IDs are lower-case hex; upper-case makes it a branch name.
    ref = parse_bucket(f"{COMMIT.upper()}.images.vision")
    assert ref.commit_id is None and ref.branch == COMMIT.upper()


@pytest.mark.parametrize(
    "name",
    [
        "images",
        "",
        ".images",
        "master.",
        "a.b.c.d.e",
        "mas ter.images",
        "master.ima/ges",
        "master.imäges",
        "master.images.pro@ject",
        "master." + "r" * 64,
        "master._s3gateway_meta_",
    ],
)
def test_malformed_names_are_invalid_bucket_name(name: str) -> None:
    with pytest.raises(errors.InvalidBucketName) as caught:
        parse_bucket(name)
    assert caught.value.status == 400


def test_underscores_and_dashes_are_allowed() -> None:
    ref = parse_bucket("my_branch-1.my-repo_2")
    assert (ref.branch, ref.repo) == ("my_branch-1", "my-repo_2")


def test_commit_view_refuses_writes_with_access_denied_naming_the_commit() -> None:
    ref = parse_bucket(f"{COMMIT}.master.images")
    with pytest.raises(errors.AccessDenied) as caught:
        ref.check_writable()
    assert COMMIT in caught.value.message and "read-only" in caught.value.message
    parse_bucket("master.images").check_writable()


def test_head_addresses_branch_or_commit_with_repo_set() -> None:
    head = parse_bucket("master.images").head()
    assert head.repo.name == "images" and head.branch.name == "master" and head.id == ""
    fixed = parse_bucket(f"{COMMIT}.master.images.p").head()
    assert fixed.repo.name == "images" and fixed.repo.project.name == "p" and fixed.id == COMMIT


def test_bucket_name_round_trips() -> None:
    for name in ("master.images", "dev.images.vision"):
        ref = parse_bucket(name)
        assert bucket_name(ref.repo, ref.branch, ref.project) == name
    assert bucket_name("images", "master", "default") == "master.images"
    assert parse_bucket("master.images").label == "default/images@master"


def test_the_end_of_stream_path_is_never_a_key_path() -> None:
    """The client deletes END_OF_STREAM_PATH at the end of every stream: no key may live there."""
    from pachs3gw.gateway.keys import KeyPaths, Placement, placement
    from pachs3gw.proto.conventions import END_OF_STREAM_PATH

    name = END_OF_STREAM_PATH.lstrip("/")
    for key in (name, name + "/x", name + "/"):
        assert placement(key) is Placement.ENCODED
        for path in KeyPaths().read_paths(key):
            assert path != END_OF_STREAM_PATH and not path.startswith(END_OF_STREAM_PATH + "/")
