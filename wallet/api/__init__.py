"""The HTTP API: an aiohttp application factory, middlewares and thin handlers."""
