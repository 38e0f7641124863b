"""Token counting overhead against tiktoken itself, like with like, interleaved.

llmguard counts with `encode_ordinary` (special tokens are text in a prompt), so its `count_text` is
timed against `encode_ordinary` on the same encoding object, and `count_messages` against the same
arithmetic done by hand (`encode_ordinary` per string field plus the per-message constants). The two
sides alternate within every repeat, the order rotating; each repeat times a batch of calls.
Target: at most +10% (ratio <= 1.10) for every text size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from llmguard.policies import tokens

sys.path.insert(0, str(Path(__file__).parent))
from _bench import Figure, Outcome, cli, median, rotated, spread  # noqa: E402

TEXTS = [
    ("short (10 words)", "Summarise the refund policy in two short sentences please."),
    ("medium (~500 tok)", "The quarterly operations review covers revenue and staffing. " * 50),
    ("long (~10k tok)", "Incident follow-ups, billing migration, database moves and hiring plans. " * 800),
]


def batch_s(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def interleaved(pairs: dict[str, Callable[[], object]], repeats: int, number: int) -> dict[str, list[float]]:
    """Seconds per call of each function, one batch per repeat each, the order rotating."""
    for fn in pairs.values():
        batch_s(fn, max(1, number // 4))  # warm up
    times: dict[str, list[float]] = {name: [] for name in pairs}
    for turn in range(repeats):
        for name in rotated(list(pairs), turn):
            times[name].append(batch_s(pairs[name], number))
    return times


def measure(quick: bool = False, repeats: int | None = None) -> Outcome:
    repeats = repeats or (5 if quick else 15)
    out = Outcome("tokens")
    encoding, approximate = tokens.encoding_for_model("gpt-4")
    print(f"encoding {encoding.name} (the object llmguard uses), {repeats} repeats, the two sides alternating")
    for label, text in TEXTS:
        number = max(3, (2000 if quick else 6000) // max(1, len(text) // 60))
        expected = len(encoding.encode_ordinary(text))
        out.check(tokens.count_text(text, "gpt-4").tokens == expected, f"{label}: count_text != encode_ordinary")
        times = interleaved(
            {
                "encode_ordinary": lambda text=text: encoding.encode_ordinary(text),
                "count_text": lambda text=text: tokens.count_text(text, "gpt-4"),
            },
            repeats,
            number,
        )
        ratios = [a / b for a, b in zip(times["count_text"], times["encode_ordinary"], strict=True)]
        print(
            f"  {label:18s} encode_ordinary {median(times['encode_ordinary']) * 1e6:9.1f} us   count_text "
            f"{median(times['count_text']) * 1e6:9.1f} us   ratio {statistics.median(ratios):.3f} {spread(ratios, 'x')}"
        )
        out.add(Figure(f"tokens count_text / encode_ordinary, {label}", median(ratios), 1.10, "x"))

    messages = [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": TEXTS[1][1]},
        {"role": "assistant", "content": "Noted.", "name": "helper"},
    ]

    def by_hand() -> int:
        total = 3  # every reply is primed with 3 tokens
        for message in messages:
            total += 3
            for key, value in message.items():
                total += len(encoding.encode_ordinary(value))
                if key == "name":
                    total += 1
        return total

    ours = tokens.count_messages(messages, "gpt-4").tokens
    out.check(ours == by_hand(), f"count_messages {ours} != the same arithmetic by hand {by_hand()}")
    times = interleaved(
        {"by hand": by_hand, "count_messages": lambda: tokens.count_messages(messages, "gpt-4")},
        repeats,
        400 if quick else 1500,
    )
    ratios = [a / b for a, b in zip(times["count_messages"], times["by hand"], strict=True)]
    print(
        f"  3 messages (~520 tok): by hand {median(times['by hand']) * 1e6:.1f} us   count_messages "
        f"{median(times['count_messages']) * 1e6:.1f} us   ratio {statistics.median(ratios):.3f} {spread(ratios, 'x')}"
    )
    out.add(Figure("tokens count_messages / same sum by hand", median(ratios), 1.10, "x"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="repeats (default 15; 5 with --quick)")
    return cli(measure, parser, "tokens")


if __name__ == "__main__":
    sys.exit(main())
