"""SQLite's process-wide configuration, for the writer process (``writer_process``) alone.

The writer process has one thread and one connection, and nothing reads SQLite's memory statistics,
so it asks SQLite for neither its per-call mutex (``SQLITE_CONFIG_MULTITHREAD``) nor its allocation
counting (``SQLITE_CONFIG_MEMSTATUS`` off). ``sqlite3_config`` works only while the library is shut
down, so this runs before the process opens any connection; where it cannot, SQLite keeps its
defaults. Nothing about what is written, or when it is durable, changes.
"""

from __future__ import annotations

import ctypes
import os
import sqlite3
from typing import Any

# From sqlite3.h.
SQLITE_OK = 0
SQLITE_CONFIG_MULTITHREAD = 2
SQLITE_CONFIG_MEMSTATUS = 9
# The library's name as the ``_sqlite3`` extension links it (Debian, Ubuntu and most Linux).
LIBRARY_NAME = "libsqlite3.so.0"


def adapt_none_directly() -> None:
    """Bind ``None`` as NULL without the search for an adapter.

    For any value but int, float, str and bytes the ``sqlite3`` module searches for an adapter (its
    table, then two failed attribute lookups); with one for None in the table the search ends at once.
    Process-wide, so the writer process sets it for itself only."""
    sqlite3.register_adapter(type(None), _NONE)


_NONE: Any = {}.get  # a C function that gives None back for None: the cheapest adapter there is


def configure_for_one_thread() -> bool:
    """Turn off SQLite's per-call mutexes and memory statistics, before any connection is open.
    True when SQLite took both; False when it could not be asked (SQLite keeps its defaults)."""
    try:
        library = ctypes.CDLL(LIBRARY_NAME, mode=os.RTLD_NOLOAD | os.RTLD_NOW)  # only the one already loaded
    except OSError:
        return False
    library.sqlite3_libversion.restype = ctypes.c_char_p
    if library.sqlite3_libversion().decode() != sqlite3.sqlite_version:
        return False
    if library.sqlite3_shutdown() != SQLITE_OK:
        return False
    took = (
        library.sqlite3_config(SQLITE_CONFIG_MULTITHREAD) == SQLITE_OK
        and library.sqlite3_config(SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0)) == SQLITE_OK
    )
    return bool(library.sqlite3_initialize() == SQLITE_OK) and took
