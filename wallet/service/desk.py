"""The organizer's desk: finding clients and providers by what staff have in hand.

The query is read as what it looks like: a national identity number or a phone number is hashed
with the server's key and matched exactly (neither is ever compared, stored or logged in clear), a
business id is matched exactly, anything else is a part of a name. An empty query lists everyone,
newest first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wallet import validation
from wallet.ledger.errors import ValidationError
from wallet.ledger.parties import ProviderStatus
from wallet.service.core import NATIONAL_ID, PHONE, ServiceCore
from wallet.storage.port import ClientQuery, Page, ProviderQuery


def _parsed(parse: Callable[[Any], str], text: str) -> str | None:
    try:
        return parse(text)
    except ValidationError:
        return None


class DeskService(ServiceCore):
    def _query_text(self, query: str | None) -> str:
        text = (query or "").strip()
        limit = self.settings.desk_query_max_length
        if len(text) > limit or not text.isprintable():
            raise ValidationError("query", f"must be printable text of at most {limit} characters")
        return text

    async def search_clients(self, query: str | None, limit: int, before: int | None) -> Page:
        text = self._query_text(query)
        national_id = _parsed(validation.national_id, text) if text else None
        phone = _parsed(validation.phone, text) if text and national_id is None else None
        found = ClientQuery(
            name=text if text and national_id is None and phone is None else None,
            phone_hash=self.hasher.keyed(PHONE, phone) if phone else None,
            national_id_hash=self.hasher.keyed(NATIONAL_ID, national_id) if national_id else None,
        )
        page = await self.storage.search_clients(found, limit, before)
        data = []
        for client in page.data:
            shown = dict(client)
            shown["phone"] = self.phones.decrypt(shown.pop("phone_ciphertext"))
            data.append(shown)
        return Page(data, page.next_cursor)

    async def search_providers(self, query: str | None, status: str | None, limit: int, before: int | None) -> Page:
        text = self._query_text(query)
        if status is not None and status not in {s.value for s in ProviderStatus}:
            raise ValidationError("status", "must be one of " + ", ".join(s.value for s in ProviderStatus))
        business_id = _parsed(validation.business_id, text) if text else None
        found = ProviderQuery(
            name=text if text and business_id is None else None, business_id=business_id, status=status
        )
        return await self.storage.search_providers(found, limit, before)
