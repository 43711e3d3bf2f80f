"""The README's sandbox works as written: ``python -m localcluster up`` prints the
``export KUBECONFIG=`` line, the two daemon commands run side by side (the ports they name
are kept apart exactly as the README keeps them), ``kubectl-bandwidth status`` answers without
kubectl, the Python one-liner applies a manifest, and a StatefulSet behaves on simulated nodes
as the README says (``OrderedReady`` stops at ordinal 0, ``Parallel`` creates every pod).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from localcluster.process import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def sandbox_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### A sandbox to try things", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def commands(block: str) -> list[list[str]]:
    """Each command line of a shell block, without its comment and trailing ``&``."""
    found = []
    for line in block.splitlines():
        words = [w for w in shlex.split(line.split("#", 1)[0]) if w != "&"]
        if words:
            found.append(words)
    return found


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def wait(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def line_with(stream: IO[str], prefix: str, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if line.startswith(prefix):
            return line.strip()
        if not line:
            time.sleep(0.1)
    raise AssertionError(f"no line starting with {prefix!r}")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in reversed(started):  # the daemons, then the cluster
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(30)
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_the_readme_sandbox_runs_as_written(
    processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    up_block, daemons_block = sandbox_blocks()
    [up] = commands(up_block)
    assert up[:4] == [".venv/bin/python", "-m", "localcluster", "up"]
    cluster = subprocess.Popen(
        [sys.executable, *up[1:]], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    processes.append(cluster)
    assert cluster.stdout is not None
    export = line_with(cluster.stdout, "export KUBECONFIG=")
    kubeconfig = export.removeprefix("export KUBECONFIG=")
    env = dict(os.environ, KUBECONFIG=kubeconfig, PATH=f"{BIN}:{os.environ['PATH']}")

    *daemons, status = commands(daemons_block)
    ports = {}  # each port the README names gets its own free port: shared ones stay shared
    health = []
    for argv in daemons:
        assert argv[0] in ("vaclab-accounting", "vaclab-scheduler")
        for index, word in enumerate(argv):
            if word.startswith(":"):
                ports.setdefault(word, free_port())
                argv[index] = f"127.0.0.1:{ports[word]}"
        health.append(int(argv[argv.index("--health-probe-bind-address") + 1].rpartition(":")[2]))
        log = (tmp_path / f"{argv[0]}.log").open("w")
        processes.append(subprocess.Popen(argv, env=env, stdout=log, stderr=log, text=True))
    assert len(set(ports)) == 4, ports
    for port in health:
        wait(f"the daemon with health port {port} to be ready", lambda port=port: ready(port))
    assert all(p.poll() is None for p in processes), [
        (tmp_path / f"{d[0]}.log").read_text() for d in daemons
    ]

    def status_rows() -> list[str] | None:
        done = subprocess.run(status, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        rows = [line for line in done.stdout.splitlines()[1:] if line.startswith("sim-")]
        return rows if rows and "no Bandwidth object" not in done.stdout else None

    nodes = int(up[up.index("--nodes") + 1])
    assert len(wait("a Bandwidth object per simulated node", status_rows)) == nodes

    one_liner = re.search(r'`(python -c "from kubernetes .*?")`', (ROOT / "README.md").read_text())
    assert one_liner is not None
    for policy in ("OrderedReady", "Parallel"):
        manifest = tmp_path / "peers.yaml"
        manifest.write_text(yaml.safe_dump(statefulset(policy.lower(), policy)))
        subprocess.run(
            shlex.split(one_liner.group(1).replace("python", sys.executable, 1)),
            env=env,
            cwd=tmp_path,
            check=True,
            timeout=60,
        )
    bound = wait("3 Parallel pods bound", lambda: bound_pods(env, "parallel") == 3)
    assert bound
    time.sleep(3)  # the OrderedReady set had as long: it waits for a Ready that never comes
    assert bound_pods(env, "orderedready") == 1


def statefulset(name: str, policy: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": 3,
            "podManagementPolicy": policy,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {
                    "labels": {"app": name},
                    "annotations": {"kubernetes.io/egress-bandwidth": "100M"},
                },
                "spec": {
                    "schedulerName": "vaclab-scheduler",
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                },
            },
        },
    }


def bound_pods(env: dict[str, str], app: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", LIST_PODS, app], env=env, capture_output=True, text=True, check=True
    )
    return int(done.stdout)


LIST_PODS = """
import sys
from kubernetes import client, config
config.load_kube_config()
pods = client.CoreV1Api().list_namespaced_pod("default", label_selector=f"app={sys.argv[1]}")
print(sum(1 for pod in pods.items if pod.spec.node_name))
"""
