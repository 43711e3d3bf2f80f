"""A daemon that cannot start says why in one log line and exits 1: a busy or malformed
metrics/health address names its flag, a missing cluster says how to point at one. The
daemons run as processes (no server needed: they stop before the first request)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

KUBECONFIG = """\
clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def start(module: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("module", ["scheduler", "accounting"])
@pytest.mark.parametrize("flag", ["--metrics-bind-address", "--health-probe-bind-address"])
def test_a_busy_port_is_one_line_naming_the_flag(
    module: str, flag: str, busy_port: int, tmp_path: Path
) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    free = {"--metrics-bind-address": "127.0.0.1:0", "--health-probe-bind-address": "127.0.0.1:0"}
    free[flag] = f"127.0.0.1:{busy_port}"
    others = [f"{name}={address}" for name, address in free.items()]
    code, out, err = start(module, f"--kubeconfig={config}", "--log-format=json", *others)
    assert (code, out) == (1, "")
    (line,) = err.splitlines()
    event = json.loads(line)
    assert (event["event"], event["level"]) == ("cannot_start", "error")
    assert event["error"] == f"{flag}=127.0.0.1:{busy_port}: Address already in use"


def test_a_malformed_address_and_a_missing_cluster_are_one_line_each(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    code, _, err = start(
        "accounting", f"--kubeconfig={config}", "--log-format=console", "--metrics-bind-address=x"
    )
    assert code == 1
    (line,) = err.splitlines()
    assert "cannot_start" in line and "--metrics-bind-address=x: not HOST:PORT" in line
    bare = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    code, _, err = start("scheduler", "--log-format=json", env=bare)
    assert code == 1
    (line,) = err.splitlines()
    assert json.loads(line)["error"].startswith("no kubeconfig found (--kubeconfig or KUBECONFIG)")
