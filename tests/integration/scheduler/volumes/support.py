"""Pods with claims, and what the scheduler said about them."""

from __future__ import annotations

from typing import Any

from kubeio.errors import NotFound
from kubeio.resources import PODS
from kubeio.rest import KubeApi
from tests.integration.scheduler.conftest import events_for, pod_body

JSON = dict[str, Any]


def volume_pod(
    name: str,
    scheduler_name: str,
    claims: tuple[str, ...],
    *,
    egress: str | None = None,
    node_selector: dict[str, str] | None = None,
    ephemeral: dict[str, str] | None = None,
) -> JSON:
    """A pod whose volumes name ``claims``, and generic ephemeral volumes (name → class)."""
    volumes: list[JSON] = [
        {"name": f"v{index}", "persistentVolumeClaim": {"claimName": claim}}
        for index, claim in enumerate(claims)
    ]
    for volume, storage_class in (ephemeral or {}).items():
        template = {
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": storage_class,
                "resources": {"requests": {"storage": "1Gi"}},
            }
        }
        volumes.append({"name": volume, "ephemeral": {"volumeClaimTemplate": template}})
    spec: JSON = {"volumes": volumes}
    if node_selector:
        spec["nodeSelector"] = node_selector
    return pod_body(name, scheduler_name, egress=egress, ingress=egress, extra_spec=spec)


def _pod(kube: KubeApi, namespace: str, name: str) -> JSON:
    """The pod, or an empty one while its controller has not created it yet."""
    try:
        return kube.get(PODS.path(namespace=namespace, name=name))
    except NotFound:
        return {}


def node_of(kube: KubeApi, namespace: str, name: str) -> str | None:
    return (_pod(kube, namespace, name).get("spec") or {}).get("nodeName")


def unschedulable_message(kube: KubeApi, namespace: str, name: str) -> str:
    """The ``PodScheduled=False`` message, without what kube-scheduler's preemption adds.

    kube-scheduler writes ``0/N nodes are available: <reasons>. <preemption's message>``;
    no reason of ours holds a ``". "``."""
    pod = _pod(kube, namespace, name)
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            message = str(condition.get("message", ""))
            return message.split(". ", 1)[0] + "." if ". " in message else message
    return ""


def warnings_for(kube: KubeApi, namespace: str, name: str, reason: str) -> list[str]:
    return [
        str(event["message"])
        for event in events_for(kube, namespace, name)
        if event["reason"] == reason and event["type"] == "Warning"
    ]
