"""``vaclab-scheduler``: flags (or a YAML config file with the same names) and start-up."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
import yaml

from bandwidth.quantity import BandwidthValueError, parse_mbps
from bandwidth.request import AnnotationKeys, RequestPolicy
from kubeio.config import NoClusterConfig
from kubeio.daemon import add_common_flags, run_daemon, start_daemon
from scheduler.config import DEFAULT_SCHEDULER_NAME, SchedulerConfig, ScoreWeights
from scheduler.loop import Scheduler

log = structlog.get_logger("scheduler")

DEFAULT_KEYS = AnnotationKeys()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaclab-scheduler",
        description="Schedule pods that name this scheduler onto nodes with bandwidth to spare.",
    )
    add_common_flags(parser)
    parser.add_argument("--config", type=Path, help="YAML file with any of these flags as keys")
    parser.add_argument("--scheduler-name", default=DEFAULT_SCHEDULER_NAME)
    parser.add_argument("--egress-annotation", default=DEFAULT_KEYS.egress)
    parser.add_argument("--ingress-annotation", default=DEFAULT_KEYS.ingress)
    parser.add_argument("--link-local-annotation", default=DEFAULT_KEYS.link_local)
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


def _apply_config_file(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> None:
    """Values in ``--config`` become defaults, so flags on the command line still win."""
    early, _ = parser.parse_known_args(argv)
    if early.config is None:
        return
    try:
        loaded: Any = yaml.safe_load(early.config.read_text())
    except (OSError, yaml.YAMLError) as error:
        parser.error(f"cannot read --config {early.config}: {error}")
    if not isinstance(loaded, dict):
        parser.error(f"--config {early.config}: expected a mapping of flag names to values")
    known = {action.dest for action in parser._actions}
    defaults = {key.replace("-", "_"): value for key, value in loaded.items()}
    unknown = sorted(set(defaults) - known)
    if unknown:
        parser.error(f"--config {early.config}: unknown keys {', '.join(unknown)}")
    parser.set_defaults(**defaults)


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
            keys=AnnotationKeys(
                egress=args.egress_annotation,
                ingress=args.ingress_annotation,
                link_local=args.link_local_annotation,
            ),
            default_egress_mbps=default_egress,
            default_ingress_mbps=default_ingress,
        ),
        weights=weights,
        bind_workers=args.bind_workers,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    _apply_config_file(parser, argv)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    try:
        daemon = start_daemon(args, config.scheduler_name)
    except NoClusterConfig as error:
        print(f"vaclab-scheduler: {error}", file=sys.stderr)
        return 1
    scheduler = Scheduler(daemon.api, config, daemon.registry)
    return run_daemon(args, daemon, config.scheduler_name, scheduler)
