"""Decoding a request body into its shape: strict types (a JSON ``true`` or ``1.0`` is no amount), a
null member read as absent, and msgspec's refusals as a ``ValidationError`` naming the field as the
caller wrote it (``lines[0].monthly_amount``)."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from msgspec import Struct

from wallet import validation
from wallet.ledger.errors import ValidationError

Shape = TypeVar("Shape", bound=Struct)


def decode(shape: type[Shape], body: Any) -> Shape:
    """``body`` (parsed JSON) as ``shape``. A member that is null counts as absent, as it always has."""
    try:
        return msgspec.convert(_prepared(body, ""), shape, strict=True)
    except msgspec.ValidationError as error:
        raise _refusal(str(error)) from None


def _prepared(value: Any, path: str) -> Any:
    """``value`` without its null members; a lone surrogate (which msgspec cannot even compare) is
    refused naming its field, and a member named with one is ignored like any other unknown member."""
    if isinstance(value, str):
        if not value.isascii() and not _encodable(value):
            raise ValidationError(path or "body", "must not contain control or bidirectional formatting characters")
        return value
    if isinstance(value, dict):
        return {
            key: _prepared(item, f"{path}.{key}" if path else key)
            for key, item in value.items()
            if item is not None and (key.isascii() or _encodable(key))
        }
    if isinstance(value, list):
        return [_prepared(item, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


_AT = re.compile(r" - at `\$(?P<path>.*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>.+)`$")


def _refusal(message: str) -> ValidationError:
    """msgspec's ``Expected `int`, got `bool` - at `$.lines[0].monthly_amount``` as the field it names."""
    at = _AT.search(message)
    path, detail = (at["path"], message[: at.start()]) if at else ("", message)
    missing = _MISSING.match(detail)
    if missing:
        path, detail = f"{path}.{missing['name']}", "is required"
    elif detail.startswith("Invalid"):  # "Invalid enum value '...'": never the caller's value back
        detail = "is not one of the values it takes"
    elif not path:
        detail = "must be a JSON object"
    return ValidationError(path.lstrip(".") or "body", detail)


def optional_text(value: str | None, field: str, max_length: int) -> str | None:
    return None if value is None else validation.text(value, field, max_length, required=False) or None
