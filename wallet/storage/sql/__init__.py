"""The units of work both databases run, written once against ``connection.Connection``."""
