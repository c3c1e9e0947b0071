"""``wallet.api.app.serve``, the loop ``wallet serve`` runs, in this process."""

from __future__ import annotations

import gc
import os
import signal

from tests.processes import free_port
from wallet.api.app import create_app, serve
from wallet.eventloop import new_event_loop
from wallet.settings import Settings


def test_serve_freezes_what_startup_built_before_it_accepts_a_connection(settings: Settings) -> None:
    """A full collection stops every request in flight while it scans the heap: what startup built
    (the app, its routes, the storage) is frozen first, so those collections never scan it."""
    app = create_app(settings, background_jobs=False)
    loop = new_event_loop("asyncio")
    seen: dict[str, bool | int] = {}

    def serving(message: str) -> None:
        seen["frozen"] = gc.get_freeze_count()
        # gc.get_objects() lists the collector's generations, never the frozen objects.
        seen["app collectable"] = any(each is app for each in gc.get_objects())
        loop.call_soon(os.kill, os.getpid(), signal.SIGINT)  # the runner's handler: a graceful exit

    gc.unfreeze()
    try:
        serve(app, loop=loop, host="127.0.0.1", port=free_port(), shutdown_timeout=5, announce=serving)
    finally:
        gc.unfreeze()  # the rest of the suite with an ordinary collector
    assert seen["app collectable"] is False
    assert seen["frozen"] > 0
