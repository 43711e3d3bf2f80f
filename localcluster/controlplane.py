"""A real etcd + kube-apiserver (and optionally kube-controller-manager, kube-scheduler) on
loopback, for tests, demos and benchmarks.

>>> with ControlPlane() as cp:                      # doctest: +SKIP
...     client = cp.api_client()
...     print(cp.server, cp.kubeconfig_path)

Contract:

- every component listens on a free ``127.0.0.1`` port and logs to ``<work_dir>/<name>.log``;
- :meth:`ControlPlane.start` returns once etcd answers ``/health`` and kube-apiserver
  answers ``/readyz`` with 200; if anything fails, every process started so far is stopped,
  the work dir is kept and the exception names the log and quotes its last 40 lines;
- :meth:`ControlPlane.stop` (idempotent, also registered with :mod:`atexit`) stops every
  process group (SIGTERM, then SIGKILL) and removes the work dir it created; children are
  also started with ``PR_SET_PDEATHSIG`` so that they die with the Python process;
- authentication is by client certificate (``admin``, group ``system:masters``) and by
  ServiceAccount tokens (TokenRequest works); authorization is RBAC.
"""

from __future__ import annotations

import atexit
import base64
import http.client
import json
import logging
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from kubernetes.client import ApiClient

from localcluster import binaries
from localcluster.kubeconfig import ClientCredentials, new_api_client, write_kubeconfig
from localcluster.pki import PKIPaths, generate_pki
from localcluster.process import ManagedProcess, free_port, pid_alive, wait_until

log = logging.getLogger(__name__)

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"

DISABLED_CONTROLLERS: tuple[str, ...] = ("node-lifecycle-controller",)
"""kube-controller-manager controllers that must not run against simulated nodes.

Simulated nodes have no kubelet: without heartbeats the node lifecycle controller would
mark them NotReady, taint them ``unreachable`` and evict their pods.
"""

DISABLED_ADMISSION_PLUGINS: tuple[str, ...] = ("TaintNodesByCondition",)
"""Admission plugins off by default.

``TaintNodesByCondition`` taints every new Node ``node.kubernetes.io/not-ready:NoSchedule``
and relies on the node lifecycle controller (disabled above) to lift the taint.
"""


ALWAYS_ALLOW_PATHS = "/healthz,/readyz,/livez,/metrics"
"""Paths kube-controller-manager and kube-scheduler serve without authentication.

They run without ``--authentication-kubeconfig``/``--authorization-kubeconfig`` (which would
need the apiserver's front-proxy CA): anonymous requests on their loopback-only secure port
may read health and Prometheus metrics, nothing else.
"""


WORK_DIR_PREFIX = "vaclab-cp-"
OWNER_FILE = "owner.pid"


def sweep_stale_work_dirs(parent: Path | None = None) -> list[Path]:
    """Remove temporary work dirs whose owner process is gone; return them.

    A Python process killed with SIGKILL (or an unhandled SIGTERM) cannot remove its work
    dir; its components die with it (``PR_SET_PDEATHSIG``), and the next control plane
    started on the machine deletes what they left. Dirs that were kept on purpose (failed
    start, ``keep_work_dir``) have no owner file and are left alone.
    """
    removed = []
    for candidate in Path(parent or tempfile.gettempdir()).glob(f"{WORK_DIR_PREFIX}*"):
        try:
            owner = int((candidate / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if owner != os.getpid() and not pid_alive(owner):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    if removed:
        log.info("removed %d stale control-plane dirs: %s", len(removed), removed)
    return removed


def _format_args(args: Mapping[str, str]) -> list[str]:
    return [f"--{key}={value}" for key, value in args.items()]


class ControlPlane:
    """etcd + kube-apiserver on loopback; a context manager. See the module docstring."""

    def __init__(
        self,
        *,
        kubernetes_version: str = binaries.DEFAULT_KUBERNETES_VERSION,
        binary_paths: Mapping[str, Path] | None = None,
        work_dir: Path | None = None,
        max_requests_inflight: int = 3000,
        max_mutating_requests_inflight: int = 1000,
        apiserver_args: Mapping[str, str] | None = None,
        etcd_args: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
        keep_work_dir: bool = False,
    ) -> None:
        """Configure, but do not start, a control plane.

        ``binary_paths`` overrides where a component's binary is taken from (default:
        :func:`localcluster.binaries.find_binary`). ``apiserver_args``/``etcd_args`` are
        merged over the defaults (``{"flag-name": "value"}``, no leading dashes). The work
        dir is a new temporary folder unless given; a given one is never deleted.
        """
        self.kubernetes_version = kubernetes_version
        self._binary_paths = dict(binary_paths or {})
        self._given_work_dir = work_dir
        self._keep_work_dir = keep_work_dir or bool(os.environ.get("VACLAB_KEEP_CONTROLPLANE_DIR"))
        self.max_requests_inflight = max_requests_inflight
        self.max_mutating_requests_inflight = max_mutating_requests_inflight
        self._apiserver_overrides = dict(apiserver_args or {})
        self._etcd_overrides = dict(etcd_args or {})
        self.start_timeout = start_timeout

        self._work_dir: Path | None = None
        self._pki: PKIPaths | None = None
        self._processes: dict[str, ManagedProcess] = {}
        self._ports: dict[str, int] = {}
        self._failed = False
        self._atexit_registered = False
        self.startup_seconds: float | None = None
        """Wall time of the last :meth:`start`, from the first process to ``/readyz``."""

    # ----------------------------------------------------------------------------- paths
    @property
    def work_dir(self) -> Path:
        """The folder holding certificates, etcd's data, kubeconfigs and logs."""
        if self._work_dir is None:
            raise RuntimeError("the control plane has not been started")
        return self._work_dir

    @property
    def pki(self) -> PKIPaths:
        if self._pki is None:
            raise RuntimeError("the control plane has not been started")
        return self._pki

    @property
    def apiserver_port(self) -> int:
        return self._ports["kube-apiserver"]

    @property
    def server(self) -> str:
        """The apiserver URL, ``https://127.0.0.1:<port>``."""
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self._ports['etcd-client']}"

    @property
    def kubeconfig_path(self) -> Path:
        """An admin (``system:masters``) kubeconfig for this control plane."""
        return self.work_dir / "admin.kubeconfig"

    @property
    def credentials(self) -> ClientCredentials:
        return ClientCredentials(
            server=self.server,
            ca_cert=self.pki.ca_cert,
            client_cert=self.pki.admin_cert,
            client_key=self.pki.admin_key,
        )

    @property
    def ports(self) -> dict[str, int]:
        """Every port allocated so far, by role (``etcd-client``, ``kube-apiserver``, ...)."""
        return dict(self._ports)

    def pids(self) -> dict[str, int]:
        """The pid of every component process currently running, by component name."""
        return {
            name: proc.pid
            for name, proc in self._processes.items()
            if proc.pid is not None and proc.running()
        }

    def log_path(self, component: str) -> Path:
        return self.work_dir / f"{component}.log"

    def api_client(self, *, pool_size: int = 32) -> ApiClient:
        """A new admin ``ApiClient``; close it (or use it as a context manager) when done."""
        return new_api_client(self.credentials, pool_size=pool_size)

    def _binary(self, component: str) -> Path:
        if component in self._binary_paths:
            return self._binary_paths[component]
        return binaries.find_binary(component, self.kubernetes_version)

    # ------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        """Start etcd and kube-apiserver and wait until both are ready. Returns ``self``.

        On failure everything started is stopped before the exception propagates.
        """
        if self._processes:
            raise RuntimeError("the control plane is already started")
        etcd_bin = self._binary(binaries.ETCD)
        apiserver_bin = self._binary(binaries.KUBE_APISERVER)
        self._failed = False
        if self._given_work_dir is not None:
            self._given_work_dir.mkdir(parents=True, exist_ok=True)
            self._work_dir = self._given_work_dir
        else:
            sweep_stale_work_dirs()
            self._work_dir = Path(tempfile.mkdtemp(prefix=WORK_DIR_PREFIX))
            (self._work_dir / OWNER_FILE).write_text(f"{os.getpid()}\n")
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        started = time.monotonic()
        try:
            self._pki = generate_pki(self.work_dir / "pki")
            self._ports = {
                "etcd-client": free_port(),
                "etcd-peer": free_port(),
                "kube-apiserver": free_port(),
            }
            etcd_seconds = self._start_etcd(etcd_bin)
            write_kubeconfig(self.kubeconfig_path, self.credentials)
            apiserver_seconds = self._start_apiserver(apiserver_bin)
        except BaseException:
            self._failed = True
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        log.info(
            "control plane ready at %s in %.1fs (etcd %.1fs, kube-apiserver %.1fs); dir %s",
            self.server,
            self.startup_seconds,
            etcd_seconds,
            apiserver_seconds,
            self.work_dir,
        )
        return self

    def stop(self) -> None:
        """Stop every component (newest first) and remove the work dir it created.

        Idempotent. The work dir is kept if a start failed (its logs explain why), if it was
        given to the constructor, or if ``keep_work_dir``/``$VACLAB_KEEP_CONTROLPLANE_DIR``.
        """
        for name in reversed(list(self._processes)):
            self._processes[name].stop()
        self._processes.clear()
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False
        work_dir, self._work_dir = self._work_dir, None
        if work_dir is None:
            return
        if self._failed or self._keep_work_dir or self._given_work_dir is not None:
            (work_dir / OWNER_FILE).unlink(missing_ok=True)  # kept: not for the sweeper
            log.info("control plane stopped; its files are kept in %s", work_dir)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)

    # ------------------------------------------------------------------------------ etcd
    def _start_etcd(self, binary: Path) -> float:
        peer = f"http://127.0.0.1:{self._ports['etcd-peer']}"
        args = {
            "name": "vaclab",
            "data-dir": str(self.work_dir / "etcd-data"),
            "listen-client-urls": self.etcd_url,
            "advertise-client-urls": self.etcd_url,
            "listen-peer-urls": peer,
            "initial-advertise-peer-urls": peer,
            "initial-cluster": f"vaclab={peer}",
            "unsafe-no-fsync": "true",
            "log-level": "warn",
        }
        args.update(self._etcd_overrides)
        proc = self._spawn("etcd", [str(binary), *_format_args(args)])
        return wait_until(
            self._etcd_healthy, timeout=self.start_timeout, process=proc, what="healthy"
        )

    def _etcd_request(self, method: str, path: str, body: Any = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self._ports["etcd-client"], timeout=10)
        try:
            payload = None if body is None else json.dumps(body)
            conn.request(method, path, body=payload)
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"etcd {method} {path}: HTTP {response.status}: {data!r}")
            return json.loads(data)
        finally:
            conn.close()

    def _etcd_healthy(self) -> bool:
        return bool(self._etcd_request("GET", "/health").get("health") == "true")

    def etcd_revision(self) -> int:
        """etcd's current revision (what resourceVersions are made of)."""
        key = base64.b64encode(b"/").decode()
        reply = self._etcd_request("POST", "/v3/kv/range", {"key": key, "count_only": True})
        return int(reply["header"]["revision"])

    def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision; returns that revision.

        Does what kube-apiserver's own compactor does every 5 minutes: record the revision
        under ``compact_rev_key`` (which the apiserver watches), then compact. Within about
        16 s (the watch cache's poll period) reads at an older resourceVersion fail with
        410 Gone (``Expired``). Watches are served from the apiserver's watch cache, whose
        window compaction does not shorten: :meth:`restart_apiserver` afterwards empties it,
        so that watches from an older resourceVersion get 410 too.
        """
        revision = self.etcd_revision()
        key = base64.b64encode(b"compact_rev_key").decode()
        value = base64.b64encode(str(revision).encode()).decode()
        self._etcd_request("POST", "/v3/kv/put", {"key": key, "value": value})
        self._etcd_request("POST", "/v3/kv/compaction", {"revision": revision, "physical": True})
        log.info("compacted etcd at revision %d", revision)
        return revision

    # -------------------------------------------------------------------- kube-apiserver
    def apiserver_args(self) -> dict[str, str]:
        """The kube-apiserver flags (defaults merged with the constructor's overrides)."""
        pki = self.pki
        args = {
            "etcd-servers": self.etcd_url,
            "cert-dir": str(self.work_dir / "apiserver-certs"),
            "tls-cert-file": str(pki.apiserver_cert),
            "tls-private-key-file": str(pki.apiserver_key),
            "client-ca-file": str(pki.ca_cert),
            "bind-address": "127.0.0.1",
            "advertise-address": "127.0.0.1",
            "secure-port": str(self.apiserver_port),
            "service-cluster-ip-range": SERVICE_CLUSTER_IP_RANGE,
            "allow-privileged": "true",
            "authorization-mode": "RBAC",
            "service-account-issuer": self.server,
            "service-account-key-file": str(pki.sa_public_key),
            "service-account-signing-key-file": str(pki.sa_private_key),
            "disable-admission-plugins": ",".join(DISABLED_ADMISSION_PLUGINS),
            # The `kubernetes` Service endpoint would be 127.0.0.1, which Endpoints reject.
            "endpoint-reconciler-type": "none",
            "max-requests-inflight": str(self.max_requests_inflight),
            "max-mutating-requests-inflight": str(self.max_mutating_requests_inflight),
        }
        args.update(self._apiserver_overrides)
        return args

    def _start_apiserver(self, binary: Path | None = None) -> float:
        binary = binary or self._binary(binaries.KUBE_APISERVER)
        proc = self._spawn("kube-apiserver", [str(binary), *_format_args(self.apiserver_args())])
        return wait_until(
            lambda: self._https_ok(self.apiserver_port, "/readyz", client_cert=True),
            timeout=self.start_timeout,
            process=proc,
            what="ready (/readyz)",
        )

    def restart_apiserver(self, *, down_seconds: float = 0.0) -> float:
        """Stop kube-apiserver and start it again on the same port and etcd, ``down_seconds``
        after it stopped.

        Returns the seconds until it was ready again. Clients see refused connections in
        between, and watches end: what a rolling apiserver upgrade looks like.
        """
        self._processes.pop("kube-apiserver").stop()
        time.sleep(down_seconds)
        try:
            return self._start_apiserver()
        except BaseException:
            self._failed = True
            raise

    def _ssl_context(self, *, client_cert: bool, verify: bool = True) -> ssl.SSLContext:
        if verify:
            ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if client_cert:
            ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return ctx

    def _https_ok(self, port: int, path: str, *, client_cert: bool, verify: bool = True) -> bool:
        ctx = self._ssl_context(client_cert=client_cert, verify=verify)
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                log.debug("GET %s on :%d: %d %s", path, port, response.status, body[:500])
            return response.status == 200
        finally:
            conn.close()

    # ------------------------------------------------- kube-controller-manager, scheduler
    def _write_component_kubeconfig(self, name: str) -> Path:
        return write_kubeconfig(self.work_dir / f"{name}.kubeconfig", self.credentials)

    def controller_manager_args(self) -> dict[str, str]:
        """The kube-controller-manager flags used by :meth:`start_controller_manager`."""
        kubeconfig = str(self.work_dir / "kube-controller-manager.kubeconfig")
        pki = self.pki
        return {
            "kubeconfig": kubeconfig,
            "leader-elect": "false",
            "bind-address": "127.0.0.1",
            "secure-port": str(self._ports["kube-controller-manager"]),
            "authorization-always-allow-paths": ALWAYS_ALLOW_PATHS,
            "cert-dir": str(self.work_dir / "kube-controller-manager-certs"),
            "service-account-private-key-file": str(pki.sa_private_key),
            "root-ca-file": str(pki.ca_cert),
            "cluster-signing-cert-file": str(pki.ca_cert),
            "cluster-signing-key-file": str(pki.ca_key),
            "use-service-account-credentials": "false",
            "service-cluster-ip-range": SERVICE_CLUSTER_IP_RANGE,
            "controllers": ",".join(["*", *(f"-{c}" for c in DISABLED_CONTROLLERS)]),
        }

    def start_controller_manager(self, extra_args: Mapping[str, str] | None = None) -> float:
        """Start kube-controller-manager (no-op if running); returns seconds to ``/healthz``.

        All controllers run except :data:`DISABLED_CONTROLLERS`, so Deployments,
        StatefulSets, Jobs, garbage collection, namespace deletion and default
        ServiceAccounts behave as in a real cluster.
        """
        return self._start_component(
            binaries.KUBE_CONTROLLER_MANAGER, self.controller_manager_args, extra_args
        )

    def scheduler_args(self) -> dict[str, str]:
        """The kube-scheduler flags used by :meth:`start_kube_scheduler`."""
        kubeconfig = str(self.work_dir / "kube-scheduler.kubeconfig")
        return {
            "kubeconfig": kubeconfig,
            "leader-elect": "false",
            "bind-address": "127.0.0.1",
            "secure-port": str(self._ports["kube-scheduler"]),
            "authorization-always-allow-paths": ALWAYS_ALLOW_PATHS,
            "cert-dir": str(self.work_dir / "kube-scheduler-certs"),
        }

    def start_kube_scheduler(self, extra_args: Mapping[str, str] | None = None) -> float:
        """Start the stock kube-scheduler (no-op if running); returns seconds to ``/healthz``.

        ``extra_args`` may carry e.g. ``{"config": "/path/to/KubeSchedulerConfiguration"}``.
        """
        return self._start_component(binaries.KUBE_SCHEDULER, self.scheduler_args, extra_args)

    def _start_component(
        self,
        name: str,
        default_args: Callable[[], dict[str, str]],
        extra_args: Mapping[str, str] | None,
    ) -> float:
        existing = self._processes.get(name)
        if existing is not None and existing.running():
            return 0.0
        self._processes.pop(name, None)
        binary = self._binary(name)
        self._ports.setdefault(name, free_port())
        self._write_component_kubeconfig(name)
        args = default_args()
        args.update(extra_args or {})
        proc = self._spawn(name, [str(binary), *_format_args(args)])
        try:
            seconds = wait_until(
                lambda: self._https_ok(
                    self._ports[name], "/healthz", client_cert=False, verify=False
                ),
                timeout=self.start_timeout,
                process=proc,
                what="healthy (/healthz)",
            )
        except BaseException:
            self._failed = True
            self._processes.pop(name).stop()
            raise
        log.info("%s ready in %.1fs", name, seconds)
        return seconds

    def stop_component(self, name: str) -> None:
        """Stop one component (e.g. ``kube-scheduler``) and leave the others running."""
        proc = self._processes.pop(name, None)
        if proc is not None:
            proc.stop()

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.log_path(name), cwd=self.work_dir)
        self._processes[name] = proc
        proc.start()
        return proc
