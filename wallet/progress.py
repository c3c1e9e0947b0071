"""Progress of long work on the command line: a bar on a terminal, plain lines otherwise.

On a terminal (``stream.isatty()``) one line is redrawn in place, at most ``REDRAW_PER_SECOND``
times a second; into a file or a pipe (cron, CI, ``docker logs``) a plain line is written every
``PLAIN_LINE_SECONDS`` and at the end, so logs stay readable and small.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

REDRAW_PER_SECOND = 10
PLAIN_LINE_SECONDS = 5.0
BAR_WIDTH = 30


class Progress:
    def __init__(
        self,
        label: str,
        unit: str,
        total: int | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.unit, self.total = label, unit, total
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty()
        self._clock = clock
        self.started = self._last = clock()
        self.done = 0

    def advance(self, count: int) -> None:
        self.update(self.done + count)

    def update(self, done: int) -> None:
        self.done = done
        now = self._clock()
        interval = 1 / REDRAW_PER_SECOND if self.terminal else PLAIN_LINE_SECONDS
        if now - self._last >= interval:
            self._last = now
            self._show(final=False)

    def finish(self) -> None:
        self._show(final=True)

    def line(self) -> str:
        elapsed = max(self._clock() - self.started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            share = min(self.done / self.total, 1.0)
            bar = "#" * round(share * BAR_WIDTH)
            return (
                f"{self.label} [{bar:<{BAR_WIDTH}}] {share:4.0%} {self.done:,}/{self.total:,} {self.unit}"
                f" {elapsed:5.1f} s {rate:,.0f}/s"
            )
        return f"{self.label}: {self.done:,} {self.unit} {elapsed:5.1f} s {rate:,.0f}/s"

    def _show(self, final: bool) -> None:
        if self.terminal:
            self.stream.write("\r\x1b[2K" + self.line() + ("\n" if final else ""))
        else:
            self.stream.write(self.line() + ("  done\n" if final else "\n"))
        self.stream.flush()
