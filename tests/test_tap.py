"""twistd options: command line > tap.conf > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.python import usage

from pachs3gw.tap import Options, default_data_dir


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_defaults():
    options = parse()
    assert options["port"] == "tcp:30600"
    assert options["data-dir"] == default_data_dir()
    assert options["pachd"] is None
    assert options["threads"] == 16
    assert options["embedded"] == "inprocess"


def test_a_bare_port_number_becomes_a_tcp_endpoint():
    assert parse("--port", "8080")["port"] == "tcp:8080"
    assert parse("--port", "ssl:443:privateKey=k.pem")["port"] == "ssl:443:privateKey=k.pem"


def test_config_file_fills_what_the_command_line_does_not_set(tmp_path: Path):
    conf = tmp_path / "tap.conf"
    conf.write_text("[pachs3gw]\nport = tcp:9000\npachd = pachd:30650\nthreads = 4\n")
    options = parse("--config", str(conf), "--threads", "8")
    assert options["port"] == "tcp:9000"
    assert options["pachd"] == "pachd:30650"
    assert options["threads"] == 8


def test_shipped_tap_conf_parses():
    options = parse("--config", str(Path(__file__).parent.parent / "tap.conf"))
    assert options["port"] == "tcp:30600"
    assert options["data-dir"] == "/var/lib/pachs3gw"


@pytest.mark.parametrize(
    "argv",
    [
        ("--threads", "many"),
        ("--embedded", "sideways"),
        ("--config", "/nonexistent/tap.conf"),
    ],
)
def test_bad_options_are_usage_errors(argv):
    with pytest.raises(usage.UsageError):
        parse(*argv)


def test_unknown_setting_in_config_is_a_usage_error(tmp_path: Path):
    conf = tmp_path / "tap.conf"
    conf.write_text("[pachs3gw]\nprot = 1\n")
    with pytest.raises(usage.UsageError):
        parse("--config", str(conf))


def test_plugin_is_discoverable_by_twistd():
    from twisted.plugin import getPlugins
    from twisted.application.service import IServiceMaker
    import twisted.plugins

    names = [p.tapname for p in getPlugins(IServiceMaker, twisted.plugins)]
    assert "pachs3gw" in names


def test_request_limits_reach_the_gateway_config():
    config = parse("--header-timeout", "5", "--body-timeout", "7.5", "--body-min-bytes", "10").to_config()
    assert (config.header_timeout, config.body_timeout, config.body_min_bytes) == (5.0, 7.5, 10)
    defaults = parse().to_config()
    assert (defaults.header_timeout, defaults.body_timeout, defaults.body_min_bytes) == (60.0, 60.0, 1024)


def test_abandon_after_reaches_the_gateway_config_and_must_be_a_number():
    assert parse("--abandon-after", "0").to_config().abandon_after == 0.0
    assert parse().to_config().abandon_after == 120.0
    with pytest.raises(usage.UsageError, match="--abandon-after"):
        parse("--abandon-after", "soon")
