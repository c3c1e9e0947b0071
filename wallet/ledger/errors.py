"""The exception tree of the wallet.

    WalletError
    ├── OperationError            a result the caller handles; carries a stable machine ``code``
    │   ├── ValidationError       validation_error      bad input; names the field
    │   ├── NotFound              not_found
    │   ├── Conflict              conflict              the state forbids it (e.g. void a captured charge)
    │   ├── InsufficientFunds     insufficient_funds    not enough available on that category line
    │   ├── IdentityCheckFailed   identity_check_failed
    │   ├── CategoryNotAllowed    category_not_allowed  the category is not in the client's budget
    │   ├── ProviderNotApproved   provider_not_approved the provider (or this category for it) is not approved
    │   ├── RefundExceedsCapture  refund_exceeds_capture
    │   ├── NothingToSettle       nothing_to_settle     no unsettled captures or refunds up to the cut-off
    │   ├── UnreadableDocument    unreadable_document   an uploaded file that is not what it claims to be
    │   ├── UnsafeDocument        unsafe_document       XML with a DTD: entity expansion or external entities
    │   ├── IdempotencyKeyReuse   idempotency_key_reuse same key, other request
    │   ├── RateLimited           rate_limited          too many failed attempts; retry after ``retry_after_seconds``
    │   ├── Unauthorized          unauthorized
    │   ├── Forbidden             forbidden
    │   └── Unavailable           unavailable           overloaded or shutting down; retry later
    └── InvariantViolation        a bug: the write that found it is aborted, never a client error

Operating errors are values in disguise: they are raised, caught at the edge and rendered. An
``InvariantViolation`` must never be caught to carry on; it exists to stop a write.
"""

from __future__ import annotations

from typing import Any


class WalletError(Exception):
    """Root of every error the wallet raises on purpose."""


class OperationError(WalletError):
    code = "operation_error"
    # True when this refusal is the one kept with an Idempotency-Key, answered again for a retry.
    replayed = False

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, Any] = extra

    def as_replayed(self) -> OperationError:
        self.replayed = True
        return self

    def to_record(self) -> dict[str, Any]:
        """A JSON-able form, kept with an idempotency key so that a replay repeats it."""
        return {"code": self.code, "detail": self.detail, "extra": self.extra}

    @staticmethod
    def from_record(record: dict[str, Any]) -> OperationError:
        code, detail = record["code"], record["detail"]
        extra = dict(record.get("extra", {}))
        if code == ValidationError.code:
            field = extra.pop("field", "body")
            return ValidationError(field, detail.removeprefix(f"{field}: "), **extra)
        if code == RateLimited.code:
            return RateLimited(detail, int(extra.pop("retry_after_seconds", 60)), **extra)
        return _BY_CODE.get(code, OperationError)(detail, **extra)


class ValidationError(OperationError):
    code = "validation_error"

    def __init__(self, field: str, detail: str, **extra: Any) -> None:
        super().__init__(f"{field}: {detail}", field=field, **extra)
        self.field = field


class NotFound(OperationError):
    code = "not_found"


class Conflict(OperationError):
    code = "conflict"


class InsufficientFunds(OperationError):
    code = "insufficient_funds"


class IdentityCheckFailed(OperationError):
    code = "identity_check_failed"


class CategoryNotAllowed(OperationError):
    code = "category_not_allowed"


class ProviderNotApproved(OperationError):
    code = "provider_not_approved"


class RefundExceedsCapture(OperationError):
    code = "refund_exceeds_capture"


class NothingToSettle(OperationError):
    code = "nothing_to_settle"


class UnreadableDocument(OperationError):
    code = "unreadable_document"


class UnsafeDocument(OperationError):
    code = "unsafe_document"


class IdempotencyKeyReuse(OperationError):
    code = "idempotency_key_reuse"


class RateLimited(OperationError):
    code = "rate_limited"

    def __init__(self, detail: str, retry_after_seconds: int, **extra: Any) -> None:
        super().__init__(detail, retry_after_seconds=retry_after_seconds, **extra)
        self.retry_after_seconds = retry_after_seconds


class Unauthorized(OperationError):
    code = "unauthorized"


class Forbidden(OperationError):
    code = "forbidden"


class Unavailable(OperationError):
    code = "unavailable"

    def __init__(self, detail: str, retry_after_seconds: int = 1, **extra: Any) -> None:
        super().__init__(detail, retry_after_seconds=retry_after_seconds, **extra)
        self.retry_after_seconds = retry_after_seconds


class InvariantViolation(WalletError):
    """A broken invariant: a bug. The write that detects it is rolled back."""


_BY_CODE: dict[str, type[OperationError]] = {
    cls.code: cls
    for cls in (
        NotFound,
        Conflict,
        InsufficientFunds,
        IdentityCheckFailed,
        CategoryNotAllowed,
        ProviderNotApproved,
        RefundExceedsCapture,
        NothingToSettle,
        UnreadableDocument,
        UnsafeDocument,
        IdempotencyKeyReuse,
        Unauthorized,
        Forbidden,
        Unavailable,  # never kept with a key, but crosses from the writer process as a record
    )
}
