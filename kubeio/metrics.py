"""The Prometheus series every daemon serves besides its own, and the rules for all of them.

- ``vaclab_api_requests_total{component, verb, resource, code}``: every request sent to the
  Kubernetes API, with the apiserver's verbs (``LIST`` and ``WATCH`` apart from ``GET``) and
  ``code`` ``0`` when no answer came.
- ``vaclab_build_info{component, version, python}``: always 1; the labels say what runs.
- ``vaclab_leader{component}``: 1 while this replica does the work (holds the Lease, or runs
  without leader election), else 0.

Labels are bounded: a label value never carries a number that grows with the workload (a
request size, a pod name). The ``_created`` series prometheus_client adds beside each counter
and histogram are not served: they double the series count and nobody queries them.
"""

from __future__ import annotations

import platform
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics

DISTRIBUTION = "vaclab-bandwidth-scheduler"


def package_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


class DaemonMetrics:
    def __init__(self, registry: CollectorRegistry, component: str) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self._component = component
        self.api_requests = Counter(
            "vaclab_api_requests_total",
            "Requests sent to the Kubernetes API, by verb (GET, LIST, WATCH, POST, PATCH, PUT, "
            "DELETE), resource and HTTP status (0: no answer).",
            ["component", "verb", "resource", "code"],
            registry=registry,
        )
        self.build = Gauge(
            "vaclab_build_info",
            "Always 1; the labels say what runs: component, package version, Python version.",
            ["component", "version", "python"],
            registry=registry,
        )
        self.build.labels(component, package_version(), platform.python_version()).set(1)
        self.leader = Gauge(
            "vaclab_leader",
            "1 while this replica does the work (holds the Lease, or runs without leader "
            "election), else 0.",
            ["component"],
            registry=registry,
        )
        self.leader.labels(component).set(0)

    def observe_request(self, verb: str, resource: str, status: int) -> None:
        self.api_requests.labels(self._component, verb, resource, str(status)).inc()

    def set_leading(self, leading: bool) -> None:
        self.leader.labels(self._component).set(1 if leading else 0)
