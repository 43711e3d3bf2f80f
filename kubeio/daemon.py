"""What both daemons share at start-up: common flags, logging, the API connection, metrics,
health, and a stop signal wired to SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import signal
import threading
from dataclasses import dataclass
from types import FrameType

import structlog
from prometheus_client import CollectorRegistry, Counter

from kubeio.config import load_client_configuration
from kubeio.logs import LOG_FORMATS, LOG_LEVELS, configure_logging
from kubeio.rest import KubeApi
from kubeio.serving import HealthServer, serve_metrics


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, else in-cluster)"
    )
    parser.add_argument("--context", help="kubeconfig context to use")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="console")
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
    parser.add_argument("--kube-api-qps-pool", type=int, default=32, help=argparse.SUPPRESS)


@dataclass
class DaemonContext:
    api: KubeApi
    registry: CollectorRegistry
    health: HealthServer | None
    stop: threading.Event
    metrics_port: int | None


def start_daemon(args: argparse.Namespace, component: str) -> DaemonContext:
    """Configure logs, connect, start metrics and health servers, and trap stop signals."""
    configure_logging(args.log_level, args.log_format)
    registry = CollectorRegistry()
    requests = Counter(
        "vaclab_api_requests_total",
        "Requests sent to the Kubernetes API, by verb, resource and HTTP status (0: no answer).",
        ["component", "verb", "resource", "code"],
        registry=registry,
    )

    def observe(verb: str, resource: str, status: int) -> None:
        requests.labels(component, verb, resource, str(status)).inc()

    configuration = load_client_configuration(
        args.kubeconfig, context=args.context, pool_size=args.kube_api_qps_pool
    )
    api = KubeApi(configuration, user_agent=component, observe=observe)
    metrics_port = None
    if args.metrics_bind_address != "0":
        metrics_port = serve_metrics(args.metrics_bind_address, registry)
    health = None
    if args.health_probe_bind_address != "0":
        health = HealthServer(args.health_probe_bind_address)
        health.start()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        structlog.get_logger(component).info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    structlog.get_logger(component).info(
        "started", server=api.host, metrics_port=metrics_port, health=bool(health)
    )
    return DaemonContext(api, registry, health, stop, metrics_port)
