"""Everything a daemon process writes goes out in the one log format: a child process (the
hooks are process-wide) configures logging as the daemons do, then lets every kind of source
write — structlog, stdlib loggers of libraries, warnings, exceptions nobody caught in the main
thread, in another thread and in ``__del__``, and plain prints."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

NOISY_PROCESS = textwrap.dedent(
    """
    import gc, logging, sys, threading, warnings
    import structlog
    from kubeio.logs import configure_logging

    configure_logging("info", sys.argv[1])
    structlog.get_logger("scheduler").info("started", port=1)
    structlog.get_logger("scheduler").debug("hidden")
    logging.getLogger("urllib3.connectionpool").warning(
        "Retrying (%r) after connection broken by %r: %s", "Retry(total=2)", "refused", "/api"
    )
    logging.getLogger("urllib3.connectionpool").info("Starting new HTTPS connection (1)")
    try:
        {}["missing"]
    except KeyError:
        logging.getLogger("kubernetes.client").exception("request failed")
    warnings.warn("certificate not checked", UserWarning)

    def election():
        raise RuntimeError("lease lost")

    thread = threading.Thread(target=election, name="leader-election")
    thread.start()
    thread.join()

    class Leaky:
        def __del__(self):
            raise ValueError("in __del__")

    Leaky()
    gc.collect()
    print("printed by a library")
    sys.stderr.write("half a line, ")
    sys.stderr.write("then the rest\\n")
    raise SystemError("main thread gives up")
    """
)


def run_noisy(fmt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NOISY_PROCESS, fmt],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def parse_every_line(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        event = json.loads(line)  # fails the test on any line that is not JSON
        assert isinstance(event, dict), line
        events.append(event)
    return events


def test_json_every_line_of_both_streams_is_one_event_with_level_and_logger() -> None:
    done = run_noisy("json")
    assert done.returncode == 1  # the uncaught exception still ends the process as it would
    assert parse_every_line(done.stdout) == []
    events = parse_every_line(done.stderr)
    assert all({"event", "level", "logger", "timestamp"} <= set(e) for e in events), events
    by_event = {e["event"]: e for e in events}
    assert [e["event"] for e in events] == [
        "started",
        "Retrying ('Retry(total=2)') after connection broken by 'refused': /api",
        "request failed",
        "python_warning",
        "uncaught_exception",
        "unraisable_exception",
        "stray_output",
        "stray_output",
        "uncaught_exception",
    ]
    assert by_event["started"]["logger"] == "scheduler"
    retrying = events[1]
    assert (retrying["logger"], retrying["level"]) == ("urllib3.connectionpool", "warning")
    failed = by_event["request failed"]
    assert failed["level"] == "error" and "KeyError: 'missing'" in failed["exception"]
    warning = by_event["python_warning"]
    assert (warning["logger"], warning["category"], warning["message"]) == (
        "py.warnings",
        "UserWarning",
        "certificate not checked",
    )
    in_thread, in_main = (e for e in events if e["event"] == "uncaught_exception")
    assert in_thread["thread"] == "leader-election"
    assert in_thread["error"] == "RuntimeError: lease lost"
    assert in_thread["exception"].startswith("Traceback (most recent call last):")
    assert in_thread["exception"].rstrip().endswith("RuntimeError: lease lost")
    assert in_main["thread"] == "MainThread"
    assert in_main["error"] == "SystemError: main thread gives up"
    assert "ValueError: in __del__" in by_event["unraisable_exception"]["exception"]
    strays = [(e["stream"], e["line"]) for e in events if e["event"] == "stray_output"]
    assert strays == [("stdout", "printed by a library"), ("stderr", "half a line, then the rest")]


@pytest.mark.parametrize("fmt", ["console"])
def test_console_says_the_same_events_one_line_each(fmt: str) -> None:
    done = run_noisy(fmt)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    heads = [line for line in lines if line[:4].isdigit()]  # each event starts with its time
    assert len(heads) == 9, done.stderr
    assert "[warning  ] Retrying" in heads[1]
    assert "python_warning" in heads[3] and "uncaught_exception" in heads[4]
    # A traceback follows its event's line, as structlog's console renders it for a person.
    assert "RuntimeError: lease lost" in done.stderr
    assert not any(line.startswith(("WARNING:", "Exception in thread")) for line in lines)
