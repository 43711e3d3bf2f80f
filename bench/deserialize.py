"""Raw JSON or the official client's models: what reading a list of pods costs.

``python -m bench.deserialize --pods 5000`` builds a pod list as the apiserver would answer it
(running pods of the benchmark's workload, ``bench.memory``), then, each in a fresh process:

- **raw**: ``json.loads`` of the response body, as ``kubeio.rest`` reads it;
- **models**: the same body through ``ApiClient.deserialize(..., "V1PodList")``, as the
  generated ``CoreV1Api.list_pod_for_all_namespaces`` returns it.

It prints the time to read it (best of three) and the memory the result keeps (tracemalloc).
The numbers are in docs/design.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from bench.memory import _as_listed
from bench.workload import pod_object, workload


def pod_list_body(pods: int) -> str:
    items = []
    for index, spec in enumerate(workload(pods, seed=13)):
        node = f"node-{index % 100:05d}"
        body = pod_object(spec, scheduler_name="vaclab", namespace="bench", uid=f"u{index:08d}")
        body["spec"]["nodeName"] = node
        items.append(_as_listed(body, index, node))
    listed = {"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}}
    return json.dumps({**listed, "items": items})


def _read(body: str, how: str) -> Any:
    if how == "raw":
        return json.loads(body)
    from kubernetes import client

    return client.ApiClient().deserialize(body, "V1PodList", "application/json")


def measure(body: str, how: str) -> tuple[float, float]:
    """Best-of-three seconds to read ``body``, and MiB the result keeps."""
    _read(body, how)  # imports and caches warmed
    best = min(_timed(body, how) for _ in range(3))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = _read(body, how)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return best, (after - before) / 2**20


def _timed(body: str, how: str) -> float:
    started = time.perf_counter()
    _read(body, how)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.deserialize")
    parser.add_argument("--pods", type=int, default=5000)
    args = parser.parse_args()
    body = pod_list_body(args.pods)
    print(f"{args.pods} pods, {len(body) / 2**20:.1f} MiB of JSON")
    context = multiprocessing.get_context("spawn")
    for how in ("raw", "models"):
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            seconds, mib = pool.submit(measure, body, how).result()
        print(f"{how:>6}: {seconds:6.2f} s to read, {mib:7.1f} MiB kept")


if __name__ == "__main__":
    main()
