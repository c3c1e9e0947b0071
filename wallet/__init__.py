"""Personal-budget wallet: payments for Finnish social-care personal budgets (henkilökohtainen budjetti)."""

__version__ = "0.1.0"
