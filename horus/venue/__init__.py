"""Venue adapters: the only code that knows a venue's wire formats (logs, API rows, order types)."""
