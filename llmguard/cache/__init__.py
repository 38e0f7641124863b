"""Answers kept on disk: the key and policy, the store, in-flight dedup, maintenance."""
