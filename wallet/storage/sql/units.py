"""Units of work: what the writer runs, and how a unit travels to the writer process.

A unit is a plain function of a ``Connection``; it runs in the writer's thread inside the
batch's transaction, in its own savepoint, from its first read to its last write without a pause.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from wallet.jsontext import encoder_once
from wallet.storage.port import Idempotency, Written
from wallet.storage.sql.connection import Connection

Unit = Callable[[Connection], Any]

# ``json.dumps(value, separators=(",", ":"))``, the encoder built once: how an idempotency key keeps
# an outcome, and how the bulk units pass a list as one parameter.
compact_json = encoder_once(json.JSONEncoder(separators=(",", ":")))


class UnitCall:
    """A unit of work that can also travel as data: the factory that made it and its arguments.

    Called, it runs the unit the factory makes (built on first call, in the writer); pickled, it is
    the factory's module-level name and the arguments, so that the writer process builds the same
    unit from the same values."""

    __slots__ = ("_unit", "args", "factory", "kwargs")

    def __init__(self, factory: Callable[..., UnitCall], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.factory = factory
        self.args = args
        self.kwargs = kwargs
        self._unit: Unit | None = None

    def __call__(self, connection: Connection) -> Any:
        unit = self._unit
        if unit is None:
            unit = self._unit = self.factory.__wrapped__(*self.args, **self.kwargs)  # type: ignore[attr-defined]
        return unit(connection)

    def __reduce__(self) -> tuple[Any, ...]:
        return (UnitCall, (self.factory, self.args, self.kwargs))

    def __repr__(self) -> str:
        return f"<unit {self.factory.__module__}.{self.factory.__qualname__}>"


def unit_of_work(factory: Callable[..., Unit]) -> Callable[..., UnitCall]:
    """Mark a module-level unit factory: its units can run in this process's writer thread or in the
    writer process alike. The arguments must pickle (plain values and dataclasses)."""

    @functools.wraps(factory)
    def describe(*args: Any, **kwargs: Any) -> UnitCall:
        return UnitCall(describe, args, kwargs)

    return describe


@unit_of_work
def stored(value: Any) -> Unit:
    """A unit that writes nothing but its value: an outcome kept with an idempotency key alone."""

    def unit(connection: Connection) -> Any:
        return value

    return unit


@dataclass
class Task:
    """A unit submitted to the writer, with what its caller waits on."""

    unit: Unit
    idempotency: Idempotency | None
    created_at: str
    future: asyncio.Future[Written] | None  # None in the writer process: answered over its socket
    loop: asyncio.AbstractEventLoop | None
    actor: str = "system"
    outcome: Written | BaseException | None = field(default=None)
    left_over: bool = False  # side by side: left by a batch for the next (its client another writer's)


RunOne = Callable[[Connection, Task], "Written | BaseException"]


class BatchRunner(Protocol):
    """Runs, together, units of one factory that stand side by side in a batch: the same outcome for
    each, in order, as running them one at a time would give, and the same rows."""

    def accepts(self, call: UnitCall) -> bool: ...

    def run(self, connection: Connection, tasks: list[Task], run_one: RunOne, ends_batch: bool = False) -> None:
        """Set every task's ``outcome``; ``run_one`` runs a task the ordinary way, in its savepoint.
        With ``ends_batch`` only the ``COMMIT`` follows: the runner may leave its writes to go with
        it (``Connection.defer``); if they fail there, the writer undoes the batch and runs it again
        one unit at a time."""

    def run_side_by_side(self, connection: Connection, tasks: list[Task], wait: bool = False) -> list[Task]:
        """Set the tasks' ``outcome``, in a transaction holding the write lock shared
        (``Dialect.side_by_side``): locks taken by the runner itself, in the order that dialect
        describes. The tasks left for the next batch (another writer holds what they need; none
        with ``wait``, which waits for it), without an outcome, returned. Raises
        ``NeedsWriteOrder`` for what only a transaction alone may do."""


class NeedsWriteOrder(Exception):
    """A batch run side by side met what it leaves to a transaction holding the write lock alone (a
    failed identity check, a lockout near, one key twice in the batch, a bug): the writer undoes the
    batch and runs it again that way."""


# Unit factories whose units may run in a transaction holding the write lock shared, beside other
# writers' (``Dialect.side_by_side``): each locks the rows it changes itself, never waits for a row
# a charge batch locks, and writes nothing that needs one global order (no audit entry, no new row
# numbered by ``seq``). Filled by the modules that define them (``receipts``).
SIDE_BY_SIDE: set[Callable[..., UnitCall]] = set()

# By unit factory: the runner that takes its units together (``charge_batch``: new charges).
# Filled by the module that defines the runner when it is imported (``charges`` imports it).
BATCH_RUNNERS: dict[Callable[..., UnitCall], BatchRunner] = {}
