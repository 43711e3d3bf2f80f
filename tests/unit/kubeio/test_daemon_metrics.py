"""The series every daemon serves besides its own: no server."""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from kubeio.metrics import DaemonMetrics, package_version


def test_build_info_leader_and_requests_without_created_series() -> None:
    registry = CollectorRegistry()
    metrics = DaemonMetrics(registry, "vaclab-scheduler")
    Counter("vaclab_things_total", "a counter of the daemon", registry=registry).inc()
    Histogram("vaclab_seconds", "a histogram of the daemon", registry=registry).observe(1)
    metrics.observe_request("LIST", "pods", 200)
    metrics.observe_request("WATCH", "pods", 200)
    metrics.observe_request("GET", "pods", 404)
    metrics.set_leading(True)
    text = generate_latest(registry).decode()
    assert "_created" not in text
    assert (
        f'vaclab_build_info{{component="vaclab-scheduler",python="{platform.python_version()}",'
        f'version="{package_version()}"}} 1.0'
    ) in text
    assert package_version() == "0.1.0"  # setup.cfg's, from the installed metadata
    assert 'vaclab_leader{component="vaclab-scheduler"} 1.0' in text
    for verb, code in (("LIST", "200"), ("WATCH", "200"), ("GET", "404")):
        assert (
            f'vaclab_api_requests_total{{code="{code}",component="vaclab-scheduler",'
            f'resource="pods",verb="{verb}"}} 1.0'
        ) in text
    metrics.set_leading(False)
    assert 'vaclab_leader{component="vaclab-scheduler"} 0.0' in generate_latest(registry).decode()
