"""SQLite's process-wide configuration, for the writer process (``writer_process``) alone.

By default SQLite serializes every call on a connection with a mutex and counts every allocation
under another (memory statistics): about 60,000 instructions of a charge's 880,000 in the writer
(``python -m loadtests.unit_cost --callgrind``, docs/performance.md). The writer process has one
thread and opens its one connection with ``check_same_thread=True`` (Python refuses any other
thread), and nothing reads SQLite's memory statistics; so there it asks SQLite for neither:
``SQLITE_CONFIG_MULTITHREAD`` (a connection is used by one thread at a time: no mutex per call)
and ``SQLITE_CONFIG_MEMSTATUS`` off. Nothing about what is written, or when it is durable, changes.

``sqlite3_config`` may only be called while the library is shut down, so this runs before the
process opens any connection, and it applies only to the very library the ``sqlite3`` module has
loaded (``RTLD_NOLOAD``); anywhere it cannot, SQLite keeps its defaults.
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

    The ``sqlite3`` module binds int, float, str and bytes as they are; for any other value, None
    included, it looks for an adapter: in its table, then ``__adapt__`` and ``__conform__``, two failed
    attribute lookups whose AttributeErrors are built and dropped (~2,300 instructions a None, six
    Nones a charge). With an adapter for None in the table the search ends at once; it returns None,
    bound as NULL exactly as before. Process-wide (the table is the module's), so the writer process
    sets it for itself only."""
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
