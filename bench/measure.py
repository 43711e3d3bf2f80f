"""Process and API measurements for the benchmark: CPU seconds, peak RSS, Prometheus scrapes."""

from __future__ import annotations

import os
import ssl
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def io_bytes(pid: int, tid: int | None = None) -> tuple[int, int]:
    """Bytes a process (or one of its threads) has read and written through read/write
    system calls: ``rchar`` and ``wchar`` of /proc/<pid>[/task/<tid>]/io.

    Go's network code and OpenSSL's socket BIO both use read and write, so for a client of
    the apiserver (always TLS here) these are the bytes it received and sent on the wire,
    with no proxy in the way; its log writes and file reads are in them too. Python's plain
    ``socket.send``/``recv`` go through other calls and are not counted (so a scrape of a
    Python process's plain-HTTP /metrics is not either)."""
    path = Path(f"/proc/{pid}/io") if tid is None else Path(f"/proc/{pid}/task/{tid}/io")
    counters = dict(line.split(": ", 1) for line in path.read_text().splitlines())
    return int(counters["rchar"]), int(counters["wchar"])


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scrape_samples(
    url: str, metric: str, *, client_cert: tuple[Path, Path] | None = None
) -> list[tuple[dict[str, str], float]]:
    """Every sample of ``metric`` at a /metrics URL as (labels, value); TLS not verified
    (loopback). ``client_cert`` (certificate, key) for endpoints that want one (kube-apiserver)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        context.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        text = response.read().decode()
    return [
        (dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == metric
    ]


def scrape_sum(url: str, metric: str) -> float:
    """Sum of every sample of ``metric`` at a /metrics URL (TLS not verified: loopback)."""
    return sum(value for _, value in scrape_samples(url, metric))
