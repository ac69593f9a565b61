"""Drives one of Pachyderm's own Python clients on behalf of a test.

Runs inside that client's own virtualenv (its protobuf/grpc pins clash with
ours), so it imports nothing from this project: only the standard library
and the client. Usage::

    python driver.py python-pachyderm|pachyderm-sdk HOST:PORT

It reads one JSON request per line on stdin, ``{"exec": CODE}`` (statements)
or ``{"eval": CODE}`` (an expression), runs it with ``client`` and the
client's modules in scope, and answers one JSON line: ``{"value": ...}``
(iterators drained, protobuf messages as dicts with proto field names,
bytes as ``{"bytes": base64}``), ``{"rpc_error": {"code", "details"}}`` for
a gRPC error, or ``{"exception": {"type", "message"}}`` for anything else.
"""

from __future__ import annotations

import base64
import json
import sys
import traceback
from typing import Any


def setup(flavor: str, address: str) -> dict[str, Any]:
    host, _, port = address.rpartition(":")
    if flavor == "python-pachyderm":
        import python_pachyderm
        from google.protobuf import json_format
        from python_pachyderm.pfs import Commit
        from python_pachyderm.proto.v2.pfs import pfs_pb2

        def to_plain(message: Any) -> Any:
            return json_format.MessageToDict(
                message, preserving_proto_field_name=True, including_default_value_fields=False
            )

        return {
            "client": python_pachyderm.Client(host, int(port), use_default_host=False),
            "python_pachyderm": python_pachyderm,
            "pfs_pb2": pfs_pb2,
            "Commit": Commit,
            "_is_message": lambda v: hasattr(v, "DESCRIPTOR") and hasattr(v, "ListFields"),
            "_to_plain": to_plain,
        }
    if flavor == "pachyderm-sdk":
        import betterproto
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs

        def to_plain(message: Any) -> Any:
            return message.to_dict(casing=betterproto.Casing.SNAKE, include_default_values=False)

        return {
            "client": Client(host=host, port=int(port)),
            "pfs": pfs,
            "_is_message": lambda v: isinstance(v, betterproto.Message),
            "_to_plain": to_plain,
        }
    raise SystemExit(f"unknown client {flavor!r}")


def plain(value: Any, scope: dict[str, Any]) -> Any:
    """A JSON-able form of a client's return value."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": base64.b64encode(bytes(value)).decode()}
    if scope["_is_message"](value):
        return scope["_to_plain"](value)
    if isinstance(value, dict):
        return {str(k): plain(v, scope) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "__next__"):
        return [plain(v, scope) for v in value]
    return repr(value)


def answer(request: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    import grpc

    try:
        if "exec" in request:
            exec(request["exec"], scope)
            return {"value": None}
        return {"value": plain(eval(request["eval"], scope), scope)}
    except grpc.RpcError as e:
        return {"rpc_error": {"code": e.code().name, "details": e.details()}}
    except Exception as e:  # reported to the test, which decides
        if isinstance(e.__cause__, grpc.RpcError):
            # e.g. python-pachyderm's get_file: ConnectionError from the RpcError.
            cause = e.__cause__
            return {"rpc_error": {"code": cause.code().name, "details": cause.details(),
                                  "wrapped_in": type(e).__name__}}
        return {"exception": {"type": type(e).__name__, "message": str(e),
                              "traceback": traceback.format_exc()}}


def main() -> None:
    flavor, address = sys.argv[1], sys.argv[2]
    scope = setup(flavor, address)
    print(json.dumps({"ready": flavor}), flush=True)
    for line in sys.stdin:
        print(json.dumps(answer(json.loads(line), scope)), flush=True)


if __name__ == "__main__":
    main()
