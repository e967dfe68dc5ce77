"""The execute stage's machinery: ledger (prewrite, sign once), submission, reconciliation, and the
per-follower concurrent runner. The pure classification lives in horus.domain.execute."""
