"""Run one ``wallet`` command and report its own peak memory: ``python -m loadtests.measured FILE ARGS...``.

Writes the process's peak resident set (``VmHWM`` from ``/proc/self/status``, KiB) to ``FILE`` when
the command ends. ``VmHWM`` belongs to this process image alone; ``ru_maxrss`` would not do: Linux
folds into it the resident set of the parent copied by ``fork`` before ``exec``, so a child of a
big parent would report the parent's size.
"""

from __future__ import annotations

import sys
from pathlib import Path


def peak_resident_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: list[str]) -> int:
    from wallet.cli import main as wallet

    report, arguments = Path(argv[0]), argv[1:]
    try:
        return wallet(arguments)
    finally:
        report.write_text(str(peak_resident_kib()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
