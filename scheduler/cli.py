"""``vaclab-scheduler``: flags (or a YAML config file with the same names) and start-up."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

import structlog

from bandwidth.flags import add_annotation_flags, annotation_keys_from
from bandwidth.quantity import BandwidthValueError, parse_mbps
from bandwidth.request import RequestPolicy
from kubeio.config import NoClusterConfig
from kubeio.daemon import (
    add_common_flags,
    exit_process,
    parse_args_with_config,
    run_daemon,
    start_daemon,
)
from scheduler.config import DEFAULT_SCHEDULER_NAME, SchedulerConfig, ScoreWeights
from scheduler.loop import Scheduler

log = structlog.get_logger("scheduler")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaclab-scheduler",
        description="Schedule pods that name this scheduler onto nodes with bandwidth to spare.",
    )
    add_common_flags(parser)
    parser.add_argument("--scheduler-name", default=DEFAULT_SCHEDULER_NAME)
    add_annotation_flags(parser)
    parser.add_argument(
        "--default-egress", default="0", help="uplink charged to pods without the annotation"
    )
    parser.add_argument(
        "--default-ingress", default="0", help="downlink charged to pods without the annotation"
    )
    weights = ScoreWeights()
    for name in ScoreWeights.__dataclass_fields__:
        parser.add_argument(
            f"--weight-{name.replace('_', '-')}", type=int, default=getattr(weights, name)
        )
    parser.add_argument("--bind-workers", type=int, default=SchedulerConfig().bind_workers)
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
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args_with_config(build_parser(), argv)
    config = config_from_args(args)
    try:
        daemon = start_daemon(args, config.scheduler_name)
    except NoClusterConfig as error:
        print(f"vaclab-scheduler: {error}", file=sys.stderr)
        return 1
    scheduler = Scheduler(daemon.api, config, daemon.registry)
    return run_daemon(args, daemon, config.scheduler_name, scheduler)


def run() -> NoReturn:
    """Console-script entry point: ``main`` in a process that ends with its exit code."""
    exit_process(main())
