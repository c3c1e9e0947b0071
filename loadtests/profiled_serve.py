"""``wallet serve`` with cProfile on the event loop's thread, for ``loadtests.loopcost --cprofile``.

    python -m loadtests.profiled_serve --host 127.0.0.1 --port 8080 --output serve.pstats

The same application as ``wallet serve`` (settings from the environment, the same logging); the
profile covers only the main thread (the writer and pool threads are not in it) and is written
when the server stops (SIGTERM). cProfile slows Python calls, so read it for shares, not times.
"""

from __future__ import annotations

import argparse
import cProfile
import sys

from aiohttp import web


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.profiled_serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--output", required=True)
    arguments = parser.parse_args(argv)

    from wallet.api.app import create_app
    from wallet.logs import configure
    from wallet.settings import Settings

    settings = Settings.from_env()
    configure(settings.log_format, settings.log_level)
    profile = cProfile.Profile()
    profile.enable()
    try:
        web.run_app(
            create_app(settings),
            host=arguments.host,
            port=arguments.port,
            access_log=None,
            print=None,
            shutdown_timeout=settings.shutdown_timeout_seconds,
        )
    finally:
        profile.disable()
        profile.dump_stats(arguments.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
