"""Fixtures for ``kubectl bandwidth`` on the real control plane.

The scheduler's fixtures (``kube``, ``ledgers``, ``run_scheduler``, ``scheduler_name``) are
reused as they are; ``kubectl`` runs the plugin's ``main`` in-process against the session
control plane's admin kubeconfig and returns its exit code, stdout and stderr.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from kubectl_bandwidth.cli import main
from localcluster import ControlPlane
from tests.integration.scheduler import conftest as scheduler_fixtures

kube = scheduler_fixtures.kube
ledgers = scheduler_fixtures.ledgers
run_scheduler = scheduler_fixtures.run_scheduler
scheduler_name = scheduler_fixtures.scheduler_name


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


Kubectl = Callable[..., Run]


@pytest.fixture
def scheduler_logs() -> Iterator[io.StringIO]:
    """Logs of schedulers running in this process go to a buffer, so stdout holds only what
    the plugin prints; the buffer is written to stderr at teardown (shown when a test fails)."""
    saved = structlog.get_config()
    buffer = io.StringIO()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(buffer))
    yield buffer
    structlog.configure(**saved)
    sys.stderr.write(buffer.getvalue())


@pytest.fixture
def kubectl(
    controlplane: ControlPlane,
    scheduler_name: str,
    capsys: pytest.CaptureFixture[str],
    scheduler_logs: io.StringIO,
) -> Kubectl:
    """``kubectl("status", "-o", "json")``: the plugin against the session control plane,
    configured with this test's scheduler name (pass ``kubeconfig=`` for other credentials)."""

    def run(*argv: str, kubeconfig: Path | None = None) -> Run:
        capsys.readouterr()
        code = main(
            [
                *argv,
                "--kubeconfig",
                str(kubeconfig or controlplane.kubeconfig_path),
                "--scheduler-name",
                scheduler_name,
            ]
        )
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def token_kubeconfig(path: Path, controlplane: ControlPlane, token: str) -> Path:
    """A kubeconfig that authenticates to the control plane with a bearer token."""
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": controlplane.server,
                    "certificate-authority": str(controlplane.credentials.ca_cert),
                },
            }
        ],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": "sa"}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    return path
