"""Background sweeps every node runs: voiding expired holds and forgetting old idempotency keys."""

from __future__ import annotations

from datetime import timedelta

import structlog

from wallet.service.core import ServiceCore

log = structlog.get_logger(__name__)

HOLD_SWEEP_BATCH = 500
IDEMPOTENCY_PURGE_BATCH = 1_000
IDEMPOTENCY_PURGE_INTERVAL_SECONDS = 3_600


class Sweeps(ServiceCore):
    """Background jobs that keep the tables small; each works in bounded batches."""

    async def purge_idempotency_keys(self) -> int:
        """Forget keys older than the retention, a bounded batch per write."""
        now = self.clock.now()
        cutoff = now - timedelta(hours=self.settings.idempotency_retention_hours)
        total = 0
        while True:
            deleted = await self.storage.purge_idempotency_keys(cutoff, IDEMPOTENCY_PURGE_BATCH, now)
            total += deleted
            if deleted < IDEMPOTENCY_PURGE_BATCH:
                return total

    async def sweep_expired_holds(self) -> int:
        total = 0
        while True:
            voided = await self.storage.expire_pending(self.clock.now(), HOLD_SWEEP_BATCH)
            total += voided
            if voided < HOLD_SWEEP_BATCH:
                break
        if total:
            log.info("holds_expired", voided=total)
        return total
