"""Horus: copy-trading engine for Polymarket."""
