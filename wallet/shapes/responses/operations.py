"""What the operations' routes answer: liveness and readiness."""

from __future__ import annotations

from typing import Literal

from msgspec import Struct


class Health(Struct):
    status: Literal["ok"]


class Check(Struct):
    status: Literal["ok", "failing"]
    detail: str


class Readiness(Struct):
    status: Literal["ready"]
    checks: dict[str, Check]
