"""Sampling profile of the scheduler during a benchmark run, with py-spy (``make profile``).

py-spy attaches to the running scheduler process (``--nonblocking``: it reads the
process's memory without pausing it) and samples its Python stacks at ``RATE`` Hz while the
pods are placed — from ``Contender.mark`` until the last pod is bound. Only the thread
holding the GIL is sampled (``--gil``), so the samples are where Python code ran: py-spy's
other test of activity, the thread's state in the kernel, counts a thread that waits for a
core as running, and on a shared 2-core machine that put 40 % of the samples in
``SSLSocket.read`` of threads waiting for their turn. C code that releases the GIL (TLS,
socket I/O) is left out. It writes collapsed stacks (``.collapsed``,
one ``frame;frame;... count`` line per distinct stack, for ``flamegraph.pl`` or
speedscope.app); from them come a speedscope file (``.speedscope.json``) and a text summary
of the functions with the most samples, on the stack (total) and at its top (self).

py-spy costs CPU too (one core is shared by it, the scheduler and the apiserver on a
2-core machine): the figures of a profiled run are not for comparison.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RATE = 100
"""Samples per second."""


def parse_collapsed(text: str) -> Iterator[tuple[list[str], int]]:
    """(frames root first, samples) of each line of py-spy's raw output."""
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        yield ([frame for frame in stack.split(";") if frame], int(count))


def top_functions(text: str, top: int = 30) -> str:
    """The ``top`` functions by total and by self samples, as a text table."""
    total_samples = 0
    total: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, count in parse_collapsed(text):
        total_samples += count
        for frame in set(frames):  # a recursive function counts once per sample
            total[frame] += count
        if frames:
            own[frames[-1]] += count
    lines = [
        f"{total_samples} samples at {RATE} Hz ({total_samples / RATE:.1f} s holding the GIL)",
        "",
    ]
    for title, counter in (("by total (on the stack)", total), ("by self (at the top)", own)):
        lines += [f"Top {top} functions {title}:", f"{'total %':>8} {'self %':>7}  function"]
        for frame, _ in counter.most_common(top):
            share = 100 * total[frame] / max(1, total_samples)
            self_share = 100 * own[frame] / max(1, total_samples)
            lines.append(f"{share:8.1f} {self_share:7.1f}  {frame}")
        lines.append("")
    return "\n".join(lines)


def speedscope(text: str, name: str) -> dict[str, Any]:
    """The collapsed stacks as a speedscope "sampled" profile (one weighted sample per
    distinct stack)."""
    index: dict[str, int] = {}
    samples: list[list[int]] = []
    weights: list[int] = []
    for frames, count in parse_collapsed(text):
        samples.append([index.setdefault(frame, len(index)) for frame in frames])
        weights.append(count)
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "name": name,
        "exporter": "vaclab bench.profile",
        "activeProfileIndex": 0,
        "shared": {"frames": [{"name": frame} for frame in index]},
        "profiles": [
            {
                "type": "sampled",
                "name": name,
                "unit": "none",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        ],
    }


def py_spy() -> str:
    """The py-spy executable beside this Python (the venv's), else on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    return found


class Recording:
    """py-spy recording one process into ``<out>/<stem>.collapsed`` until :meth:`stop`."""

    def __init__(self, pid: int, out: Path, stem: str = "scheduler-profile") -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.collapsed = out / f"{stem}.collapsed"
        self.speedscope = out / f"{stem}.speedscope.json"
        self.summary = out / f"{stem}-top.txt"
        self._stem = stem
        self._log = (out / f"{stem}.log").open("wb")
        self._process = subprocess.Popen(
            [
                py_spy(),
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(RATE),
                "--format",
                "raw",
                "--nolineno",
                "--nonblocking",
                "--gil",
                "--output",
                str(self.collapsed),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def stop(self) -> list[Path]:
        """Stop sampling; write the speedscope file and the summary. Returns the files."""
        self._process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self._process.wait(60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()
        if not self.collapsed.exists():
            return []
        text = self.collapsed.read_text()
        self.speedscope.write_text(json.dumps(speedscope(text, self._stem)))
        self.summary.write_text(top_functions(text))
        return [self.collapsed, self.speedscope, self.summary]
