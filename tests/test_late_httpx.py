"""Legacy `httpx` is wrapped when it is first imported, not imported by `install()` just to wrap it.

The current SDKs send through httpx2, so `install()` leaves httpx unloaded (it cost ~10–20 ms of
`%load_ext`). An openai client built on legacy httpx *after* install — LiteLLM and older SDKs do
this — must still be guarded: one ledger row, the sim's tokens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, sys
import llmguard
llmguard.install()
loaded_at_install = "httpx" in sys.modules
import httpx, openai
client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-late-123456", http_client=httpx.Client(timeout=10))
answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
guard = llmguard.current()
llmguard.uninstall()
import sqlite3
rows = sqlite3.connect(guard.ledger.path).execute("select model, input_tokens, output_tokens from calls").fetchall()
unpatched = not getattr(httpx.Client._transport_for_url, "__llmguard__", False)
print(json.dumps({"loaded_at_install": loaded_at_install, "rows": rows, "unpatched_after": unpatched,
                  "usage": [answer.usage.prompt_tokens, answer.usage.completion_tokens]}))
"""


def test_httpx_imported_after_install_is_guarded_and_restored(fresh_sim, tmp_path):
    env = dict(os.environ, LLMGUARD_HOME=str(tmp_path / "home"))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, fresh_sim.base_url + "/v1"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["loaded_at_install"] is False
    assert seen["unpatched_after"] is True
    assert len(seen["rows"]) == 1
    model, input_tokens, output_tokens = seen["rows"][0]
    assert model == "gpt-4o-mini"
    assert [input_tokens, output_tokens] == seen["usage"]
    assert fresh_sim.stats["requests"] == 1
