"""twistd options and ``makeService``: command line > tap.conf > defaults.

This is the one module that touches the global reactor.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from twisted.application.service import IService
from twisted.python import usage


if TYPE_CHECKING:
    from pachs3gw.service import GatewayConfig

CONFIG_SECTION = "pachs3gw"


def default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "pachs3gw")


#: Option name → the :class:`~pachs3gw.service.GatewayConfig` field it sets
#: (the rest: dashes for underscores).
_FIELD_OF_OPTION = {"port": "endpoint"}


def option_defaults() -> dict[str, Any]:
    """Each setting's default, read off :class:`~pachs3gw.service.GatewayConfig`
    (its one home); ``data-dir`` is None here and computed by :func:`default_data_dir`.
    """
    import attrs

    from pachs3gw.service import GatewayConfig

    fields = attrs.fields_dict(GatewayConfig)
    defaults: dict[str, Any] = {}
    for option in _OPTIONS:
        field = fields[_FIELD_OF_OPTION.get(option, option.replace("-", "_"))]
        defaults[option] = None if option == "data-dir" else field.default
    return defaults


#: The settings, on the command line and in tap.conf.
_OPTIONS = (
    "port", "data-dir", "pachd", "threads", "embedded", "pfs-listen", "auth-tokens",
    "pfs-timeout", "header-timeout", "body-timeout", "body-min-bytes", "abandon-after",
)


class Options(usage.Options):
    """``twistd pachs3gw`` options; every one may also be set in tap.conf."""

    optParameters = [
        ["port", "p", None, "Port number or Twisted endpoint string (default tcp:30600)."],
        ["data-dir", "d", None, "Embedded PFS data directory (default ~/.local/share/pachs3gw)."],
        ["pachd", None, None, "HOST:PORT of a Pachyderm cluster; no embedded server then."],
        ["config", "c", None, "INI file with a [pachs3gw] section (tap.conf)."],
        ["threads", "t", None, "Worker threads for streaming bodies (default 16)."],
        ["embedded", None, None,
         "How to run the embedded server: inprocess (default: in this process, no gRPC hop) "
         "or child (a supervised process, called over gRPC)."],
        ["pfs-listen", None, None,
         "In-process store: where it also serves PFS gRPC for Pachyderm's tools "
         "(unix:PATH or HOST:PORT; default unix:DATA_DIR/pfsd.sock)."],
        ["auth-tokens", None, None, "Embedded server: file of 'token username' lines; turns auth on."],
        ["pfs-timeout", None, None, "Seconds to wait for a PFS metadata call before 503 (default 30)."],
        ["header-timeout", None, None, "Seconds a client has to send a request's headers (default 60)."],
        ["body-timeout", None, None, "A body stalls if under --body-min-bytes arrive in this many seconds (default 60)."],
        ["body-min-bytes", None, None, "Bytes a body must bring every --body-timeout seconds (default 1024)."],
        ["abandon-after", None, None,
         "Seconds before another gateway's open write commit is discarded as abandoned "
         "(default 120; this gateway's own and those of dead gateways of this host go at once)."],
    ]

    #: Set when parsing failed: twistd then prints our usage before the
    #: error, and a one-line pointer reads better than the whole help.
    _failed = False

    def parseOptions(self, options: Any = None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError:
            self._failed = True
            raise

    def getUsage(self, width: int | None = None) -> str:
        if self._failed:
            return "(twistd pachs3gw --help lists the options)"
        return super().getUsage(width)

    def postOptions(self) -> None:
        from_file: dict[str, str] = {}
        if self["config"]:
            path = Path(self["config"])
            if not path.is_file():
                raise usage.UsageError(f"config file {path} not found")
            parser = configparser.ConfigParser()
            parser.read(path)
            if parser.has_section(CONFIG_SECTION):
                from_file = dict(parser.items(CONFIG_SECTION))
            unknown = set(from_file) - set(_OPTIONS)
            if unknown:
                raise usage.UsageError(f"unknown settings in {path}: {', '.join(sorted(unknown))}")
        for name, default in option_defaults().items():
            if self[name] is None:
                self[name] = from_file.get(name, default)
        if self["data-dir"] is None:
            self["data-dir"] = default_data_dir()
        try:
            self["threads"] = int(self["threads"])
            self["pfs-timeout"] = float(self["pfs-timeout"])
            self["header-timeout"] = float(self["header-timeout"])
            self["body-timeout"] = float(self["body-timeout"])
            self["body-min-bytes"] = int(self["body-min-bytes"])
            self["abandon-after"] = float(self["abandon-after"])
        except ValueError:
            raise usage.UsageError(
                "--threads, --pfs-timeout, --header-timeout, --body-timeout, --body-min-bytes "
                "and --abandon-after must be numbers"
            ) from None
        if self["embedded"] not in ("child", "inprocess"):
            raise usage.UsageError("--embedded must be 'child' or 'inprocess'")
        port = str(self["port"])
        self["port"] = f"tcp:{port}" if port.isdigit() else port

    def to_config(self) -> GatewayConfig:
        from pachs3gw.service import GatewayConfig

        return GatewayConfig(
            endpoint=self["port"],
            data_dir=self["data-dir"],
            pachd=self["pachd"],
            threads=self["threads"],
            embedded=self["embedded"],
            pfs_listen=self["pfs-listen"],
            auth_tokens=self["auth-tokens"],
            pfs_timeout=self["pfs-timeout"],
            header_timeout=self["header-timeout"],
            body_timeout=self["body-timeout"],
            body_min_bytes=self["body-min-bytes"],
            abandon_after=self["abandon-after"],
        )


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    from pachs3gw.malloc import tune_malloc

    tune_malloc()

    from pachs3gw.service import GatewayService, IGatewayReactor
    from pachs3gw.startup import ExitOnStartFailure, StartupError, check_config

    # Twisted types the global reactor by what every reactor has; the ones
    # twistd installs here (epoll, poll, select) also take calls from threads
    # and listen on SSL and UNIX sockets.
    gateway_reactor = cast(IGatewayReactor, reactor)
    config = options.to_config()
    try:
        check_config(config, gateway_reactor)
    except StartupError as e:
        # Before daemonising: the one line goes to the terminal, exit 1.
        raise SystemExit(f"pachs3gw: {e}") from None
    return ExitOnStartFailure(gateway_reactor, GatewayService(gateway_reactor, config))
