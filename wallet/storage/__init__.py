"""Storage adapters behind one port (``wallet.storage.port.Storage``)."""
