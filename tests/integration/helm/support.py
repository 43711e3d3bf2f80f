"""Helpers for the chart's tests on the real control plane.

- :class:`Release`: one installed release, its rendered objects and the paths to read them;
- :func:`service_account_token` and :func:`write_token_kubeconfig`: a ServiceAccount's
  credentials (TokenRequest API), as the daemons would have them in a pod;
- :class:`DaemonProcess`: ``python -m scheduler`` or ``python -m accounting`` as a child
  process with the args the chart renders, its JSON log and its metrics;
- :func:`allowed`: a SubjectAccessReview, asked as admin, for a ServiceAccount.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kubeio.config import load_client_configuration
from kubeio.resources import Resource
from kubeio.rest import KubeApi
from localcluster.helm import Helm, SetValue

JSON = dict[str, Any]
T = TypeVar("T")

CHART_NAME = "vaclab-bandwidth"

PLURALS = {
    "ServiceAccount": "serviceaccounts",
    "Service": "services",
    "Deployment": "deployments",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ServiceMonitor": "servicemonitors",
    "PodDisruptionBudget": "poddisruptionbudgets",
}


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def object_path(obj: Mapping[str, Any]) -> str:
    """The API path of a rendered object (kinds of this chart only)."""
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    metadata = obj["metadata"]
    namespace = metadata.get("namespace")
    resource = Resource(group, version, PLURALS[obj["kind"]], namespaced=namespace is not None)
    return resource.path(namespace=namespace, name=metadata["name"])


def by_kind(objects: Sequence[JSON], kind: str) -> dict[str, JSON]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def container_args(deployment: Mapping[str, Any]) -> list[str]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return [str(arg) for arg in container["args"]]


@dataclass
class Release:
    helm: Helm
    kube: KubeApi
    name: str
    namespace: str
    values: Mapping[str, SetValue] | None = None

    @property
    def fullname(self) -> str:
        return f"{self.name}-{CHART_NAME}"

    def service_account(self, component: str) -> str:
        return f"{self.fullname}-{component}"

    def install(self, values: Mapping[str, SetValue] | None = None) -> None:
        self.values = dict(values or {})
        self.helm.install(self.name, self.namespace, self.values)

    def manifest(self) -> list[JSON]:
        """The objects helm recorded for the release (CRDs are not part of it)."""
        text = self.helm.run("get", "manifest", self.name, "--namespace", self.namespace)
        return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]

    def deployment(self, component: str) -> JSON:
        return by_kind(self.manifest(), "Deployment")[f"{self.fullname}-{component}"]


def service_account_token(kube: KubeApi, namespace: str, name: str) -> str:
    """A bound token for the ServiceAccount, from the TokenRequest API (as a pod gets one)."""
    reply = kube.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    return str(reply["status"]["token"])


def write_token_kubeconfig(path: Path, server: str, ca_cert: Path, token: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority": str(ca_cert)}}
        ],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": "sa"}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def api_for(kubeconfig: Path) -> KubeApi:
    """A ``KubeApi`` with the credentials of a kubeconfig file (a token or a certificate)."""
    return KubeApi(load_client_configuration(str(kubeconfig)))


def local_args(chart_args: Sequence[str], kubeconfig: Path) -> list[str]:
    """The chart's args for a process on this machine: loopback ports picked by the kernel."""
    moved = ("--metrics-bind-address=", "--health-probe-bind-address=")
    kept = [arg for arg in chart_args if not arg.startswith(moved)]
    return [
        *kept,
        f"--kubeconfig={kubeconfig}",
        "--metrics-bind-address=127.0.0.1:0",
        "--health-probe-bind-address=127.0.0.1:0",
    ]


class DaemonProcess:
    """``python -m <module> ARGS``, its JSON log lines written to ``log``."""

    def __init__(self, module: str, args: Sequence[str], log: Path) -> None:
        self.module = module
        self.log = log
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=sink,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )

    def events(self) -> list[JSON]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "unparsed", "line": line}
            if isinstance(event, dict):
                found.append(event)
        return found

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def metrics_port(self) -> int | None:
        for event in self.events():
            if event.get("event") == "started" and event.get("metrics_port"):
                return int(event["metrics_port"])
        return None

    def metrics(self) -> str:
        port = wait_for(f"{self.module} to log its metrics port", self.metrics_port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            return str(reply.read().decode())

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode


def allowed(
    kube: KubeApi,
    service_account: tuple[str, str],
    verb: str,
    resource: str,
    *,
    group: str = "",
    subresource: str = "",
    namespace: str = "",
    name: str = "",
) -> bool:
    """Whether RBAC lets ``(namespace, name)`` ServiceAccount do ``verb`` on the resource."""
    sa_namespace, sa_name = service_account
    attributes = {
        "verb": verb,
        "group": group,
        "resource": resource,
        "subresource": subresource,
        "namespace": namespace,
        "name": name,
    }
    review = kube.create(
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": f"system:serviceaccount:{sa_namespace}:{sa_name}",
                "groups": [
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{sa_namespace}",
                    "system:authenticated",
                ],
                "resourceAttributes": {k: v for k, v in attributes.items() if v},
            },
        },
    )
    return bool(review["status"].get("allowed"))
