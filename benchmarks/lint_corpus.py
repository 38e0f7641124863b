"""A deterministic corpus of realistic Python files for benchmarks/lint.py.

Shaped like the corpus in issue 5 (openai-python, langchain-community, autogen, anthropic-cookbook):
file sizes are log-normal around a median of ~150 lines with a long tail, about 11% of files mention
an LLM SDK, tenacity or backoff (some correctly, some with the hazards the linter reports), ~1% are
notebooks, and the rest is ordinary application code: classes, dataclasses, async code, loops,
error handling, string formatting. The same seed always writes the same bytes.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

NOUNS = ["order", "user", "invoice", "report", "session", "record", "event", "ticket", "metric", "payload",
         "account", "message", "document", "chunk", "batch", "job", "task", "node", "edge", "config"]
VERBS = ["load", "parse", "build", "update", "render", "validate", "collect", "merge", "process", "fetch",
         "store", "normalize", "compute", "format", "resolve", "dispatch", "index", "encode", "scan", "sync"]

GENERIC_BLOCKS = [
    '''
def {verb}_{noun}({noun}_id: int, *, strict: bool = False) -> dict:
    """{Verb} one {noun} and return it as a plain dict."""
    if {noun}_id < 0:
        raise ValueError(f"bad {noun} id: {{{noun}_id}}")
    result = {{"id": {noun}_id, "strict": strict}}
    for key in ("name", "created", "status"):
        result[key] = _lookup({noun}_id, key)
    return result
''',
    '''
@dataclass
class {Noun}{Verb}er:
    """Keeps {noun}s and {verb}s them in batches."""

    size: int = 100
    items: list = field(default_factory=list)

    def add(self, item) -> None:
        self.items.append(item)
        if len(self.items) >= self.size:
            self.flush()

    def flush(self) -> int:
        count = len(self.items)
        self.items.clear()
        return count
''',
    '''
async def {verb}_all_{noun}s(ids, limit: int = 8):
    gate = asyncio.Semaphore(limit)

    async def one(i):
        async with gate:
            await asyncio.sleep(0)
            return i * 2

    return await asyncio.gather(*(one(i) for i in ids))
''',
    '''
def {verb}_{noun}_rows(rows):
    totals = {{}}
    for row in rows:
        key = (row.get("{noun}"), row.get("kind", "default"))
        totals[key] = totals.get(key, 0) + row.get("value", 0)
    return sorted(totals.items(), key=lambda item: -item[1])
''',
    '''
class {Noun}Error(Exception):
    """Raised when a {noun} cannot be {verb}ed."""

    def __init__(self, {noun}, reason: str) -> None:
        super().__init__(f"{{{noun}!r}}: {{reason}}")
        self.{noun} = {noun}
        self.reason = reason
''',
    '''
def safe_{verb}(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(4096)
    except FileNotFoundError:
        logger.warning("missing %s", path)
        return None
    except OSError as exc:
        logger.error("cannot {verb} %s: %s", path, exc)
        raise
''',
    '''
def {verb}_{noun}_table(items, width: int = 40) -> str:
    lines = []
    for index, item in enumerate(items):
        label = str(item).ljust(width)[:width]
        lines.append(f"{{index:>4}} | {{label}} | {{len(str(item)):>6}}")
    header = "-" * (width + 16)
    return "\\n".join([header, *lines, header])
''',
    '''
class {Noun}Repository:
    def __init__(self, connection) -> None:
        self.connection = connection
        self._cache = {{}}

    def get(self, key):
        if key not in self._cache:
            cursor = self.connection.execute("select * from {noun} where id = ?", (key,))
            self._cache[key] = cursor.fetchone()
        return self._cache[key]

    def delete(self, key) -> None:
        self.connection.execute("delete from {noun} where id = ?", (key,))
        self._cache.pop(key, None)
''',
    '''
def retry_{verb}(func, attempts: int = 3, delay: float = 0.5):
    for attempt in range(attempts):
        try:
            return func()
        except ConnectionError:
            if attempt == attempts - 1:
                raise
            time.sleep(delay * (2 ** attempt))
''',
    '''
{NOUN}_DEFAULTS = {{
    "enabled": True,
    "threshold": {num},
    "labels": ["{noun}", "{verb}", "misc"],
    "timeout": {num}.0,
}}
''',
    '''
def {verb}_{noun}_matrix(n: int) -> list[list[int]]:
    matrix = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            matrix[i][j] = (i * j) % 7 if i != j else 1
    return matrix
''',
]
TEMPLATE_CONSTANT = '''
{NOUN}_TEMPLATE = """\\
Dear {{name}},
Your {noun} #{{number}} was {verb}ed on {{date}}.
"""
'''

HEADER = '''"""{Noun} {verb} utilities."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


def _lookup(key, name):
    return f"{{key}}:{{name}}"
'''

SDK_HEADERS = [
    "import openai\nfrom openai import OpenAI\n",
    "import anthropic\nfrom anthropic import Anthropic, AsyncAnthropic\n",
    "from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential\n"
    "from openai import OpenAI\nimport openai\n",
    "import backoff\nimport openai\nfrom openai import AsyncOpenAI\n",
]
SDK_BLOCKS = [
    '''
client = OpenAI(timeout=30, max_retries=2)


def ask_{noun}(question: str) -> str:
    response = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{{"role": "system", "content": "You {verb} {noun}s."}}, {{"role": "user", "content": question}}],
        max_tokens=300,
    )
    return response.choices[0].message.content or ""
''',
    '''
{noun}_client = OpenAI()


def summarise_{noun}(text: str) -> str:
    result = {noun}_client.chat.completions.create(model="gpt-4o", messages=[{{"role": "user", "content": text}}])
    return result.choices[0].message.content
''',
    '''
llm = Anthropic(timeout=60)


def {verb}_with_claude(text: str) -> str:
    reply = llm.messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=500,
        messages=[{{"role": "user", "content": text[:8000]}}],
    )
    return reply.content[0].text
''',
    '''
@retry(stop=stop_after_attempt(5), wait=wait_random_exponential(min=1, max=30),
       retry=retry_if_exception_type((openai.RateLimitError, openai.APITimeoutError)))
def {verb}_{noun}_llm(prompt: str) -> str:
    client = OpenAI(timeout=20)
    out = client.responses.create(model="gpt-4o-mini", input=prompt, max_output_tokens=200)
    return out.output_text
''',
    '''
def {verb}_forever(client, messages):
    while True:
        try:
            return client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=100)
        except Exception:
            time.sleep(1)
''',
    '''
@backoff.on_exception(backoff.expo, openai.RateLimitError, max_tries=6)
async def {verb}_async(client, prompt: str) -> str:
    r = await client.chat.completions.create(model="gpt-4o-mini", max_tokens=64,
                                             messages=[{{"role": "user", "content": prompt}}])
    return r.choices[0].message.content
''',
]


def _fill(template: str, rng: random.Random) -> str:
    noun, verb = rng.choice(NOUNS), rng.choice(VERBS)
    return template.format(noun=noun, Noun=noun.capitalize(), NOUN=noun.upper(), verb=verb, Verb=verb.capitalize(),
                           num=rng.randint(2, 500))


def _lines(rng: random.Random, median: int = 150, sigma: float = 0.9, cap: int = 3000) -> int:
    return max(12, min(cap, int(math.exp(math.log(median) + sigma * rng.gauss(0, 1)))))


def _python_file(rng: random.Random, target: int, sdk: bool) -> str:
    parts = [_fill(HEADER, rng)]
    if sdk:
        parts.insert(0, rng.choice(SDK_HEADERS))
        for _ in range(rng.randint(1, 3)):
            parts.append(_fill(rng.choice(SDK_BLOCKS), rng))
    if rng.random() < 0.02:
        parts.append(_fill(TEMPLATE_CONSTANT, rng))
    text = "\n".join(parts)
    while text.count("\n") < target:
        text += "\n" + _fill(rng.choice(GENERIC_BLOCKS), rng)
    return text


def _notebook(source: str) -> str:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Analysis\n"]}]
    for chunk in source.split("\n\n\n"):
        lines = chunk.strip("\n").splitlines(keepends=True)
        if lines:
            cells.append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                          "source": lines})
    nb = {"cells": cells, "metadata": {"language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1) + "\n"


def generate(root: Path, files: int = 2500, seed: int = 5, sdk_rate: float = 0.11) -> dict[str, float]:
    """Write the corpus under `root`; returns its statistics."""
    rng = random.Random(seed)
    sizes, sdk_files = [], 0
    for i in range(files):
        package = root / f"pkg{i % 40:02d}" / f"sub{(i // 40) % 5}"
        package.mkdir(parents=True, exist_ok=True)
        sdk = rng.random() < sdk_rate
        sdk_files += sdk
        source = _python_file(rng, _lines(rng), sdk)
        if rng.random() < 0.01:
            (package / f"analysis_{i:05d}.ipynb").write_text(_notebook(source), encoding="utf-8")
        else:
            (package / f"module_{i:05d}.py").write_text(source, encoding="utf-8")
        sizes.append(source.count("\n"))
    sizes.sort()
    return {"files": files, "sdk_files": sdk_files, "median_lines": sizes[len(sizes) // 2],
            "mean_lines": sum(sizes) / len(sizes), "p99_lines": sizes[int(len(sizes) * 0.99)],
            "total_lines": sum(sizes)}


if __name__ == "__main__":
    import sys

    print(generate(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2500))
