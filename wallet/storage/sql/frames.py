"""The frames between a serving process and the writer process: a 4-byte length, then a pickle.

Requests are ``UnitCall``s (their factory's module-level name and arguments); answers are the
outcomes, encoded as a value, an ``OperationError``'s record, or a bug's name and message.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import struct
from datetime import UTC, datetime
from typing import Any

from wallet.ledger.charges import IdentityMethod
from wallet.ledger.errors import InvariantViolation, OperationError
from wallet.storage.port import REDUCERS, Written
from wallet.storage.sql.units import UnitCall

HEADER = struct.Struct("!I")


def utc_datetime(year: int, month: int, day: int, hour: int, minute: int, second: int, microsecond: int) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, UTC)


def _reduce_datetime(moment: datetime) -> tuple[Any, ...]:
    # Every unit carries "now": a UTC moment travels as its seven fields, cheaper to pickle and to
    # rebuild than pickle's own form of an aware datetime.
    if moment.tzinfo is UTC:
        return (
            utc_datetime,
            (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second, moment.microsecond),
        )
    return moment.__reduce_ex__(pickle.HIGHEST_PROTOCOL)  # type: ignore[return-value]


def _reduce_identity_method(method: IdentityMethod) -> tuple[Any, ...]:
    return (IdentityMethod, (method.value,))


# The classes that cross on every write by their own reducers, looked up by type before pickle falls
# back to ``object.__reduce_ex__`` (which would find and call the same ``__reduce__``, at a cost).
DISPATCH: dict[type, Any] = {
    **copyreg.dispatch_table,
    **REDUCERS,
    UnitCall: UnitCall.__reduce__,
    datetime: _reduce_datetime,
    IdentityMethod: _reduce_identity_method,
}


def frame(value: Any) -> bytes:
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = DISPATCH
    pickler.dump(value)
    framed = buffer.getbuffer()
    HEADER.pack_into(framed, 0, len(framed) - HEADER.size)
    return bytes(framed)


def read_frames(buffer: bytearray) -> list[Any]:
    """Take every whole frame off the front of ``buffer``."""
    values = []
    offset = 0
    size = len(buffer)
    while size - offset >= HEADER.size:
        (length,) = HEADER.unpack_from(buffer, offset)
        end = offset + HEADER.size + length
        if end > size:
            break
        values.append(pickle.loads(memoryview(buffer)[offset + HEADER.size : end]))
        offset = end
    del buffer[:offset]
    return values


# Outcomes over the socket: a value, an OperationError (as its record, the form idempotency keys
# keep it in), or any other failure (a bug) by name and message.


def encode_outcome(outcome: Written | BaseException) -> tuple[Any, ...]:
    if isinstance(outcome, Written):
        return ("value", outcome.value, outcome.replayed)
    if isinstance(outcome, OperationError):
        return ("error", outcome.to_record(), outcome.replayed)
    return ("failure", type(outcome).__name__, str(outcome))


class WriteFailed(RuntimeError):
    """A unit failed in the writer process for a reason that is a bug (shown as a 500)."""


def decode_outcome(encoded: tuple[Any, ...]) -> Written | BaseException:
    kind = encoded[0]
    if kind == "value":
        return Written(encoded[1], replayed=encoded[2])
    if kind == "error":
        error = OperationError.from_record(encoded[1])
        return error.as_replayed() if encoded[2] else error
    if encoded[1] == InvariantViolation.__name__:
        return InvariantViolation(encoded[2])
    return WriteFailed(f"{encoded[1]}: {encoded[2]}")
