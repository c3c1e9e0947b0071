"""Sending SMS receipts: after every capture, refund and void, the client's phone (issue 22, item 5).

The receipt rows are written with the movement itself (a trigger on ``wallet_events``; see
``wallet/storage/sql/receipts.py``), so this only drains the outbox: claim a batch in a write, send
each claimed receipt after that commit (up to ``receipt_sends_at_once`` at a time, one client's in
order), mark it sent. The receipt goes to the client's own phone
only, never to a representative: it is the wallet's record on the phone the wallet belongs to, and
a representative follows the same movements in the history and the live events.
"""

from __future__ import annotations

import asyncio

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
        at_once = asyncio.Semaphore(settings.receipt_sends_at_once)
        sent = 0
        while True:
            claimed = await self.storage.claim_receipts(
                self.clock.now(),
                settings.receipt_lease_seconds,
                settings.receipt_attempts_max,
                settings.receipt_batch_max,
            )
            sent += await self._send_claimed(claimed, at_once)
            if len(claimed) < settings.receipt_batch_max:
                if sent:
                    log.info("receipts_sent", sent=sent)
                return sent

    async def _send_claimed(self, claimed: list[Record], at_once: asyncio.Semaphore) -> int:
        """Different clients' receipts side by side, their marks written together (one at a time,
        a busy writer marked one receipt a batch and the receipts fell behind the charges); each
        client's one after another, in the order of their movements, so a phone never shows a
        refund before its charge. A send holds its place until its mark is written, so a crash
        sends at most ``receipt_sends_at_once`` again."""
        by_client: dict[str, list[Record]] = {}
        for record in claimed:  # claimed in event order
            by_client.setdefault(record["client_id"], []).append(record)
        to_mark: asyncio.Queue[tuple[int, asyncio.Future[None]]] = asyncio.Queue()

        async def in_order(records: list[Record]) -> int:
            done = 0
            for record in records:
                async with at_once:
                    if not await self._send_receipt(record):
                        break  # the rest wait with it for the lease's end, to go again in order
                    marked = asyncio.get_running_loop().create_future()
                    to_mark.put_nowait((record["event_seq"], marked))
                    await marked
                done += 1
            return done

        async def mark() -> None:
            """One write for every receipt sent while the write before was under way."""
            while True:
                group = [await to_mark.get()]
                while not to_mark.empty():
                    group.append(to_mark.get_nowait())
                await self.storage.mark_receipts_sent([seq for seq, _ in group], self.clock.now())
                for _, marked in group:
                    if not marked.done():  # its sender was cancelled meanwhile (the service stopping)
                        marked.set_result(None)

        try:
            async with asyncio.TaskGroup() as group:
                marking = group.create_task(mark())
                counts = await asyncio.gather(*(group.create_task(in_order(each)) for each in by_client.values()))
                marking.cancel()  # every send's mark is written: it waits for the next
        except BaseExceptionGroup as failed:  # the storage's error (the marks not written)
            if (current := asyncio.current_task()) is not None and current.cancelling():
                raise asyncio.CancelledError from None  # stopping: an error on the way must not swallow it
            raise failed.exceptions[0] from None
        return sum(counts)

    async def _send_receipt(self, record: Record) -> bool:
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
            return False
        return True
