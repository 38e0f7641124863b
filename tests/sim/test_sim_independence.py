"""The simulator is an independent oracle: importing it loads nothing else of llmguard."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_simulator_loads_no_other_llmguard_module():
    code = (
        "import sys, llmguard.sim\n"
        "from llmguard.sim import SimProvider\n"
        "with SimProvider() as sim: pass\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('llmguard'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = done.stdout.split()
    assert loaded and all(m == "llmguard" or m.startswith("llmguard.sim") for m in loaded), loaded
    assert "llmguard.sim.billing" in loaded and "llmguard.sim.counting" in loaded


def test_the_simulator_bills_with_genai_prices_own_calc_price():
    from decimal import Decimal

    from genai_prices import Usage, calc_price

    from llmguard.sim.billing import BilledUsage, price_call

    bill = price_call("openai", "gpt-4o-mini", BilledUsage(input_tokens=1000, cached_tokens=400, output_tokens=50))
    # 600 * 0.15 + 400 * 0.075 + 50 * 0.60 = 90 + 30 + 30 = 150 micro-dollars
    assert bill.cost == Decimal("0.00015")
    assert (
        bill.cost
        == calc_price(
            Usage(input_tokens=1000, cache_read_tokens=400, output_tokens=50), "gpt-4o-mini", provider_id="openai"
        ).total_price
    )
    assert bill.price["source"].startswith("genai-prices") and bill.price["model"] == "gpt-4o-mini"
