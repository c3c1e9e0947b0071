"""The domain: money, accounts, transactions, holds and the invariants that bind them.

Pure Python. Nothing here imports aiohttp, SQL drivers or jwt: the storage adapters and the HTTP
layer depend on this package, never the other way round.
"""
