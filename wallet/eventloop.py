"""The event loop an HTTP process runs on, by ``WALLET_EVENT_LOOP`` (``wallet serve``, its workers)."""

from __future__ import annotations

import asyncio

EVENT_LOOPS = ("uvloop", "asyncio")


def new_event_loop(name: str) -> asyncio.AbstractEventLoop:
    """A new loop of the kind named: uvloop's (libuv) or the standard library's selector loop."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if name == "asyncio":
        return asyncio.new_event_loop()
    raise ValueError(f"unknown event loop {name!r}; one of {', '.join(EVENT_LOOPS)}")
