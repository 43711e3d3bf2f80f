"""``python -m localcluster`` / ``vaclab-localcluster``: build binaries, run a local cluster.

Subcommands:

- ``build [--kubernetes-version V] [--only etcd,kube-apiserver,...]``: build the missing
  control-plane binaries into the cache, one after the other;
- ``up [--nodes N] [--controller-manager] [--scheduler]``: start a control plane, install the
  CRDs, create N simulated nodes, print the kubeconfig, wait for Ctrl-C, tear down;
- ``demo [ARGS...]``: the end-to-end demo (``localcluster.demo``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

from localcluster import binaries


def _build(args: argparse.Namespace) -> int:
    only = args.only.split(",") if args.only else None
    started = time.monotonic()
    try:
        paths = binaries.ensure_binaries(only, args.kubernetes_version)
    except (binaries.BuildError, ValueError, FileNotFoundError) as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    for component, path in paths.items():
        # A KUBEBUILDER_ASSETS binary is whatever version was put there.
        built = binaries.locate(component, args.kubernetes_version).source == "cache"
        version = binaries.component_version(component, args.kubernetes_version) if built else ""
        print(f"{component} {version}: {path}" if version else f"{component}: {path}")
    print(f"done in {time.monotonic() - started:.1f}s")
    return 0


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _up(args: argparse.Namespace) -> int:
    from localcluster.controlplane import ControlPlane
    from localcluster.crds import install_crds
    from localcluster.nodes import create_simulated_nodes

    # SIGTERM (e.g. from a supervisor) tears down like Ctrl-C instead of killing Python
    # without running the cleanup.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    cp = ControlPlane(kubernetes_version=args.kubernetes_version)
    try:
        cp.start()
        print(f"control plane ready at {cp.server} in {cp.startup_seconds:.1f}s")
        with cp.api_client() as client:
            names = install_crds(client)
            print(f"CRDs installed: {', '.join(names)}")
            if args.controller_manager:
                seconds = cp.start_controller_manager()
                print(f"kube-controller-manager ready in {seconds:.1f}s")
            if args.scheduler:
                seconds = cp.start_kube_scheduler()
                print(f"kube-scheduler ready in {seconds:.1f}s")
            if args.nodes:
                started = time.monotonic()
                create_simulated_nodes(client, args.nodes)
                print(f"{args.nodes} simulated nodes in {time.monotonic() - started:.1f}s")
        print(f"logs: {cp.work_dir}")
        print(f"kubeconfig: {cp.kubeconfig_path}")
        print(f"export KUBECONFIG={cp.kubeconfig_path}")
        print("Ctrl-C to stop", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
    except binaries.MissingBinaryError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        cp.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from localcluster.demo import run

    logging.getLogger("localcluster").setLevel(logging.WARNING)
    return run(args.timeout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaclab-localcluster",
        description="A real kube-apiserver + etcd on loopback, for tests, demos, benchmarks.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="build the missing control-plane binaries")
    build.add_argument("--kubernetes-version", default=binaries.DEFAULT_KUBERNETES_VERSION)
    build.add_argument(
        "--only",
        metavar="COMPONENTS",
        help=f"comma-separated subset of {','.join(binaries.COMPONENTS)} (default: all)",
    )
    build.set_defaults(func=_build)

    up = sub.add_parser("up", help="run a local cluster until Ctrl-C")
    up.add_argument("--kubernetes-version", default=binaries.DEFAULT_KUBERNETES_VERSION)
    up.add_argument("--nodes", type=int, default=0, help="simulated nodes to create")
    up.add_argument(
        "--controller-manager",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run kube-controller-manager (default: yes)",
    )
    up.add_argument(
        "--scheduler",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run the stock kube-scheduler (default: no)",
    )
    up.set_defaults(func=_up)

    demo = sub.add_parser("demo", help="run the end-to-end demo")
    demo.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the pods (default 120)"
    )
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``vaclab-localcluster`` and ``python -m localcluster``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    code: int = args.func(args)
    return code
