"""One-line errors, flags before or after the subcommand, manifests: no server."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from kubectl_bandwidth.cli import (
    build_parser,
    context_namespace,
    kubeconfig_path,
    main,
    read_manifest,
    scheduler_config,
)
from kubectl_bandwidth.errors import (
    AccessDenied,
    BadInput,
    CrdMissing,
    NotFoundError,
    ServerRefused,
    api_failure,
)
from kubectl_bandwidth.whatif import read_workload, read_workloads
from kubeio.errors import error_for_status
from kubeio.resources import BANDWIDTHS, PODS, REPLICASETS


def test_forbidden_names_the_verb_the_resource_and_the_scope() -> None:
    error = error_for_status(403, {"message": 'pods is forbidden: User "u" cannot get'})
    failure = api_failure(error, verb="get", resource=PODS, namespace="lab", name="p")
    assert isinstance(failure, AccessDenied)
    assert str(failure) == (
        "access denied: cannot get pods in namespace lab (403 Forbidden: pods is forbidden: "
        'User "u" cannot get)'
    )
    listed = api_failure(error_for_status(403, {}), verb="list", resource=REPLICASETS)
    assert str(listed).startswith("access denied: cannot list replicasets.apps cluster-wide")
    assert "401 Unauthorized" in str(api_failure(error_for_status(401, {}), verb="list",
                                                 resource=BANDWIDTHS))  # fmt: skip


def test_not_found_tells_a_missing_object_from_a_missing_resource() -> None:
    missing_object = error_for_status(404, {"details": {"name": "p", "kind": "pods"}})
    failure = api_failure(missing_object, verb="get", resource=PODS, namespace="lab", name="p")
    assert isinstance(failure, NotFoundError)
    assert str(failure) == "pods 'p' not found in namespace lab"
    unserved = error_for_status(404, {"details": {}})
    crd = api_failure(unserved, verb="list", resource=BANDWIDTHS, server="https://k:6443")
    assert isinstance(crd, CrdMissing)
    assert str(crd) == (
        "bandwidths.networking.vaclab.org is not installed on https://k:6443: "
        "kubectl apply -f crds/ (or install the Helm chart)"
    )
    other = api_failure(error_for_status(500, {"message": "etcd"}), verb="list", resource=PODS)
    assert isinstance(other, ServerRefused) and str(other) == "list pods failed: 500: etcd"


def test_cluster_flags_are_taken_before_or_after_the_subcommand() -> None:
    parser = build_parser()
    before = parser.parse_args(["--context", "lab", "--egress-annotation", "e", "status"])
    after = parser.parse_args(["status", "--context", "lab", "--egress-annotation", "e"])
    for args in (before, after):
        assert args.context == "lab" and args.egress_annotation == "e"
        assert args.ingress_annotation == "kubernetes.io/ingress-bandwidth"
    args = parser.parse_args(
        ["explain", "p", "-n", "x", "--default-egress", "10M", "--weight-colocation", "0"]
    )
    config = scheduler_config(args)
    assert config.request_policy.default_egress_mbps == 10
    assert config.weights.colocation == 0 and config.weights.sibling_room == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["status", "--sort-by", "nonsense"])
    with pytest.raises(SystemExit):
        parser.parse_args(["status", "-l", "a in (b"])


def test_kubeconfig_and_namespace_follow_kubectl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "one", "context": {"cluster": "c", "user": "u", "namespace": "lab"}},
                    {"name": "two", "context": {"cluster": "c", "user": "u"}},
                ],
                "current-context": "one",
            }
        )
    )
    assert context_namespace(str(config), None) == "lab"
    assert context_namespace(str(config), "two") == "default"
    assert context_namespace(None, None) == "default"
    monkeypatch.setenv("KUBECONFIG", str(config))
    assert kubeconfig_path(None) == str(config)
    assert kubeconfig_path("/elsewhere") == "/elsewhere"


def test_manifests_hold_one_or_several_objects_and_workloads_are_picked_out(
    tmp_path: Path,
) -> None:
    many = tmp_path / "many.yaml"
    many.write_text("kind: Pod\n---\nkind: Pod\n---\n")
    assert read_manifest(str(many), io.StringIO()) == [{"kind": "Pod"}, {"kind": "Pod"}]
    listed = "kind: List\nitems: [{kind: Service}, {kind: StatefulSet}]\n"
    assert [o["kind"] for o in read_manifest("-", io.StringIO(listed))] == [
        "Service",
        "StatefulSet",
    ]
    with pytest.raises(BadInput, match="no object found"):
        read_manifest("-", io.StringIO("---\n"))
    with pytest.raises(BadInput, match="object 2 is not a mapping"):
        read_manifest("-", io.StringIO("kind: Pod\n---\n- a\n"))
    with pytest.raises(BadInput, match="cannot read"):
        read_manifest(str(tmp_path / "absent.yaml"), io.StringIO())
    assert read_manifest("-", io.StringIO("kind: Pod\n")) == [{"kind": "Pod"}]
    with pytest.raises(BadInput, match="not 'ConfigMap'"):
        read_workload({"kind": "ConfigMap"}, default_namespace="lab", replicas=None)
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 5, "template": {"spec": {"containers": []}}},
    }
    assert read_workload(deployment, default_namespace="lab", replicas=None).replicas == 5
    assert read_workload(deployment, default_namespace="lab", replicas=2).replicas == 2
    with pytest.raises(BadInput, match="no pod spec"):
        read_workload({"kind": "StatefulSet", "metadata": {"name": "s"}, "spec": {}},
                      default_namespace="lab", replicas=None)  # fmt: skip
    service = {"kind": "Service", "metadata": {"name": "web"}}
    workloads, skipped = read_workloads(
        [service, deployment, {**deployment, "metadata": {"name": "api", "namespace": "x"}}],
        default_namespace="lab",
        replicas=None,
    )
    assert [str(w) for w in workloads] == ["Deployment lab/web", "Deployment x/api"]
    assert skipped == ["Service/web"]
    with pytest.raises(BadInput, match="--replicas applies to one workload; the manifest holds 2"):
        read_workloads([deployment, deployment], default_namespace="lab", replicas=3)
    (one,), _ = read_workloads([service, deployment], default_namespace="lab", replicas=3)
    assert one.replicas == 3
    with pytest.raises(BadInput, match="not 'Service', 'ConfigMap'"):
        read_workloads([service, {"kind": "ConfigMap"}], default_namespace="lab", replicas=None)


def test_errors_are_one_line_with_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = tmp_path / "absent"
    assert main(["status", "--kubeconfig", str(absent), "--context", "x"]) == 1
    err = capsys.readouterr().err
    assert err == f"kubectl-bandwidth: kubeconfig not found: --kubeconfig {absent} does not exist\n"
    config = tmp_path / "config"
    config.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    missing = tmp_path / "pod.yaml"
    assert main(["what-if", "-f", str(missing), "--kubeconfig", str(config)]) == 1
    assert capsys.readouterr().err == (
        f"kubectl-bandwidth: cannot read {missing}: No such file or directory\n"
    )
