"""Conventions on top of the pfs_v2 wire protocol that both ends of ours share.

They stay within the protocol: a real pachd sees ordinary requests. Our
client applies both to every ModifyFile stream (``PfsClient.modify_file``):
a stream ends with :data:`END_OF_STREAM_PATH` when its requests ran out, or
with :func:`abort_request` when producing them failed.
"""

from pachs3gw.proto import pfs_v2_pb2 as pfs

#: The last request of every ModifyFile stream our client sends: a DeleteFile
#: of this path, a no-op for any PFS server (nothing is ever written there;
#: the gateway refuses it as a key). It tells the embedded server that the
#: client finished the stream on purpose, so it can commit at once instead of
#: waiting to see whether an apparent end of stream was really grpcio
#: reporting a cancellation late.
END_OF_STREAM_PATH = "/.pachs3gw-end-of-stream"

#: gRPC metadata key of a ModifyFile whose commit need not be synced on its
#: own: the client will finish a later commit on the same server, whose sync
#: (the WAL is written in order) makes this one durable too. The gateway sets
#: it on its metadata records, written just before the data commit they
#: describe is finished. The embedded server honours it; pachd ignores
#: unknown metadata.
DEFER_SYNC_METADATA = ("x-pachs3gw-defer-sync", "1")

#: A repo that is never created (the gateway reserves repo names starting
#: with '_'): a CopyFile from it fails on pachd and on the embedded server alike.
ABORT_REPO = "_s3gateway_poison_"


def abort_request() -> pfs.ModifyFileRequest:
    """The last request of a ModifyFile stream whose sender failed (bad digest, client gone).

    Raising from the request iterator makes grpc cancel the call, but a
    Python grpc server can see that cancellation as a normal end of stream
    (its request iterator stops before the cancellation is processed) and
    would then commit a partial write. A CopyFile from :data:`ABORT_REPO` is
    refused by every PFS server, which fails the whole stream: nothing of it
    is committed.
    """
    repo = pfs.Repo(name=ABORT_REPO, type="user", project=pfs.Project(name="default"))
    src = pfs.File(commit=pfs.Commit(repo=repo, id="0" * 32), path="/aborted")
    return pfs.ModifyFileRequest(copy_file=pfs.CopyFile(dst="/.s3gateway-aborted", src=src))
