"""blake2b without importing hashlib, which loads OpenSSL (a noticeable part of a warm run's start-up).

`hashlib.blake2b` is this same C implementation; the cache keys (cache.py) and the config
fingerprint (config.py) use it.
"""

from __future__ import annotations

try:
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b

__all__ = ["blake2b"]
