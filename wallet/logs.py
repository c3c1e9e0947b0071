"""Structured logs: JSON lines in production, readable in development, a request id on each.

Never pass a phone number, national id, code or token to a log call.
"""

from __future__ import annotations

import logging
import sys

import structlog

# The lowest level configure() let through; until it runs, structlog's defaults write every level.
_minimum_level = logging.NOTSET


def enabled(level: int) -> bool:
    """Whether a log call at ``level`` writes a line. A filtered call is cheap but not free (the
    lazy logger proxy, the arguments): a per-request path checks this before preparing one."""
    return level >= _minimum_level


# Bound to every request's log lines as well (the request middleware starts each request afresh):
# with several HTTP workers, which one answered.
PROCESS_FIELDS: dict[str, object] = {}


def configure(log_format: str, level: str) -> None:
    global _minimum_level
    numeric = getattr(logging, level.upper())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if log_format == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,  # configured once per process, before any logging
    )
    _minimum_level = numeric
