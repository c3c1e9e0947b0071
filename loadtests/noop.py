"""A no-op aiohttp app: the HTTP ceiling the benchmark compares the wallet with.

Run as its own process, like ``wallet serve``: ``python -m loadtests.noop --port 8090``. Every
method and path answers a small JSON body at once, without reading the request body, without
middlewares and without an access log (``wallet serve`` runs without one too).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys

from aiohttp import web

from wallet.eventloop import EVENT_LOOPS, new_event_loop

BODY = b'{"status":"ok"}'


async def noop(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", noop)
    return app


def main(argv: list[str] | None = None) -> None:
    arguments = argparse.ArgumentParser(prog="python -m loadtests.noop", description=__doc__)
    arguments.add_argument("--port", type=int, default=8090)
    arguments.add_argument("--reuse-port", action="store_true", help="listen with SO_REUSEPORT")
    arguments.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        default="asyncio",
        help="as wallet serve's WALLET_EVENT_LOOP (the bench passes the service's)",
    )
    arguments.add_argument(
        "--processes",
        type=int,
        default=1,
        help="processes on the port (SO_REUSEPORT), as wallet serve's WALLET_WORKERS",
    )
    parsed = arguments.parse_args(argv)
    if parsed.processes > 1:  # the same shape as wallet serve's workers: this one waits, the others serve
        command = [
            sys.executable,
            "-m",
            "loadtests.noop",
            "--port",
            str(parsed.port),
            "--reuse-port",
            "--event-loop",
            parsed.event_loop,
        ]
        children = [subprocess.Popen(command) for _ in range(parsed.processes)]

        def stop_children(number: int, frame: object) -> None:
            for child in children:
                child.terminate()

        signal.signal(signal.SIGTERM, stop_children)
        for child in children:
            child.wait()
        return
    web.run_app(
        create_app(),
        loop=new_event_loop(parsed.event_loop),
        host="127.0.0.1",
        port=parsed.port,
        access_log=None,
        print=None,
        reuse_port=parsed.reuse_port,
    )


if __name__ == "__main__":
    main()
