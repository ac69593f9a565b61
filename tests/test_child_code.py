"""The pfsd child runs the parent's own code, whatever directory the gateway started in."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pachs3gw
from pachs3gw.service import GatewayConfig, _child_env, embedded_server_args


def test_the_child_imports_the_parents_package_not_one_in_the_working_directory(tmp_path: Path):
    # A clone (or any directory) holding another pachs3gw package.
    impostor = tmp_path / "pachs3gw" / "pfsd"
    impostor.mkdir(parents=True)
    (tmp_path / "pachs3gw" / "__init__.py").write_text("")
    (impostor / "__init__.py").write_text("")
    (impostor / "__main__.py").write_text("print('IMPOSTOR'); raise SystemExit(3)\n")
    config = GatewayConfig(data_dir=str(tmp_path / "data"))
    process = subprocess.Popen(
        embedded_server_args(config, "127.0.0.1:0"),
        cwd=tmp_path, env=_child_env(), stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("LISTENING "), line
    finally:
        process.terminate()
        process.wait(10)
    assert Path(pachs3gw.__file__).parent != tmp_path / "pachs3gw"
