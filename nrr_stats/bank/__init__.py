"""The bank: SQLite by default, PostgreSQL for a bank shared by many agents."""

from nrr_stats.bank.connect import open_bank
from nrr_stats.bank.location import BankLocation, redact_url, resolve_bank
from nrr_stats.bank.store import Bank, utc_now

__all__ = ["Bank", "BankLocation", "open_bank", "redact_url", "resolve_bank", "utc_now"]
