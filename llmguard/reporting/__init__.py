"""The ledger read back: breakdowns, exports, HTML, alerts and the readiness check."""
