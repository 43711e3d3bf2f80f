"""Child processes that cannot outlive their parent, and loopback ports.

Every :class:`ManagedProcess` runs in its own process group (so stopping it also stops
whatever it forked), logs stdout and stderr to a file, and on Linux is started with
``prctl(PR_SET_PDEATHSIG, SIGKILL)`` so that the kernel kills it if the Python process dies
without cleaning up (``kill -9``, an unhandled ``SIGTERM``). ``PR_SET_PDEATHSIG`` fires when
the *thread* that forked the child exits: start control planes from a long-lived thread
(the main thread, as pytest and the CLI do).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 40
_PR_SET_PDEATHSIG = 1


_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now (bind to port 0, read it),
    and that this process was not given before: the kernel may hand the same port to two
    binds in a row once the first is closed, and two components given one port (etcd's
    client and peer URLs, say) cannot both listen."""
    with _handed_out_lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port: int = sock.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a listening socket could be bound to ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def _pdeathsig_preexec(parent_pid: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to SIGKILL the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class ProcessStartError(RuntimeError):
    """A component exited or did not become ready; the message has its log's tail."""


class ManagedProcess:
    """One long-running binary: started in its own process group, logged to ``log_path``.

    :meth:`stop` is idempotent: SIGTERM to the group, wait ``grace`` seconds, then SIGKILL
    the group and reap the child.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def start(self) -> None:
        """Spawn the process (appending to its log). Raises if it is already running."""
        if self.running():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self._close_log()
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"--- starting: {' '.join(self.argv)}\n".encode())
        self._log_file.flush()
        log.debug("starting %s: %s", self.name, " ".join(self.argv))
        self._popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=_pdeathsig_preexec(os.getpid()),
        )

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def failure(self, what: str) -> ProcessStartError:
        """An exception for ``what`` went wrong, with the log path and its last lines."""
        return ProcessStartError(
            f"{self.name} {what}; log: {self.log_path}\n"
            f"--- last {LOG_TAIL_LINES} lines of {self.log_path.name} ---\n{tail(self.log_path)}"
        )

    def stop(self, grace: float = 10.0) -> None:
        """Terminate the process group; safe to call any number of times."""
        popen = self._popen
        if popen is not None:
            pgid = popen.pid  # start_new_session: the child leads its own group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s (pid %d) ignored SIGTERM for %.0fs: killing", self.name, pgid, grace
                )
            # Kill stragglers of the group even if the leader exited on SIGTERM.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            popen.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    process: ManagedProcess,
    what: str,
    interval: float = 0.05,
    max_interval: float = 0.5,
) -> float:
    """Poll ``check`` until it returns True; return the seconds it took.

    Fails fast with :class:`ProcessStartError` (log tail included) if ``process`` exits, and
    after ``timeout`` seconds. Exceptions raised by ``check`` count as "not yet".
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if not process.running():
            raise process.failure(f"exited with code {process.returncode()} before {what}")
        try:
            if check():
                return time.monotonic() - started
        except Exception as exc:  # a refused connection, a 500 while starting, ...
            log.debug("%s: not %s yet: %s", process.name, what, exc)
        if time.monotonic() >= deadline:
            raise process.failure(f"not {what} after {timeout:.0f}s")
        time.sleep(interval)
        interval = min(interval * 1.5, max_interval)
