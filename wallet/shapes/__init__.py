"""The shapes of the HTTP API, declared once: request bodies (``requests``) and the objects the
responses carry (``responses``), each a package with a module per role as ``wallet.service`` is split,
and the field types both share (``fields``). The OpenAPI document's schemas are generated from them."""
