"""A ``ClusterState`` fed the watch events its caches would deliver — nodes with Bandwidth
objects, pods with priorities, bandwidth annotations, start times and reservations — and the
scheduler's own preemption run on it: no server."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import Reservation, new_bandwidth_object
from bandwidth.request import BandwidthRequest, RequestPolicy
from kubeio.watchcache import ADDED, DELETED, MODIFIED
from scheduler.config import SchedulerConfig
from scheduler.decide import filter_node
from scheduler.decider import Decider
from scheduler.plugins.framework import PodContext
from scheduler.plugins.registry import default_filters
from scheduler.podfacts import PodFacts, read_pod
from scheduler.preemption.budgets import Budget
from scheduler.preemption.evaluator import Attempt, Preemption
from tests.unit.scheduler.cluster_builder import Cluster, node_json

JSON = dict[str, Any]
NOW = 2_000_000_000.0
"""The clock preemption is given: later than every start time below."""
_uids = itertools.count()


def started(minutes_ago: int) -> str:
    return datetime.fromtimestamp(NOW - 60 * minutes_ago, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Lab:
    def __init__(self) -> None:
        self.cluster = Cluster()
        self.state = self.cluster.state
        self.filters = default_filters()
        self.preemption = Preemption()
        self.budgets: list[Budget] = []
        self.decider = Decider(SchedulerConfig().weights)
        self._ledgers: dict[str, tuple[Usage, dict[str, Reservation]]] = {}
        self.bodies: dict[str, JSON] = {}

    # The cluster --------------------------------------------------------------------------

    def node(
        self,
        name: str,
        *,
        network: tuple[int, int] = (1000, 1000),
        local: tuple[int, int] = (20000, 20000),
        ledger: bool = True,
        taints: list[JSON] | None = None,
        cpu: str = "8",
        **labels: str,
    ) -> Lab:
        body = node_json(name, labels, taints)
        body["status"]["allocatable"]["cpu"] = cpu
        self.state.on_node(ADDED, None, body)
        if ledger:
            self._ledgers[name] = (Usage(LinkBudget(*local), LinkBudget(*network)), {})
            self._write_ledger(name, ADDED)
        return self

    def pod(
        self,
        name: str,
        node: str = "",
        *,
        priority: int = 0,
        up: int = 0,
        down: int = 0,
        reserved: bool = False,
        minutes: int | None = None,
        labels: dict[str, str] | None = None,
        owner: tuple[str, str] | None = None,
        deleting: bool = False,
        preempted: bool = False,
        never: bool = False,
        nominated: str = "",
        cpu: str = "",
        spec: JSON | None = None,
    ) -> JSON:
        """A pod: bound to ``node`` (with a reservation in its ledger when ``reserved``, as
        ours are; else charged from its annotations, as another scheduler's), or pending."""
        metadata: JSON = {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}-{next(_uids)}",
            "labels": labels or {},
            "annotations": {},
            "creationTimestamp": started(1000),
        }
        if up:
            metadata["annotations"]["kubernetes.io/egress-bandwidth"] = f"{up}M"
        if down:
            metadata["annotations"]["kubernetes.io/ingress-bandwidth"] = f"{down}M"
        if owner:
            metadata["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
        if deleting:
            metadata["deletionTimestamp"] = started(0)
        container: JSON = {"name": "c"}
        if cpu:
            container["resources"] = {"requests": {"cpu": cpu}}
        body: JSON = {
            "metadata": metadata,
            "spec": {"priority": priority, "containers": [container], **(spec or {})},
            "status": {"phase": "Running" if node else "Pending"},
        }
        if never:
            body["spec"]["preemptionPolicy"] = "Never"
        if node:
            body["spec"]["nodeName"] = node
        if minutes is not None:
            body["status"]["startTime"] = started(minutes)
        if preempted:
            body["status"]["conditions"] = [
                {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}
            ]
        if nominated:
            body["status"]["nominatedNodeName"] = nominated
        self.bodies[name] = body
        if node and reserved:
            facts = self.facts(name)
            self._ledgers[node][1][facts.uid] = Reservation(
                facts.uid, name, "ns", BandwidthRequest(up, down)
            )
            self._write_ledger(node, MODIFIED)
        if node or nominated:
            self.state.on_pod(ADDED, None, body)
        return body

    def budget(self, selector: dict[str, str], allowed: int) -> Lab:
        self.budgets.append(
            Budget.read(
                {
                    "metadata": {"namespace": "ns", "name": f"pdb-{len(self.budgets)}"},
                    "spec": {"selector": {"matchLabels": selector}},
                    "status": {"disruptionsAllowed": allowed},
                }
            )
        )
        return self

    def terminate(self, name: str, *, preempted: bool = True) -> None:
        """The pod's graceful deletion began (after a preemption's condition, by default)."""
        body = self.bodies[name]
        body["metadata"]["deletionTimestamp"] = started(0)
        if preempted:
            body["status"]["conditions"] = [
                {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}
            ]
        self.state.on_pod(MODIFIED, None, body)

    def delete(self, name: str) -> None:
        """The pod is gone (its reservation stays until ``release``)."""
        self.state.on_pod(DELETED, self.bodies[name], None)

    def release(self, name: str) -> None:
        """The accounting controller released the pod's reservation."""
        uid = self.facts(name).uid
        for node, (_, reservations) in self._ledgers.items():
            if reservations.pop(uid, None) is not None:
                self._write_ledger(node, MODIFIED)

    def _write_ledger(self, node: str, kind: str) -> None:
        capacity, reservations = self._ledgers[node]
        body = new_bandwidth_object(node, capacity, reservations=reservations.values())
        body["metadata"]["generation"] = next(_uids)
        self.state.on_bandwidth(kind, None, body)

    # Reading and deciding -----------------------------------------------------------------

    def facts(self, name: str) -> PodFacts:
        return read_pod(self.bodies[name], RequestPolicy())

    def context(self, name: str) -> PodContext:
        return self.state.context_for(self.facts(name))

    def attempt(self, name: str) -> Attempt:
        with self.state.lock:
            return self.preemption.attempt(
                self.state, self.context(name), self.filters, self.budgets, now=NOW
            )

    def victims(self, name: str) -> tuple[str | None, set[str]]:
        """Where the pod would preempt and whom (by name); (None, empty) if nowhere."""
        attempt = self.attempt(name)
        if attempt.plan is None:
            return None, set()
        return attempt.plan.node, {victim.name for victim in attempt.plan.victims}

    def refusals(self, name: str) -> dict[str, tuple[str, ...]]:
        ctx = self.context(name)
        return {
            n: filter_node(ctx, info, self.filters) for n, info in sorted(self.state.nodes.items())
        }

    def choose(self, name: str) -> str | None:
        with self.state.lock:
            return self.decider.choose(self.state, self.context(name)).node
