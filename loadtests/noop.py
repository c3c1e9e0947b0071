"""A no-op aiohttp app: the HTTP ceiling the benchmark compares the wallet with.

Run as its own process, like ``wallet serve``: ``python -m loadtests.noop --port 8090``. Every
method and path answers a small JSON body at once, without reading the request body, without
middlewares and without an access log (``wallet serve`` runs without one too).
"""

from __future__ import annotations

import argparse

from aiohttp import web

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
    port = arguments.parse_args(argv).port
    web.run_app(create_app(), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
