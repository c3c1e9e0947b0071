"""Opaque identifiers: a short type prefix, the time in milliseconds, then 96 random bits.

The time comes first so that new ids sort after older ones: an id index grows at its right edge
instead of dirtying a random page per insert, which is most of what a commit writes. Nothing may
parse an id; the time in it is not a creation time to rely on.

The random bits come from ``os.urandom``, a block of ``RANDOM_BLOCK_IDS`` ids at a time. A forked
child forgets its parent's unused values, so two processes never hand out the same bits.
"""

from __future__ import annotations

import os
import time
from collections import deque

RANDOM_BYTES = 12  # 96 bits: unguessable
RANDOM_BLOCK_IDS = 256

# Random parts not handed out yet. ``popleft`` is atomic: a value goes to one caller only, in
# whichever thread; two threads refilling at once only add more fresh values.
_unused: deque[str] = deque()


def _refill() -> None:
    block = os.urandom(RANDOM_BYTES * RANDOM_BLOCK_IDS).hex()
    size = RANDOM_BYTES * 2
    _unused.extend(block[start : start + size] for start in range(0, len(block), size))


os.register_at_fork(after_in_child=_unused.clear)


def random_hex() -> str:
    """``RANDOM_BYTES`` bytes from the OS, in hex; each handed out once."""
    while True:
        try:
            return _unused.popleft()
        except IndexError:
            _refill()


def new_id(prefix: str) -> str:
    global _last_millisecond
    milliseconds = time.time_ns() // 1_000_000
    last = _last_millisecond  # one tuple, read once: safe beside another thread's calls
    if last[0] != milliseconds:  # a batch of charges takes dozens of ids in one millisecond
        last = _last_millisecond = (milliseconds, f"{milliseconds:012x}")
    return f"{prefix}_{last[1]}{random_hex()}"


_last_millisecond: tuple[int, str] = (-1, "")  # the time part of the latest id, written out
