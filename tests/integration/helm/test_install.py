"""A real ``helm install`` / ``upgrade`` / ``uninstall`` of the chart on the local control plane.

No ``--wait``: simulated nodes have no kubelet, so the daemons' pods never run here; what is
proven is that the apiserver admits every object the chart renders, and what uninstall
leaves behind.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import new_bandwidth_object
from kubeio.errors import NotFound
from kubeio.resources import BANDWIDTHS
from kubeio.rest import KubeApi
from localcluster import ControlPlane
from localcluster.helm import CHART_DIR, Helm
from tests.integration.helm.support import (
    Release,
    api_for,
    by_kind,
    container_args,
    object_path,
    wait_for,
)

CRD_PATH = (
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/bandwidths.networking.vaclab.org"
)


def test_install_admits_every_object_and_uninstall_keeps_the_bandwidths(
    release: Release, kube: KubeApi
) -> None:
    # Without --skip-crds: helm reads the chart's crds/ and skips the CRD, which the session
    # installed already.
    release.values = {}  # installed: the fixture uninstalls it
    _, log = release.helm.run_logged(
        "install", release.name, str(CHART_DIR), "--namespace", release.namespace, "--debug"
    )
    assert "CRD bandwidths.networking.vaclab.org is already present. Skipping." in log
    status = release.helm.run("status", release.name, "--namespace", release.namespace)
    assert "STATUS: deployed" in status
    objects = release.manifest()
    assert len(objects) == 18
    for obj in objects:
        stored = kube.get(object_path(obj))
        assert stored["metadata"]["labels"]["app.kubernetes.io/instance"] == release.name
    deployment = kube.get(
        object_path(by_kind(objects, "Deployment")[f"{release.fullname}-scheduler"])
    )
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == container_args(
        by_kind(objects, "Deployment")[f"{release.fullname}-scheduler"]
    )

    node = f"{release.name}-node"
    capacity = Usage(local=LinkBudget(20000, 20000), network=LinkBudget(1000, 1000))
    kube.create(BANDWIDTHS.path(), new_bandwidth_object(node, capacity))
    try:
        release.helm.uninstall(release.name, release.namespace)
        release.values = None
        for obj in objects:
            try:
                kube.get(object_path(obj))
            except NotFound:
                continue
            raise AssertionError(f"{obj['kind']} {obj['metadata']['name']} outlived uninstall")
        # crds/ is never deleted by helm: the CRD and every Bandwidth object remain.
        assert kube.get(CRD_PATH)["metadata"]["name"] == "bandwidths.networking.vaclab.org"
        assert kube.get(BANDWIDTHS.path(name=node))["spec"]["capacity"]["network"]["ulMbps"] == 1000
    finally:
        with contextlib.suppress(NotFound):
            kube.delete(BANDWIDTHS.path(name=node))


def test_upgrade_with_seed_values_rolls_the_new_flags_out(release: Release, kube: KubeApi) -> None:
    release.install({"leaderElection.enabled": False})
    path = object_path(release.deployment("accounting"))
    before = kube.get(path)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--default-network-ul-mbps=1000" in before
    release.helm.upgrade(
        release.name,
        release.namespace,
        {"manager.bandwidth.network.uplink": 10000, "manager.annotations.egress": "x.io/e"},
    )
    after = kube.get(path)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--default-network-ul-mbps=10000" in after
    assert "--egress-annotation=x.io/e" in after
    assert not any(arg.startswith("--leader-elect") for arg in after)
    scheduler = kube.get(object_path(release.deployment("scheduler")))
    assert (
        "--egress-annotation=x.io/e"
        in scheduler["spec"]["template"]["spec"]["containers"][0]["args"]
    )


def test_a_first_install_creates_the_crd_from_the_charts_file(
    helm_binary: Path, tmp_path: Path
) -> None:
    """On a cluster of its own that has never seen the CRD, helm install creates it."""
    with ControlPlane() as cp:
        helm = Helm(helm_binary, tmp_path / "helm", cp.kubeconfig_path)
        helm.install("first", "default", {"scheduler.replicas": 0, "accounting.replicas": 0})
        api = api_for(cp.kubeconfig_path)
        try:

            def established() -> bool:
                conditions = api.get(CRD_PATH).get("status", {}).get("conditions", [])
                return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

            wait_for("the CRD to be established", established, timeout=20)
            crd = api.get(CRD_PATH)
            # Helm does not own what crds/ installs: uninstall leaves it alone.
            assert "meta.helm.sh/release-name" not in crd["metadata"].get("annotations", {})
            assert crd["spec"]["names"]["shortNames"] == ["bw"]
            capacity = Usage(local=LinkBudget(20000, 20000), network=LinkBudget(1000, 1000))
            created = api.create(BANDWIDTHS.path(), new_bandwidth_object("n1", capacity))
            assert created["spec"]["capacity"]["network"]["ulMbps"] == 1000
        finally:
            api.close()
