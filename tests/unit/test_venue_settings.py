"""D1: the venue settings. Paper is the default and self-contained (no real Gamma unless asked); live is only
ever an explicit setting."""

from __future__ import annotations

from horus.settings import GAMMA_URL, Settings


def test_paper_is_the_default_and_asks_no_real_gamma(monkeypatch):
    monkeypatch.delenv("HORUS_GAMMA_URL", raising=False)
    monkeypatch.delenv("HORUS_VENUE_MODE", raising=False)
    settings = Settings(_env_file=None)
    assert settings.venue_mode == "paper"
    assert settings.gamma_url == ""  # market metadata from the simulator (clob_url), never Polymarket's Gamma


def test_live_and_dry_run_ask_polymarkets_gamma_and_an_explicit_gamma_is_honoured(monkeypatch):
    monkeypatch.delenv("HORUS_GAMMA_URL", raising=False)
    assert Settings(_env_file=None, venue_mode="live").gamma_url == GAMMA_URL
    assert Settings(_env_file=None, venue_mode="dry-run").gamma_url == GAMMA_URL
    monkeypatch.setenv("HORUS_GAMMA_URL", "http://127.0.0.1:1234")
    assert Settings(_env_file=None).gamma_url == "http://127.0.0.1:1234"  # asked for: paper reads it
    monkeypatch.setenv("HORUS_GAMMA_URL", "")
    assert Settings(_env_file=None, venue_mode="live").gamma_url == ""  # empty: the CLOB only


def test_live_needs_the_explicit_setting(monkeypatch):
    monkeypatch.delenv("HORUS_VENUE_MODE", raising=False)
    assert Settings(_env_file=None).venue_mode != "live"
    monkeypatch.setenv("HORUS_VENUE_MODE", "live")
    assert Settings(_env_file=None).venue_mode == "live"
