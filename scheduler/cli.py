"""``vaclab-scheduler``: flags (or a YAML config file with the same names) and start-up."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

import structlog

from bandwidth.flags import (
    add_annotation_flags,
    add_dra_flags,
    annotation_keys_from,
    dra_sharing_from,
)
from bandwidth.quantity import BandwidthValueError, parse_mbps
from bandwidth.request import RequestPolicy
from kubeio.config import NoClusterConfig
from kubeio.daemon import (
    CannotServe,
    add_common_flags,
    exit_process,
    parse_args_with_config,
    run_daemon,
    start_daemon,
)
from scheduler.config import DEFAULT_SCHEDULER_NAME, SchedulerConfig, ScoreWeights, weight_help
from scheduler.loop import Scheduler

log = structlog.get_logger("scheduler")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaclab-scheduler",
        description="Schedule pods that name this scheduler onto nodes with bandwidth to spare.",
    )
    add_common_flags(parser)
    parser.add_argument(
        "--scheduler-name",
        default=DEFAULT_SCHEDULER_NAME,
        help="schedule the pods whose spec.schedulerName is this; also the Events' source and "
        f"the reservations' scheduler (default {DEFAULT_SCHEDULER_NAME})",
    )
    add_annotation_flags(parser)
    parser.add_argument(
        "--default-egress",
        default="0",
        help="uplink charged to pods without the annotation, e.g. 10M (default 0: none)",
    )
    parser.add_argument(
        "--default-ingress",
        default="0",
        help="downlink charged to pods without the annotation, e.g. 10M (default 0: none)",
    )
    weights = ScoreWeights()
    scoring = parser.add_argument_group(
        "score weights",
        "each score is scaled to 0..100 over the feasible nodes, then weighted; 0 turns one off",
    )
    for name in ScoreWeights.__dataclass_fields__:
        scoring.add_argument(
            f"--weight-{name.replace('_', '-')}",
            type=int,
            default=getattr(weights, name),
            help=f"{weight_help(name)} (default {getattr(weights, name)})",
        )
    bind_workers = SchedulerConfig().bind_workers
    parser.add_argument(
        "--bind-workers",
        type=int,
        default=bind_workers,
        help="threads writing reservations and bindings in parallel; decisions stay on one "
        f"thread (default {bind_workers})",
    )
    parser.add_argument(
        "--preemption",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="when no node takes a pod, preempt pods of lower priority to make room for it, "
        "as kube-scheduler's DefaultPreemption; --no-preemption: never (nominations other "
        "schedulers make are still respected) (default on)",
    )
    parser.add_argument(
        "--percentage-of-nodes-to-score",
        type=_percentage,
        default=None,
        help="stop examining nodes once this share of the cluster (at least 100 nodes) is "
        "feasible, as kube-scheduler's percentageOfNodesToScore; 0: kube's adaptive default, "
        "50%% falling to 5%% as the cluster grows; 100: every node (default: every node, "
        "but kube's adaptive share for pods with inter-pod affinity, topology spread, host "
        "ports or volumes, whose filters run one node at a time)",
    )
    add_dra_flags(parser)
    volume_bind_timeout = SchedulerConfig().volume_bind_timeout_seconds
    parser.add_argument(
        "--volume-bind-timeout",
        type=float,
        default=volume_bind_timeout,
        help="seconds a pod's volumes may take to be bound by the PV controller or provisioned "
        f"before the pod is retried, as kube-scheduler's bindTimeoutSeconds "
        f"(default {volume_bind_timeout:g})",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> SchedulerConfig:
    try:
        default_egress = parse_mbps(str(args.default_egress))
        default_ingress = parse_mbps(str(args.default_ingress))
    except BandwidthValueError as error:
        raise SystemExit(
            f"vaclab-scheduler: invalid --default-egress/--default-ingress {error}"
        ) from None
    weights = ScoreWeights(
        **{name: int(getattr(args, f"weight_{name}")) for name in ScoreWeights.__dataclass_fields__}
    )
    return SchedulerConfig(
        scheduler_name=args.scheduler_name,
        request_policy=RequestPolicy(
            keys=annotation_keys_from(args),
            default_egress_mbps=default_egress,
            default_ingress_mbps=default_ingress,
        ),
        weights=weights,
        bind_workers=args.bind_workers,
        dra=dra_sharing_from(args),
        volume_bind_timeout_seconds=args.volume_bind_timeout,
        preemption=bool(args.preemption),
        percentage_of_nodes_to_score=args.percentage_of_nodes_to_score,
    )


def _percentage(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value} is not a percentage from 0 to 100")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args_with_config(build_parser(), argv)
    config = config_from_args(args)
    try:
        daemon = start_daemon(args, config.scheduler_name)
    except (NoClusterConfig, CannotServe) as error:
        log.error("cannot_start", error=str(error))
        return 1
    scheduler = Scheduler(daemon.api, config, daemon.registry)
    return run_daemon(args, daemon, config.scheduler_name, scheduler)


def run() -> NoReturn:
    """Console-script entry point: ``main`` in a process that ends with its exit code."""
    exit_process(main())
