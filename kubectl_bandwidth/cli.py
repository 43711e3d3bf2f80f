"""``kubectl-bandwidth``: flags, the cluster connection, and one function per subcommand.

kubectl runs any ``kubectl-<name>`` on the PATH as ``kubectl <name>``, passing the arguments
after the name, so the flags that choose the cluster (``--kubeconfig``, ``--context``) and the
ones that must match the scheduler's (annotation keys, scheduler name, weights) are accepted
before or after the subcommand. Errors are one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml
from kubernetes import config as kube_config

from bandwidth.flags import add_annotation_flags, annotation_keys_from
from bandwidth.model import MalformedBandwidth
from bandwidth.quantity import BandwidthValueError, parse_mbps
from bandwidth.request import AnnotationKeys, RequestPolicy
from kubectl_bandwidth import render
from kubectl_bandwidth.diagnosis import explain_pod
from kubectl_bandwidth.errors import BadInput, NoCluster, PluginError
from kubectl_bandwidth.headroom import SORT_CHOICES, node_headroom, select, sort_rows
from kubectl_bandwidth.holders import node_holding
from kubectl_bandwidth.snapshot import (
    Reader,
    build_snapshot,
    fetch_cluster,
    fetch_node_holders,
)
from kubectl_bandwidth.whatif import read_workloads, simulate
from kubeio.config import NoClusterConfig, find_kubeconfig, load_client_configuration
from kubeio.labels import InvalidSelector, LabelSelector
from kubeio.resources import PODS
from kubeio.rest import KubeApi
from scheduler.config import DEFAULT_SCHEDULER_NAME, SchedulerConfig, ScoreWeights, weight_help

PROG = "kubectl-bandwidth"
DEFAULT_KEYS = AnnotationKeys()


def _selector(text: str) -> LabelSelector:
    try:
        return LabelSelector.parse(text)
    except InvalidSelector as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _mbps(text: str) -> int:
    try:
        return parse_mbps(text)
    except BandwidthValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _replicas(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 0")
    return value


def _add_cluster_flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Flags accepted before and after the subcommand.

    On the subcommands the defaults are suppressed, so a flag given before the subcommand is
    not reset by the subcommand's default.
    """

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("cluster and scheduler")
    group.add_argument(
        "--kubeconfig",
        default=default(None),
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)",
    )
    group.add_argument("--context", default=default(None), help="kubeconfig context to use")
    group.add_argument(
        "--scheduler-name",
        default=default(DEFAULT_SCHEDULER_NAME),
        help=f"the vaclab scheduler's name (default {DEFAULT_SCHEDULER_NAME})",
    )
    add_annotation_flags(group, default=default)
    for flag, what in (("--default-egress", "uplink"), ("--default-ingress", "downlink")):
        group.add_argument(
            flag,
            type=_mbps,
            default=default(0),
            help=f"{what} the scheduler charges pods without the annotation (default 0)",
        )
    weights = ScoreWeights()
    for name in ScoreWeights.__dataclass_fields__:
        group.add_argument(
            f"--weight-{name.replace('_', '-')}",
            type=int,
            default=default(getattr(weights, name)),
            help=f"as the scheduler's: {weight_help(name)} (default {getattr(weights, name)})",
        )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show the Python traceback of an unexpected error",
    )


def _add_output(
    parser: argparse.ArgumentParser, formats: tuple[str, ...] = render.OUTPUT_FORMATS
) -> None:
    parser.add_argument(
        "-o", "--output", choices=formats, help=f"{', '.join(formats)} (default: text)"
    )


def _add_namespace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--namespace", help="namespace (default: the context's namespace, else default)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Bandwidth on each node as the vaclab scheduler sees it: capacity, "
        "reservations and headroom; why a pod is where it is; where a workload would go.",
    )
    _add_cluster_flags(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status = commands.add_parser(
        "status", help="one line per node: capacity, charged and free, per axis"
    )
    _add_cluster_flags(status, suppress=True)
    status.add_argument(
        "--sort-by", choices=SORT_CHOICES, default="name", help="row order (default: name)"
    )
    status.add_argument(
        "-l",
        "--selector",
        type=_selector,
        default=LabelSelector(),
        help="node label selector, e.g. zone=a,!virtual (default: every node)",
    )
    _add_output(status)

    explain = commands.add_parser(
        "explain", help="why a pod is on its node, or every node's reason for refusing it"
    )
    _add_cluster_flags(explain, suppress=True)
    explain.add_argument("pod", metavar="POD")
    _add_namespace(explain)
    _add_output(explain, ("json", "yaml"))

    what_if = commands.add_parser(
        "what-if",
        help="where a Pod, Deployment or StatefulSet would go, and what it leaves; a workload "
        "that already runs is scaled (its pods stay, StatefulSet ordinals continue)",
    )
    _add_cluster_flags(what_if, suppress=True)
    what_if.add_argument(
        "-f",
        "--filename",
        required=True,
        help="manifest file, or - for standard input; several documents (or a List) get one "
        "answer per workload, simulated together in file order",
    )
    what_if.add_argument(
        "--replicas",
        type=_replicas,
        help="replicas the workload should have (default: the manifest's); one workload only",
    )
    _add_namespace(what_if)
    _add_output(what_if)

    reservations = commands.add_parser("reservations", help="the pods holding bandwidth on a node")
    _add_cluster_flags(reservations, suppress=True)
    reservations.add_argument("node", metavar="NODE")
    _add_output(reservations)
    return parser


def scheduler_config(args: argparse.Namespace) -> SchedulerConfig:
    """The scheduler's settings as far as placement depends on them."""
    return SchedulerConfig(
        scheduler_name=args.scheduler_name,
        request_policy=RequestPolicy(
            keys=annotation_keys_from(args),
            default_egress_mbps=args.default_egress,
            default_ingress_mbps=args.default_ingress,
        ),
        weights=ScoreWeights(
            **{
                name: int(getattr(args, f"weight_{name}"))
                for name in ScoreWeights.__dataclass_fields__
            }
        ),
    )


def kubeconfig_path(flag: str | None) -> str | None:
    """``--kubeconfig``, else ``$KUBECONFIG``, else ``~/.kube/config`` if it exists (as kubectl
    does), else ``None`` for the in-cluster service account."""
    return find_kubeconfig(flag, home=True)[0]


def context_namespace(path: str | None, context: str | None) -> str:
    """The namespace the kubeconfig context names, else ``default``."""
    if path is None:
        return "default"
    try:
        contexts, current = kube_config.list_kube_config_contexts(config_file=path)
    except (kube_config.ConfigException, OSError, yaml.YAMLError):
        return "default"
    chosen = (
        next((c for c in contexts or [] if c.get("name") == context), None) if context else current
    )
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")


def connect(args: argparse.Namespace) -> KubeApi:
    try:
        configuration = load_client_configuration(
            args.kubeconfig, context=args.context, pool_size=4, home=True
        )
    except NoClusterConfig as error:
        raise NoCluster(str(error)) from error
    return KubeApi(configuration, user_agent=PROG)


def _print_document(out: TextIO, document: dict[str, Any], output: str) -> None:
    print(render.dump(document, output), file=out)


def run_status(args: argparse.Namespace, reader: Reader, out: TextIO) -> None:
    snapshot = build_snapshot(fetch_cluster(reader), scheduler_config(args))
    rows = sort_rows(select(node_headroom(snapshot), args.selector), args.sort_by)
    if args.output in ("json", "yaml"):
        _print_document(out, render.status_document(rows), args.output)
    else:
        print(render.render_status(rows, wide=args.output == "wide"), file=out)


def run_explain(args: argparse.Namespace, reader: Reader, out: TextIO) -> None:
    namespace = args.namespace or context_namespace(kubeconfig_path(args.kubeconfig), args.context)
    lists = fetch_cluster(reader)
    # The pod as the lists saw it, so pod and cluster are one moment; a finished pod is not
    # among the live pods listed, and is read on its own.
    pod = next(
        (
            p
            for p in lists.pods
            if p["metadata"].get("namespace") == namespace and p["metadata"]["name"] == args.pod
        ),
        None,
    ) or reader.get(PODS, args.pod, namespace=namespace)
    explanation = explain_pod(build_snapshot(lists, scheduler_config(args)), pod)
    if args.output in ("json", "yaml"):
        _print_document(out, render.explanation_document(explanation), args.output)
    else:
        print(render.render_explanation(explanation, datetime.now(UTC)), file=out)


def read_manifest(filename: str, stdin: TextIO) -> list[dict[str, Any]]:
    """The objects of a YAML or JSON file (``-`` reads standard input): every document, and
    the items of a ``List`` (what ``kubectl get -o yaml`` prints)."""
    try:
        text = stdin.read() if filename == "-" else Path(filename).read_text()
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except OSError as error:
        raise BadInput(f"cannot read {filename}: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise BadInput(f"{filename} is not valid YAML: {error}".splitlines()[0]) from error
    objects: list[dict[str, Any]] = []
    for document in documents:
        items = document.get("items") if isinstance(document, dict) else None
        if (
            isinstance(document, dict)
            and document.get("kind") == "List"
            and isinstance(items, list)
        ):
            objects.extend(items)
        else:
            objects.append(document)
    if not objects:
        raise BadInput(f"{filename}: no object found")
    for index, obj in enumerate(objects, start=1):
        if not isinstance(obj, dict):
            raise BadInput(f"{filename}: object {index} is not a mapping: {obj!r}"[:200])
    return objects


def run_what_if(args: argparse.Namespace, reader: Reader, out: TextIO) -> None:
    objects = read_manifest(args.filename, sys.stdin)
    namespace = args.namespace or context_namespace(kubeconfig_path(args.kubeconfig), args.context)
    workloads, skipped = read_workloads(
        objects, default_namespace=namespace, replicas=args.replicas
    )
    snapshot = build_snapshot(fetch_cluster(reader), scheduler_config(args))
    # In file order on one snapshot: each workload sees the ones before it placed.
    results = [simulate(snapshot, workload) for workload in workloads]
    if args.output in ("json", "yaml"):
        _print_document(out, render.what_ifs_document(results, skipped), args.output)
    else:
        print(render.render_what_ifs(results, skipped, wide=args.output == "wide"), file=out)


def run_reservations(args: argparse.Namespace, reader: Reader, out: TextIO) -> None:
    fetched = fetch_node_holders(reader, args.node)
    policy = scheduler_config(args).request_policy
    try:
        holding = node_holding(fetched.node, fetched.bandwidth, fetched.pods, policy)
    except MalformedBandwidth as error:
        raise PluginError(f"the Bandwidth object of {args.node} is unreadable: {error}") from error
    if args.output in ("json", "yaml"):
        _print_document(out, render.holding_document(holding), args.output)
    else:
        print(
            render.render_holding(holding, datetime.now(UTC), wide=args.output == "wide"), file=out
        )


COMMANDS: dict[str, Callable[[argparse.Namespace, Reader, TextIO], None]] = {
    "status": run_status,
    "explain": run_explain,
    "what-if": run_what_if,
    "reservations": run_reservations,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    api: KubeApi | None = None
    try:
        api = connect(args)
        COMMANDS[args.command](args, Reader(api), sys.stdout)
    except PluginError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        if args.debug:
            raise
        print(
            f"{PROG}: unexpected error: {type(error).__name__}: {error} (--debug shows where)",
            file=sys.stderr,
        )
        return 1
    finally:
        if api is not None:
            api.close()
    return 0
