"""One log format for everything a daemon writes: JSON in the cluster, a console line locally.

``configure_logging`` makes structlog the one writer of standard error, and routes through it
everything else that would write there by itself::

    structlog loggers ─────────────────────────────────┐
    stdlib logging (urllib3, kubernetes, ...) ─────────┤  processors ──► renderer ──► stderr
    Python warnings (warnings.showwarning) ────────────┤  (level, logger, timestamp,   one line
    uncaught exceptions: sys / threading / unraisable ─┤   exception as a field)      per event
    anything else printed to stdout or stderr ─────────┘

Every event carries ``level`` and ``logger`` (the stdlib logger's name for library records,
``py.warnings`` for warnings); an exception's traceback is the ``exception`` field, so under
``--log-format json`` a traceback is one JSON line, never a block of raw text. Text printed
straight to ``sys.stdout`` or ``sys.stderr`` by a library is a last resort: each line becomes a
``stray_output`` event naming the stream. Lines go out whole (one write under one lock), so two
threads never interleave inside a line.

Libraries log at ``warning`` and above whatever ``--log-level`` says: their debug and info
records (urllib3's connection chatter) are not the daemons' business.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import warnings
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, TextIO

import structlog

LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
LIBRARY_LEVEL = logging.WARNING

EventDict = MutableMapping[str, Any]


class _NamedWriteLogger(structlog.WriteLogger):
    """structlog's line writer (one write per line, under the stream's lock), with the name the
    module asked for in ``structlog.get_logger(name)``."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _LoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedWriteLogger:
        return _NamedWriteLogger(self._file, str(args[0]) if args else "")


def _add_logger_name(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    name = record.name if record is not None else getattr(logger, "name", "")
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


class _StructlogHandler(logging.Handler):
    """Stdlib records rendered by structlog and written by the same line writer."""

    def __init__(self, writer: structlog.WriteLogger, formatter: logging.Formatter) -> None:
        super().__init__()
        self._writer = writer
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._writer.msg(self.format(record))
        except Exception:
            self.handleError(record)


class _LineStream(io.TextIOBase):
    """A text stream whose every complete line becomes a ``stray_output`` event."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._pending = ""
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"<{self._name} as log events>"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            line, self._pending = self._pending, ""
        if line:
            self._emit(line)

    def _emit(self, line: str) -> None:
        if line.strip():
            structlog.get_logger("stray_output").warning(
                "stray_output", stream=self._name, line=line
            )


def _log_uncaught(
    event: str,
    exc_type: type[BaseException],
    exc_value: BaseException | None,
    exc_traceback: TracebackType | None,
    **fields: Any,
) -> None:
    if exc_value is None:
        exc_value = exc_type()
    structlog.get_logger("uncaught").error(
        event,
        error=f"{exc_type.__name__}: {exc_value}",
        exc_info=(exc_type, exc_value, exc_traceback),
        **fields,
    )


def _excepthook(
    exc_type: type[BaseException],
    exc_value: BaseException,
    exc_traceback: TracebackType | None,
) -> None:
    _log_uncaught("uncaught_exception", exc_type, exc_value, exc_traceback, thread="MainThread")


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if issubclass(args.exc_type, SystemExit):
        return  # the thread chose to end, as the default hook treats it
    thread = args.thread.name if args.thread is not None else "?"
    _log_uncaught(
        "uncaught_exception", args.exc_type, args.exc_value, args.exc_traceback, thread=thread
    )


def _unraisablehook(unraisable: Any) -> None:
    try:
        about = repr(unraisable.object)
    except Exception:
        about = "<unrepresentable object>"
    _log_uncaught(
        "unraisable_exception",
        unraisable.exc_type,
        unraisable.exc_value,
        unraisable.exc_traceback,
        message=unraisable.err_msg or "Exception ignored in",
        object=about,
    )


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    structlog.get_logger("py.warnings").warning(
        "python_warning",
        category=category.__name__,
        message=str(message),
        location=f"{filename}:{lineno}",
    )


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    """Route every log line of the process through structlog, rendered as ``fmt``."""
    numeric = logging.getLevelName(level.upper())
    stream = sys.__stderr__ or sys.stderr
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if fmt == "json":
        shared.append(structlog.processors.format_exc_info)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_LoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_StructlogHandler(structlog.WriteLogger(stream), formatter))
    root.setLevel(max(numeric, LIBRARY_LEVEL))
    warnings.showwarning = _show_warning
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    sys.unraisablehook = _unraisablehook
    sys.stdout = _LineStream("stdout")
    sys.stderr = _LineStream("stderr")
