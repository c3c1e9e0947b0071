"""Sending SMS receipts: after every capture, refund and void, the client's phone (issue 22, item 5).

The receipt rows are written with the movement itself (a trigger on ``wallet_events``; see
``wallet/storage/sql/receipts.py``), so this only drains the outbox: claim a batch in a write, send
each claimed receipt after that commit, mark it sent. The receipt goes to the client's own phone
only, never to a representative: it is the wallet's record on the phone the wallet belongs to, and
a representative follows the same movements in the history and the live events.
"""

from __future__ import annotations

import structlog

from wallet.ledger.receipts import Receipt, ReceiptItem, ReceiptKind, text
from wallet.service.core import ServiceCore
from wallet.storage.port import Record

log = structlog.get_logger(__name__)


class Receipts(ServiceCore):
    async def send_receipts(self) -> int:
        """Send every receipt waiting (claimable now); how many were sent. Safe to run anywhere at
        once: a receipt is claimed by one sender at a time."""
        settings = self.settings
        sent = 0
        while True:
            claimed = await self.storage.claim_receipts(
                self.clock.now(),
                settings.receipt_lease_seconds,
                settings.receipt_attempts_max,
                settings.receipt_batch_max,
            )
            for record in claimed:
                sent += await self._send_receipt(record)
            if len(claimed) < settings.receipt_batch_max:
                if sent:
                    log.info("receipts_sent", sent=sent)
                return sent

    async def _send_receipt(self, record: Record) -> int:
        kind = ReceiptKind(record["kind"])
        items = record["items"]
        receipt = Receipt(
            kind=kind,
            amount=record["amount"],
            provider_name=record["provider_name"],
            category_name=record["category_name"],
            available=record["available"],
            items=tuple(ReceiptItem(i["service_name"], i["unit"], i["quantity_hundredths"]) for i in items),
            own_share=sum(i["own_share"] for i in items) if kind is ReceiptKind.CAPTURE else 0,
        )
        try:
            await self.sms.send(self.phones.decrypt(record["phone_ciphertext"]), text(receipt))
        except Exception as error:  # the gateway's failure: claimed again once the lease ends
            log.warning("receipt_not_sent", event_seq=record["event_seq"], error=type(error).__name__)
            return 0
        await self.storage.mark_receipt_sent(record["event_seq"], self.clock.now())
        return 1
