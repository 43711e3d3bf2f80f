"""The benchmark's Markdown report (bench.report): the per-pod, traffic and quality columns."""

from __future__ import annotations

from typing import Any

from bench.report import markdown
from bench.run import RunResult


def result(contender: str, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "contender": contender,
        "arrival": "burst",
        "nodes": 100,
        "pods": 1000,
        "bound": 1000,
        "seconds": 10.0,
        "throughput_pods_per_second": 100.0,
        "latency_p50_s": 1.0,
        "latency_p90_s": 2.0,
        "latency_p99_s": 3.0,
        "oversubscribed_nodes": 0,
        "nodes_per_workload": 1.5,
        "api_requests_per_pod": 1.9,
        "scheduler_cpu_seconds": 2.0,
        "scheduler_peak_rss_mib": 80.0,
        "scheduler_cpu_ms_per_pod": 2.0,
        "apiserver_cpu_ms_per_pod": 3.5,
        "api_request_kib_per_pod": 1.25,
        "api_response_kib_per_pod": 10.5,
        "fewest_nodes_per_workload": 1.2,
        "span_over_fewest": 1.25,
        "excess_nodes": 7,
        "sibling_pairs_together": 0.8123,
    }
    fields.update(changes)
    return RunResult(**fields).as_json()


def table(text: str, header_start: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_main_table_has_cpu_per_pod() -> None:
    rows = table(markdown([result("vaclab")], [], 2), "| contender | arrival | nodes")
    assert rows[0].endswith(
        "| scheduler CPU s | scheduler CPU ms/pod | apiserver+etcd CPU ms/pod | peak RSS MiB |"
    )
    assert rows[2].endswith("| 2.0 | 2.0 | 3.5 | 80.0 |")


def test_traffic_and_quality_tables() -> None:
    text = markdown(
        [result("vaclab"), result("kube", sibling_pairs_together=None, span_over_fewest=9.5)],
        [],
        2,
    )
    traffic = table(text, "| contender | arrival | API requests/pod | request KiB/pod")
    assert traffic[2:] == [
        "| vaclab | burst | 1.9 | 1.25 | 10.50 |",
        "| kube | burst | 1.9 | 1.25 | 10.50 |",
    ]
    quality = table(text, "| contender | arrival | nodes per workload | fewest nodes")
    assert quality[2] == "| vaclab | burst | 1.5 | 1.2 | 1.25 | 7 | 81.2 % |"
    assert quality[3] == "| kube | burst | 1.5 | 1.2 | 9.5 | 7 | - |"


def test_companion_bytes_per_pod() -> None:
    run = result(
        "vaclab",
        detail={
            "accounting_cpu_seconds": 0.5,
            "accounting_peak_rss_mib": 60.0,
            "accounting_api_requests": 400.0,
            "accounting_bytes_sent": 512_000,
            "accounting_bytes_received": 2_048_000,
        },
    )
    rows = table(markdown([run], [], 2), "| contender | arrival | process")
    assert rows[2] == "| vaclab | burst | vaclab-accounting | 0.50 | 60.0 | 0.40 | 0.50 | 2.00 |"


def test_goals_follow_the_runs() -> None:
    text = markdown([result("vaclab"), result("kube", throughput_pods_per_second=50.0)], [], 2)
    goals = table(text, "| goal | where")
    assert (
        "| throughput A/B | burst, 100 nodes | >= 1.5 | 2.00 (100.0 vs 50.0 pods/s) | met |"
        in goals
    )
    assert (
        "| p99 latency A/B | burst, 100 nodes | <= 0.5 | 1.00 (3.0 vs 3.0 s) | **not met** |"
        in goals
    )
    assert "Goals of issue 17 covered by this run: 2 of 3 met." in text
    assert "Goals of issue 17" not in markdown([result("kube")], [], 2)
