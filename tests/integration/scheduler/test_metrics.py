"""A running scheduler serves health and Prometheus series that match what it did."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from kubeio.rest import KubeApi
from localcluster import ControlPlane
from localcluster.process import free_port
from tests.integration.scheduler.conftest import create_pod, pod_body, pods_in, wait_until


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_and_health_after_scheduling(
    kube: KubeApi,
    controlplane: ControlPlane,
    namespace: str,
    simulated_nodes: Any,
    ledgers: Any,
    scheduler_name: str,
    tmp_path: Path,
) -> None:
    nodes = simulated_nodes(2)
    ledgers(nodes)
    metrics_port, health_port = free_port(), free_port()
    log = tmp_path / "scheduler.log"
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scheduler",
            "--kubeconfig",
            str(controlplane.kubeconfig_path),
            "--scheduler-name",
            scheduler_name,
            "--metrics-bind-address",
            f"127.0.0.1:{metrics_port}",
            "--health-probe-bind-address",
            f"127.0.0.1:{health_port}",
        ],
        stderr=log.open("wb"),
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        wait_until(lambda: _get(f"http://127.0.0.1:{health_port}/readyz")[0] == 200, what="ready")
        assert _get(f"http://127.0.0.1:{health_port}/healthz") == (200, "ok\n")
        for index in range(20):
            create_pod(kube, namespace, pod_body(f"m{index:02d}", scheduler_name, egress="10M"))
        # Twelve sizes too big, one bad value: the labels must not grow with the sizes.
        for gigabits in range(5, 17):
            create_pod(kube, namespace, pod_body(f"big-{gigabits}", scheduler_name,
                                                 egress=f"{gigabits}G"))  # fmt: skip
        create_pod(kube, namespace, pod_body("fast", scheduler_name, egress="fast"))
        wait_until(
            lambda: sum(1 for p in pods_in(kube, namespace) if p["spec"].get("nodeName")) == 20,
            what="20 pods bound",
        )

        def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
            samples = _samples(_get(f"http://127.0.0.1:{metrics_port}/metrics")[1])
            done = samples.get(
                ("vaclab_scheduler_schedule_attempts_total", (("result", "scheduled"),))
            )
            return samples if done == 20 else None

        samples = wait_until(scraped, what="20 scheduled attempts in /metrics")
        assert (
            samples[("vaclab_scheduler_schedule_attempts_total", (("result", "unschedulable"),))]
            >= 1
        )
        assert samples[("vaclab_scheduler_pod_scheduling_duration_seconds_count", ())] == 20
        assert 0 < samples[("vaclab_scheduler_pod_scheduling_duration_seconds_sum", ())] < 20 * 30
        assert samples[("vaclab_scheduler_binding_duration_seconds_count", ())] == 20
        assert samples[("vaclab_scheduler_scheduling_cycle_duration_seconds_count", ())] >= 21
        stages = {
            dict(labels)["stage"]: value
            for (name, labels), value in samples.items()
            if name == "vaclab_scheduler_pod_stage_duration_seconds_count"
        }
        assert set(stages) == {"watch", "queue", "decide", "reserve", "bind"}
        assert stages["watch"] == 33, "each pod of ours once, when its first event is handled"
        assert stages["queue"] >= 33 and stages["decide"] >= 20 and stages["reserve"] >= 20
        assert stages["bind"] == 20
        bindings = (
            "vaclab_api_requests_total",
            (
                ("code", "201"),
                ("component", scheduler_name),
                ("resource", "pods/binding"),
                ("verb", "POST"),
            ),
        )
        assert samples[bindings] == 20
        wait_until(
            lambda: (
                _samples(_get(f"http://127.0.0.1:{metrics_port}/metrics")[1]).get(
                    ("vaclab_scheduler_pending_pods", (("queue", "unschedulable"),))
                )
                == 13
            ),
            what="13 unschedulable pods in the queue gauge",
        )
        text = _get(f"http://127.0.0.1:{metrics_port}/metrics")[1]
        unschedulable = {
            labels: value
            for (name, labels), value in _samples(text).items()
            if name == "vaclab_scheduler_unschedulable_pods"
        }
        assert unschedulable == {
            (("axis", "network uplink"), ("reason", "insufficient bandwidth")): 12,
            (("axis", ""), ("reason", "invalid request")): 1,
        }
        assert "_created" not in text
        final = _samples(text)
        assert final[("vaclab_leader", (("component", scheduler_name),))] == 1
        (build,) = [labels for name, labels in final if name == "vaclab_build_info"]
        assert dict(build)["component"] == scheduler_name and dict(build)["version"] == "0.1.0"
        verbs = {
            dict(labels)["verb"]
            for name, labels in final
            if name == "vaclab_api_requests_total" and dict(labels)["resource"] == "pods"
        }
        assert {"LIST", "WATCH"} <= verbs, verbs  # apart from GET
    finally:
        daemon.terminate()
        assert daemon.wait(15) == 0, log.read_text()[-2000:]
