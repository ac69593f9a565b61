"""Conventions on top of the pfs_v2 wire protocol that both ends of ours share.

They stay within the protocol: a real pachd sees ordinary requests.
"""

#: The last request of every ModifyFile stream our client sends: a DeleteFile
#: of this path, a no-op for any PFS server (nothing is ever written there;
#: the gateway refuses it as a key). It tells the embedded server that the
#: client finished the stream on purpose, so it can commit at once instead of
#: waiting to see whether an apparent end of stream was really grpcio
#: reporting a cancellation late.
END_OF_STREAM_PATH = "/.pachs3gw-end-of-stream"
