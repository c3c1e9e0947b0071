"""The shapes of the HTTP API, declared once: request bodies (``requests``) and the objects the
responses carry (``responses``). The OpenAPI document's schemas are generated from them."""
