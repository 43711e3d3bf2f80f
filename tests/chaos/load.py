"""The steady pod load of a soak, and the cluster roles nobody else plays on simulated nodes.

One thread, one tick every ``tick`` seconds, playing:

- **the StatefulSet controller**: every name of ``workload.pod_names`` that has no pod gets one
  (same name, new UID, owner reference to the set's StatefulSet object); a pod that has
  finished (``Succeeded``) is deleted, to be created again;
- **users**: with the seeded ``rng``, a bound pod is deleted gracefully (``gracePeriodSeconds``
  30: it stays, terminating, still holding its bandwidth) or marked ``Succeeded`` (its
  reservation is to be released);
- **the kubelet**: a terminating bound pod is removed (``gracePeriodSeconds`` 0) a random 0.5 to
  3 seconds after the load first saw it terminating.

Every call tolerates the apiserver being away (the tick is skipped). :meth:`Load.drain` ends the
churn and brings the set back to full strength with nothing terminating, for the quiet check.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from typing import Any

from kubeio.errors import ApiError, Conflict, NotFound
from kubeio.resources import PODS
from tests.chaos.rig import Rig
from tests.chaos.workload import SET_LABEL, PodSet, pod_names

JSON = dict[str, Any]


class Load:
    def __init__(self, rig: Rig, seed: int, tick: float = 0.4, churn: float = 0.5) -> None:
        self.rig = rig
        self.rng = random.Random(f"load-{seed}")
        self.tick = tick
        self.churn = churn
        self.names = pod_names(rig.settings.nodes)
        self.counts: Counter[str] = Counter()
        self.bound_uids: set[str] = set()
        self._owners: dict[str, str] = {}
        self._terminating: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._churning = True
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    # ------------------------------------------------------------------------- bodies
    def body(self, name: str) -> JSON:
        pod_set = self.names[name]
        body = self.rig.lab.pod_body(
            name, egress=None, ingress=None, annotations=pod_set.annotations()
        )
        body["metadata"]["labels"] = {SET_LABEL: pod_set.name}
        owner = self._owner(pod_set)
        if owner:
            body["metadata"]["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": pod_set.name,
                    "uid": owner,
                    "controller": True,
                }
            ]
        return body

    def _owner(self, pod_set: PodSet) -> str:
        if pod_set.name not in self._owners:
            with contextlib.suppress(ApiError):
                self._owners[pod_set.name] = self.rig.statefulset_uid(pod_set.name)
        return self._owners.get(pod_set.name, "")

    def create(self, name: str) -> bool:
        """Create pod ``name``; False if it exists already or the apiserver is away."""
        try:
            self.rig.kube.create(PODS.path(namespace=self.rig.namespace), self.body(name))
        except ApiError:
            return False
        with self._lock:
            self.counts["created"] += 1
        return True

    def delete(self, pod: JSON, grace: int) -> bool:
        meta = pod["metadata"]
        try:
            self.rig.kube.request(
                "DELETE",
                PODS.path(namespace=self.rig.namespace, name=meta["name"]),
                body={"gracePeriodSeconds": grace, "preconditions": {"uid": meta["uid"]}},
            )
        except (NotFound, Conflict):
            return False
        return True

    # --------------------------------------------------------------------------- loop
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def drain(self, timeout: float = 30.0) -> bool:
        """Stop the churn; finish terminating pods and recreate missing ones until every
        name has one live pod (or ``timeout``). Returns whether it got there."""
        self._churning = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pods = self._pods()
            except ApiError:
                time.sleep(0.5)
                continue
            live = {
                p["metadata"]["name"]
                for p in pods
                if not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") != "Succeeded"
            }
            if live >= set(self.names) and len(pods) == len(live):
                return True
            time.sleep(0.5)
        return False

    def _pods(self) -> list[JSON]:
        items, _ = self.rig.kube.list(PODS.path(namespace=self.rig.namespace))
        return items

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self._step()
            except ApiError:
                with self._lock:
                    self.counts["ticks skipped (apiserver away)"] += 1

    def _step(self) -> None:
        pods = self._pods()
        now = time.monotonic()
        present = {p["metadata"]["name"] for p in pods}
        with self._lock:
            self.bound_uids.update(p["metadata"]["uid"] for p in pods if p["spec"].get("nodeName"))
        for pod in pods:
            meta = pod["metadata"]
            if meta.get("deletionTimestamp") and pod["spec"].get("nodeName"):
                due = self._terminating.setdefault(meta["uid"], now + self.rng.uniform(0.5, 3.0))
                if now >= due and self.delete(pod, 0):
                    self._count("finalized by the kubelet")
            elif (pod.get("status") or {}).get("phase") == "Succeeded" and self.delete(pod, 0):
                self._count("finished pods replaced")
        for name in sorted(set(self.names) - present):
            self.create(name)
        if not self._churning or self.rng.random() >= self.churn:
            return
        candidates = sorted(
            (
                p
                for p in pods
                if p["spec"].get("nodeName")
                and not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") != "Succeeded"
            ),
            key=lambda p: str(p["metadata"]["name"]),
        )
        if not candidates:
            return
        victim = candidates[self.rng.randrange(len(candidates))]
        if self.rng.random() < 0.8:
            if self.delete(victim, 30):
                self._count("deleted gracefully")
        else:
            self._finish(victim)

    def _finish(self, pod: JSON) -> None:
        meta = pod["metadata"]
        try:
            self.rig.kube.patch(
                PODS.path(namespace=self.rig.namespace, name=meta["name"], subresource="status"),
                {"metadata": {"uid": meta["uid"]}, "status": {"phase": "Succeeded"}},
            )
        except ApiError:
            return
        self._count("marked Succeeded")

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1
