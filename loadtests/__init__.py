"""Load tests: ``python -m loadtests.bench`` (wrk against the real service and a no-op aiohttp
app, side by side) and ``loadtests/locustfile.py`` (a realistic mix). See docs/performance.md."""
