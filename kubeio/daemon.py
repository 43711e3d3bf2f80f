"""What both daemons share at start-up: common flags, logging, the API connection, metrics,
health, and a stop signal wired to SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, Protocol

import structlog
import yaml
from prometheus_client import CollectorRegistry

from kubeio.config import load_client_configuration, log_tls_verification
from kubeio.durations import parse_duration
from kubeio.leader import LeaderElector, default_identity, default_lease_namespace
from kubeio.liveness import Check
from kubeio.logs import LOG_FORMATS, LOG_LEVELS, configure_logging
from kubeio.metrics import DaemonMetrics
from kubeio.rest import KubeApi
from kubeio.serving import HealthServer, serve_metrics


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help="YAML file of flag values, keyed by flag name without dashes; flags given on the "
        "command line win",
    )
    parser.add_argument(
        "--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, else in-cluster)"
    )
    parser.add_argument(
        "--context", help="kubeconfig context to use (default: the current context)"
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="the least severe events logged; libraries log warnings and above (default info)",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="console",
        help="json: one JSON object per line, for a log pipeline; console: one readable line "
        "per event (default console)",
    )
    parser.add_argument(
        "--metrics-bind-address",
        default=":8080",
        help="where /metrics is served; '0' turns it off (default :8080)",
    )
    parser.add_argument(
        "--health-probe-bind-address",
        default=":8081",
        help="where /healthz and /readyz are served; '0' turns it off (default :8081)",
    )
    parser.add_argument(
        "--kube-api-connections",
        type=int,
        default=64,
        help="HTTP connections kept open to the apiserver (default 64)",
    )
    election = parser.add_argument_group("leader election")
    election.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="hold a Lease before scheduling or writing, so replicas can stand by "
        "(default off; the Helm chart turns it on)",
    )
    election.add_argument(
        "--leader-elect-lease-duration",
        type=parse_duration,
        default=15.0,
        help="how long standby replicas wait after the last renewal before taking the Lease "
        "(default 15s)",
    )
    election.add_argument(
        "--leader-elect-renew-deadline",
        type=parse_duration,
        default=10.0,
        help="how long the leader keeps trying to renew before it stops leading and exits "
        "(default 10s)",
    )
    election.add_argument(
        "--leader-elect-retry-period",
        type=parse_duration,
        default=2.0,
        help="time between attempts to acquire or renew the Lease (default 2s)",
    )
    election.add_argument("--leader-elect-resource-name", help="Lease name (default: component)")
    election.add_argument(
        "--leader-elect-resource-namespace",
        default=None,
        help="Lease namespace (default: $POD_NAMESPACE, the service account's, else default)",
    )


class Worker(Protocol):
    """What a daemon runs: caches that every replica keeps, work that only the leader does."""

    def start(self) -> None:
        """Start the watch caches; called on every replica, leader or not."""

    def readiness(self) -> tuple[bool, str]:
        """Ready when the caches are synced; the detail says what is missing."""

    def liveness(self) -> Sequence[Check]:
        """One check per vital loop (``kubeio.liveness``), for ``/healthz``."""

    def run(self, stop: threading.Event) -> None:
        """Do the work until ``stop`` is set; called only while leading."""

    def close(self) -> None:
        """Stop caches and workers; called once at the end."""


def parse_args_with_config(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """Parse ``argv``; the ``--config`` file's entries become defaults first."""
    first, _ = parser.parse_known_args(argv)
    if first.config is not None:
        try:
            values = yaml.safe_load(first.config.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            parser.error(f"cannot read --config {first.config}: {error}")
        if not isinstance(values, Mapping):
            parser.error(f"{first.config}: expected a mapping of setting names to values")
        parser.set_defaults(**_config_defaults(parser, first.config, values))
    return parser.parse_args(argv)


def _config_defaults(
    parser: argparse.ArgumentParser, path: Path, values: Mapping[str, Any]
) -> dict[str, Any]:
    """Config entries as parser defaults. Strings go through argparse's own type conversion
    and checks; on/off flags take a YAML boolean."""
    actions = {
        option.lstrip("-"): action
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    }
    defaults: dict[str, Any] = {}
    for key, value in values.items():
        name = str(key).replace("_", "-")
        action = actions.get(name)
        if action is None or name in ("config", "help"):
            parser.error(f"{path}: unknown setting {key!r}")
        if isinstance(action, argparse.BooleanOptionalAction):
            if not isinstance(value, bool):
                parser.error(f"{path}: setting {key!r} must be true or false")
            defaults[action.dest] = value
            continue
        if isinstance(value, Mapping | list) or value is None:
            parser.error(f"{path}: setting {key!r} must be a single value")
        defaults[action.dest] = str(value).lower() if isinstance(value, bool) else str(value)
    return defaults


class CannotServe(RuntimeError):
    """A metrics or health address that cannot be served; the message names the flag."""


@dataclass
class DaemonContext:
    api: KubeApi
    registry: CollectorRegistry
    health: HealthServer | None
    stop: threading.Event
    metrics_port: int | None
    metrics: DaemonMetrics


@contextlib.contextmanager
def _serving(flag: str, address: str) -> Iterator[None]:
    """Turn a busy or malformed address into one ``CannotServe`` line naming ``flag``."""
    try:
        yield
    except OSError as error:
        raise CannotServe(f"{flag}={address}: {error.strerror or error}") from error
    except ValueError as error:
        raise CannotServe(f"{flag}={address}: not HOST:PORT ({error})") from error


def start_daemon(args: argparse.Namespace, component: str) -> DaemonContext:
    """Configure logs, connect, start metrics and health servers, and trap stop signals."""
    configure_logging(args.log_level, args.log_format)
    registry = CollectorRegistry()
    metrics = DaemonMetrics(registry, component)
    configuration = load_client_configuration(
        args.kubeconfig, context=args.context, pool_size=args.kube_api_connections
    )
    log_tls_verification(configuration, component)
    api = KubeApi(configuration, user_agent=component, observe=metrics.observe_request)
    metrics_port = None
    if args.metrics_bind_address != "0":
        with _serving("--metrics-bind-address", args.metrics_bind_address):
            metrics_port = serve_metrics(args.metrics_bind_address, registry)
    health = None
    if args.health_probe_bind_address != "0":
        with _serving("--health-probe-bind-address", args.health_probe_bind_address):
            health = HealthServer(args.health_probe_bind_address)
        health.start()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        structlog.get_logger(component).info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    structlog.get_logger(component).info(
        "started",
        server=api.host,
        metrics_port=metrics_port,
        health=bool(health),
        health_port=health.port if health is not None else None,
    )
    return DaemonContext(api, registry, health, stop, metrics_port, metrics)


def run_daemon(
    args: argparse.Namespace, context: DaemonContext, component: str, worker: Worker
) -> int:
    """Start the worker's caches, wait for leadership if asked, work until stopped.

    Returns the exit code: 1 when leadership was lost (the process should restart), else 0.
    With leader election every write of the daemon passes the elector's fence
    (``kubeio.leader``), and the election is one of the loops ``/healthz`` watches.
    """
    log = structlog.get_logger(component)
    elector: LeaderElector | None = None
    if args.leader_elect:
        elector = LeaderElector(
            context.api,
            lease_name=args.leader_elect_resource_name or component,
            lease_namespace=args.leader_elect_resource_namespace or default_lease_namespace(),
            identity=default_identity(),
            lease_duration=args.leader_elect_lease_duration,
            renew_deadline=args.leader_elect_renew_deadline,
            retry_period=args.leader_elect_retry_period,
            on_lost=context.stop.set,
        )
        context.api.set_write_fence(elector.write_allowance)
    if context.health is not None:
        context.health.add_readiness_check("caches", worker.readiness)
        for check in worker.liveness():
            context.health.add_liveness_check(check)
        if elector is not None:
            context.health.add_liveness_check(elector.heartbeat)
    worker.start()
    try:
        if elector is not None:
            elector.start()
            while not context.stop.is_set() and not elector.leading.wait(0.2):
                pass
        if not context.stop.is_set():
            context.metrics.set_leading(True)
            worker.run(context.stop)
    finally:
        context.metrics.set_leading(False)
        if context.health is not None:
            context.health.stopping()
        worker.close()
        if elector is not None:
            elector.stop()
        context.api.close()
        if context.health is not None:
            context.health.stop()
    lost = elector is not None and elector.lost.is_set()
    log.info("stopped", lost_leadership=lost)
    return 1 if lost else 0


def exit_process(code: int) -> NoReturn:
    """End a daemon after its orderly shutdown, without interpreter finalisation.

    Threads that cannot be stopped promptly (a watch read blocked in TLS) may still write to
    stderr; finalising the interpreter while
    one holds the stream's lock aborts the process with SIGABRT (seen once in 46 runs). The
    daemon has nothing left to flush but the standard streams.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
