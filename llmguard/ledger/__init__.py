"""What happened, kept: the crash-safe journal, the SQLite ledger and live metrics."""
