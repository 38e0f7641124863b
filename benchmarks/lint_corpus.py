"""Corpora for the lint benchmarks, and the speed benchmark on real code (issue 12, "Speed").

Two corpora:

- `generate()`: a deterministic synthetic corpus (benchmarks/lint.py uses it), shaped like the one in
  issue 5: log-normal file sizes around a median of ~150 lines with a long tail, about 11% of files
  mentioning an LLM SDK, tenacity or backoff, ~1% notebooks. The same seed always writes the same bytes.
- `build_real()`: pinned releases of real LLM projects fetched with `pip download --no-deps` and
  unpacked under `~/.cache/llmguard-bench/corpus/` (or `$LLMGUARD_BENCH_CACHE/corpus`), never
  committed. Sdists where they carry the repository's tests and examples, a wheel otherwise.

`python benchmarks/lint_corpus.py` builds the real corpus once, then measures, interleaved and
repeated, the `llmguard lint` CLI cold (`--no-cache`) and warm (cache filled) with one rule
(LG201, a client without timeout=), semgrep with an equivalent YAML rule, and llmguard cold with
every rule; it prints files/s by wall clock and per CPU-second (children's CPU from
`getrusage(RUSAGE_CHILDREN)`), the prefilter pass rate, checks that every arm looked at the same
files, checks that `import llmguard.lint` stays clear of the runtime, and says "met" or "missed by"
for each target of issue 12. semgrep runs from its own venv in the bench cache (installed with pip on
first use) so the project's venv keeps its pinned dependencies.

Usage: python benchmarks/lint_corpus.py [--repeats 3] [--jobs N] [--only openai,anthropic] [--build-only]
       python benchmarks/lint_corpus.py --synthetic DIR [FILES]   (write the synthetic corpus)
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

# -- the synthetic corpus -------------------------------------------------------------------------
NOUNS = [
    "order",
    "user",
    "invoice",
    "report",
    "session",
    "record",
    "event",
    "ticket",
    "metric",
    "payload",
    "account",
    "message",
    "document",
    "chunk",
    "batch",
    "job",
    "task",
    "node",
    "edge",
    "config",
]
VERBS = [
    "load",
    "parse",
    "build",
    "update",
    "render",
    "validate",
    "collect",
    "merge",
    "process",
    "fetch",
    "store",
    "normalize",
    "compute",
    "format",
    "resolve",
    "dispatch",
    "index",
    "encode",
    "scan",
    "sync",
]

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
    """
async def {verb}_all_{noun}s(ids, limit: int = 8):
    gate = asyncio.Semaphore(limit)

    async def one(i):
        async with gate:
            await asyncio.sleep(0)
            return i * 2

    return await asyncio.gather(*(one(i) for i in ids))
""",
    """
def {verb}_{noun}_rows(rows):
    totals = {{}}
    for row in rows:
        key = (row.get("{noun}"), row.get("kind", "default"))
        totals[key] = totals.get(key, 0) + row.get("value", 0)
    return sorted(totals.items(), key=lambda item: -item[1])
""",
    '''
class {Noun}Error(Exception):
    """Raised when a {noun} cannot be {verb}ed."""

    def __init__(self, {noun}, reason: str) -> None:
        super().__init__(f"{{{noun}!r}}: {{reason}}")
        self.{noun} = {noun}
        self.reason = reason
''',
    """
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
""",
    """
def {verb}_{noun}_table(items, width: int = 40) -> str:
    lines = []
    for index, item in enumerate(items):
        label = str(item).ljust(width)[:width]
        lines.append(f"{{index:>4}} | {{label}} | {{len(str(item)):>6}}")
    header = "-" * (width + 16)
    return "\\n".join([header, *lines, header])
""",
    """
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
""",
    """
def retry_{verb}(func, attempts: int = 3, delay: float = 0.5):
    for attempt in range(attempts):
        try:
            return func()
        except ConnectionError:
            if attempt == attempts - 1:
                raise
            time.sleep(delay * (2 ** attempt))
""",
    """
{NOUN}_DEFAULTS = {{
    "enabled": True,
    "threshold": {num},
    "labels": ["{noun}", "{verb}", "misc"],
    "timeout": {num}.0,
}}
""",
    """
def {verb}_{noun}_matrix(n: int) -> list[list[int]]:
    matrix = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            matrix[i][j] = (i * j) % 7 if i != j else 1
    return matrix
""",
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
    """
client = OpenAI(timeout=30, max_retries=2)


def ask_{noun}(question: str) -> str:
    response = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{{"role": "system", "content": "You {verb} {noun}s."}}, {{"role": "user", "content": question}}],
        max_tokens=300,
    )
    return response.choices[0].message.content or ""
""",
    """
{noun}_client = OpenAI()


def summarise_{noun}(text: str) -> str:
    result = {noun}_client.chat.completions.create(model="gpt-4o", messages=[{{"role": "user", "content": text}}])
    return result.choices[0].message.content
""",
    """
llm = Anthropic(timeout=60)


def {verb}_with_claude(text: str) -> str:
    reply = llm.messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=500,
        messages=[{{"role": "user", "content": text[:8000]}}],
    )
    return reply.content[0].text
""",
    """
@retry(stop=stop_after_attempt(5), wait=wait_random_exponential(min=1, max=30),
       retry=retry_if_exception_type((openai.RateLimitError, openai.APITimeoutError)))
def {verb}_{noun}_llm(prompt: str) -> str:
    client = OpenAI(timeout=20)
    out = client.responses.create(model="gpt-4o-mini", input=prompt, max_output_tokens=200)
    return out.output_text
""",
    """
def {verb}_forever(client, messages):
    while True:
        try:
            return client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=100)
        except Exception:
            time.sleep(1)
""",
    """
@backoff.on_exception(backoff.expo, openai.RateLimitError, max_tries=6)
async def {verb}_async(client, prompt: str) -> str:
    r = await client.chat.completions.create(model="gpt-4o-mini", max_tokens=64,
                                             messages=[{{"role": "user", "content": prompt}}])
    return r.choices[0].message.content
""",
]


def _fill(template: str, rng: random.Random) -> str:
    noun, verb = rng.choice(NOUNS), rng.choice(VERBS)
    return template.format(
        noun=noun, Noun=noun.capitalize(), NOUN=noun.upper(), verb=verb, Verb=verb.capitalize(), num=rng.randint(2, 500)
    )


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
            cells.append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": lines})
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
    return {
        "files": files,
        "sdk_files": sdk_files,
        "median_lines": sizes[len(sizes) // 2],
        "mean_lines": sum(sizes) / len(sizes),
        "p99_lines": sizes[int(len(sizes) * 0.99)],
        "total_lines": sum(sizes),
    }


# -- the real corpus -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Release:
    name: str
    version: str
    kind: str  # "sdist": the repository's src, tests and examples; "wheel": the package code only

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"


PINNED = (
    Release("openai", "3.57.0", "sdist"),
    Release("anthropic", "2.15.0", "sdist"),
    Release("langchain-community", "0.4.2", "sdist"),
    Release("langchain-openai", "1.7.4", "sdist"),
    Release("litellm", "1.110.2", "wheel"),
    Release("autogen-agentchat", "0.7.5", "sdist"),
    Release("openai-agents", "0.24.0", "sdist"),
)
SEMGREP_VERSION = "1.185.0"
_MARKER = ".unpacked"  # written last: a folder without it is a half-finished unpack and is redone
CONFIG_NAME = "llmguard-lint.toml"  # passed with --config: one root (the corpus) for every release


def bench_cache() -> Path:
    return Path(os.environ.get("LLMGUARD_BENCH_CACHE") or "~/.cache/llmguard-bench").expanduser()


def build_real(cache: Path, releases: tuple[Release, ...] = PINNED, log=print) -> Path:  # noqa: ANN001
    """Download and unpack each release once (kept between runs); returns the corpus folder."""
    corpus = cache / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for release in releases:
        target = corpus / release.folder
        if (target / _MARKER).is_file():
            continue
        log(f"corpus: unpacking {release.name}=={release.version} ({release.kind}; `pip download` first if needed)")
        _unpack(_download(release, cache / "downloads" / release.folder), target)
    (corpus / CONFIG_NAME).write_text("# llmguard lint's defaults (the benchmark passes --config)\n", encoding="utf-8")
    _write_semgrepignore(corpus)
    return corpus


def _archives(folder: Path) -> list[Path]:
    return (
        sorted(p for p in folder.glob("*") if p.name.endswith((".whl", ".tar.gz", ".zip"))) if folder.is_dir() else []
    )


def _download(release: Release, dest: Path) -> Path:
    if not _archives(dest):
        dest.mkdir(parents=True, exist_ok=True)
        only = ["--no-binary", ":all:"] if release.kind == "sdist" else ["--only-binary", ":all:"]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                *only,
                "--dest",
                str(dest),
                f"{release.name}=={release.version}",
            ],
            check=True,
        )
    found = _archives(dest)
    if len(found) != 1:
        raise RuntimeError(f"expected one archive for {release.folder} in {dest}, found {[p.name for p in found]}")
    return found[0]


def _unpack(archive: Path, target: Path) -> None:
    partial = target.with_name(f".partial-{target.name}")
    for folder in (partial, target):
        shutil.rmtree(folder, ignore_errors=True)
    partial.mkdir(parents=True)
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(partial)  # zipfile drops absolute paths and ".." parts
        root = partial
    else:
        with tarfile.open(archive) as handle:
            handle.extractall(partial, filter="data")  # no links or paths out of the folder
        top = list(partial.iterdir())
        root = top[0] if len(top) == 1 and top[0].is_dir() else partial  # an sdist has one top folder
    (root / _MARKER).write_text(f"{archive.name}\n", encoding="utf-8")
    root.rename(target)
    shutil.rmtree(partial, ignore_errors=True)


def _write_semgrepignore(corpus: Path) -> None:
    """Without this file semgrep skips tests/, build/... by default; with it, it skips what llmguard skips."""
    from llmguard.lint.discover import DEFAULT_EXCLUDES

    lines = [
        "# written by benchmarks/lint_corpus.py: the folders llmguard lint skips, and no more",
        *sorted(DEFAULT_EXCLUDES),
    ]
    (corpus / ".semgrepignore").write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class Survey:
    """What llmguard's own discovery finds, and how many files its literal prefilter lets through."""

    rows: dict[str, dict[str, int]]  # release folder -> python, notebook, lines, pass_one, tree_one, pass_all
    files: set[str]  # paths relative to the corpus, as both tools print them

    def total(self, key: str) -> int:
        return sum(row.get(key, 0) for row in self.rows.values())


def survey(corpus: Path, folders: list[str]) -> Survey:
    from llmguard.lint.config import load_config
    from llmguard.lint.discover import discover
    from llmguard.lint.engine import engine_for

    config = load_config(config_file=corpus / CONFIG_NAME)
    one, every = engine_for(config.with_cli(["LG201"], [])), engine_for(config)
    found = discover(folders, config, cwd=str(corpus))
    rows: dict[str, dict[str, int]] = {folder: {} for folder in folders}
    for source in found.files:
        row = rows[source.display.split(os.sep, 1)[0]]
        row[source.kind] = row.get(source.kind, 0) + 1
        if source.kind != "python":  # notebooks are always opened and parsed
            for key in ("pass_one", "tree_one", "pass_all"):
                row[key] = row.get(key, 0) + 1
            continue
        with open(source.path, "rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")
        row["lines"] = row.get("lines", 0) + text.count("\n")
        rules = one.candidates(text, source.display)
        row["pass_one"] = row.get("pass_one", 0) + bool(rules)
        row["tree_one"] = row.get("tree_one", 0) + bool(rules and _passes_tree(rules, text))
        row["pass_all"] = row.get("pass_all", 0) + bool(every.candidates(text, source.display))
    return Survey(rows, {s.display.replace(os.sep, "/") for s in found.files})


def _passes_tree(rules: list, text: str) -> bool:
    """Does a file the literal prefilter let through also pass the tree prefilter (and so reach libcst)?"""
    from llmguard.lint import guard
    from llmguard.lint.treefilter import TreeFacts

    problem, tree = guard.inspect(text)
    if problem is not None:
        return False
    return tree is None or any(rule.may_match_tree(TreeFacts(tree)) for rule in rules)


# -- semgrep ---------------------------------------------------------------------------------------
# LG201's core: a client of either SDK built without timeout= (an http_client= may carry one). semgrep
# resolves `from openai import OpenAI` and `import openai as o` aliases to these names itself.
_CLIENTS = (
    "openai.OpenAI",
    "openai.AsyncOpenAI",
    "openai.AzureOpenAI",
    "openai.AsyncAzureOpenAI",
    "anthropic.Anthropic",
    "anthropic.AsyncAnthropic",
    "anthropic.AnthropicBedrock",
    "anthropic.AsyncAnthropicBedrock",
    "anthropic.AnthropicVertex",
    "anthropic.AsyncAnthropicVertex",
)
SEMGREP_RULE = "\n".join(
    [
        "rules:",
        "  - id: client-without-timeout",
        "    languages: [python]",
        "    severity: WARNING",
        "    message: OpenAI/Anthropic client without timeout= waits up to 600 s per attempt (the SDK default)",
        "    patterns:",
        "      - pattern-either:",
        *(f"          - pattern: {name}(...)" for name in _CLIENTS),
        "      - pattern-not: $CLIENT(..., timeout=$T, ...)",
        "      - pattern-not: $CLIENT(..., http_client=$H, ...)",
        "",
    ]
)


def semgrep_command(cache: Path, log=print) -> list[str] | str:  # noqa: ANN001
    """semgrep from $SEMGREP, PATH, or its own venv in the bench cache (made on first use); or why not."""
    given = os.environ.get("SEMGREP") or shutil.which("semgrep")
    if given:
        return [given]
    venv = cache / "semgrep-venv"
    binary = venv / "bin" / "semgrep"
    if not binary.exists():
        log(
            f"semgrep: installing semgrep=={SEMGREP_VERSION} with pip into {venv} (its pins would change the "
            "project venv's) ..."
        )
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"semgrep=={SEMGREP_VERSION}"],
                check=True,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            return f"cannot install semgrep: {exc}"
    return [str(binary)]


# -- measuring -------------------------------------------------------------------------------------
@dataclass
class Arm:
    name: str
    label: str
    command: list[str]
    env: dict[str, str]
    parse: object  # (stdout) -> {"files": n, "findings": n, ...}
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    outcomes: list[dict] = field(default_factory=list)

    @property
    def files(self) -> int:
        return self.outcomes[0]["files"] if self.outcomes else 0

    def rate(self) -> float:
        return self.files / statistics.median(self.walls)

    def cpu_rate(self) -> float:
        return self.files / max(statistics.median(self.cpus), 1e-9)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_arm(arm: Arm, cwd: Path) -> None:
    """One timed run: wall clock around the process, CPU of it and every process it waited for."""
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(arm.command, cwd=cwd, env=arm.env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"{arm.name}: exit {done.returncode}\n{done.stderr[-3000:]}")
    arm.walls.append(wall)
    arm.cpus.append(cpu)
    arm.outcomes.append(arm.parse(done.stdout))


_CHECKED = re.compile(r"\((\d+) (?:files? )?checked\)")
_STAT_LINE = re.compile(r"^\s*(\d+)\s+(LG\d{3})\b", re.MULTILINE)


def parse_llmguard(stdout: str) -> dict:
    """`llmguard lint --statistics`: one line per code, then '(N checked)' in the summary."""
    checked = _CHECKED.search(stdout)
    if checked is None:
        raise RuntimeError(f"llmguard printed no '(N checked)' summary:\n{stdout[-2000:]}")
    codes = {code: int(n) for n, code in _STAT_LINE.findall(stdout)}
    return {"files": int(checked.group(1)), "findings": sum(codes.values()), "codes": codes}


def parse_semgrep(stdout: str) -> dict:
    data = json.loads(stdout)
    scanned = sorted(data.get("paths", {}).get("scanned", []))
    errors = data.get("errors", [])
    kinds = sorted({f"{e.get('type', '?')}".split(",")[0][:40] for e in errors})
    return {
        "files": len(scanned),
        "findings": len(data.get("results", [])),
        "errors": len(errors),
        "kinds": kinds,
        "scanned": scanned,
    }


def _median_range(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s ({min(values):.2f}–{max(values):.2f})"


# -- import weight ---------------------------------------------------------------------------------
# Modules of the runtime guard (and what it pulls in) that the linter never needs.
RUNTIME_MODULES = (
    "llmguard.pipeline.guard",
    "llmguard.ledger.sqlite",
    "llmguard.intercept.transport",
    "llmguard.ledger.journal",
    "llmguard.intercept.meter",
    "llmguard.policies.limiter",
    "llmguard.cache.stage",
    "llmguard.providers",
    "llmguard.magics",
    "IPython",
    "ipywidgets",
    "httpx",
    "httpx2",
    "openai",
    "anthropic",
    "tiktoken",
    "genai_prices",
    "diskcache",
)
_PROBE = """
import json, os, runpy, sys
kind, target, *argv = json.loads(os.environ["LLMGUARD_PROBE"])
if kind == "import":
    __import__(target)
else:
    sys.argv = [target, *argv]
    try:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
sys.stdout.flush()
with open(os.environ["LLMGUARD_PROBE_OUT"], "w") as handle:
    json.dump(sorted(sys.modules), handle)
"""


def loaded_modules(kind: str, target: str, *argv: str, code: Path | None = None) -> list[str]:
    """sys.modules of a fresh interpreter after `import target` or `python -m target argv...`."""
    with tempfile.TemporaryDirectory(prefix="llmguard-probe-") as tmp:
        out = Path(tmp) / "modules.json"
        env = {
            **os.environ,
            "LLMGUARD_PROBE": json.dumps([kind, target, *argv]),
            "LLMGUARD_PROBE_OUT": str(out),
            "LLMGUARD_HOME": str(Path(tmp) / "home"),
        }
        if code is not None:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(code), os.environ.get("PYTHONPATH", "")) if p)
        subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=tmp, check=True, capture_output=True)
        return json.loads(out.read_text(encoding="utf-8"))


def runtime_loaded(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == r or m.startswith(r + ".") for r in RUNTIME_MODULES)]


def import_times(
    statement: str = "import llmguard.lint", repeats: int = 5, env: dict | None = None
) -> tuple[float, float]:
    """Medians, in ms, of `-X importtime`: the top-level llmguard entries' cumulative, and all imports."""
    ours, totals = [], []
    for _ in range(repeats):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", statement], check=True, env=env, capture_output=True, text=True
        ).stderr
        own = total = 0
        for line in err.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, cumulative, name = line[len("import time:") :].split("|")
            total += int(self_us)
            if name.startswith(" llmguard") and not name.startswith("  "):  # top level: not imported by another
                own += int(cumulative)
        ours.append(own / 1000)
        totals.append(total / 1000)
    return statistics.median(ours), statistics.median(totals)


def import_report(code: Path | None = None) -> bool:
    empty = tempfile.mkdtemp(prefix="llmguard-empty-")
    try:
        probes = {
            "import llmguard.lint": loaded_modules("import", "llmguard.lint", code=code),
            "llmguard --version": loaded_modules("run", "llmguard.cli", "--version", code=code),
            "llmguard lint <empty dir>": loaded_modules("run", "llmguard.cli", "lint", empty, "--no-cache", code=code),
            "python -m llmguard.lint lint <empty dir>": loaded_modules(
                "run", "llmguard.lint", "lint", empty, "--no-cache", code=code
            ),
        }
    finally:
        os.rmdir(empty)
    ok = True
    for what, modules in probes.items():
        bad = runtime_loaded(modules)
        ours = sorted({m for m in modules if m.startswith("llmguard.") and not m.startswith("llmguard.lint")})
        extra = [m for m in ("libcst", "rich", "sqlite3") if m in modules]
        ok = ok and not bad
        print(
            f"  {what:<42} {len(modules):4d} modules; runtime: {', '.join(bad) or 'none'}; other llmguard: "
            f"{_shorten(ours)}; {'+'.join(extra) or 'no libcst/rich/sqlite3'}"
        )
    env = None if code is None else {**os.environ, "PYTHONPATH": str(code)}
    own, total = import_times(env=env)
    print(
        f"  python -X importtime -c 'import llmguard.lint': llmguard + llmguard.lint {own:.1f} ms cumulative, "
        f"{total:.1f} ms all imports incl. start-up (median of 5)"
    )
    return ok


def _shorten(names: list[str]) -> str:
    if not names:
        return "none"
    packages = sorted({".".join(n.split(".")[:2]) for n in names})
    return ", ".join(packages)


# -- the benchmark ---------------------------------------------------------------------------------
def snapshot_code(tmp: Path) -> Path:
    """A copy of the llmguard package, put first on PYTHONPATH for every run.

    Other people edit the tree while this runs; the cache key includes the linter's own files, so
    an edit between the cache fill and a warm run would quietly turn it into a cold one.
    """
    import llmguard

    target = tmp / "code"
    shutil.copytree(
        Path(llmguard.__file__).parent, target / "llmguard", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )  # copy2 keeps the mtimes
    # Bytecode, as an installed package has it (pip compiles at install time): without it, and with
    # PYTHONDONTWRITEBYTECODE set, every measured run would compile llmguard from source first.
    compileall.compile_dir(str(target / "llmguard"), quiet=1)
    return target


def make_arms(
    corpus: Path, folders: list[str], tmp: Path, jobs: int, semgrep: list[str] | None, all_rules: bool, code: Path
) -> list[Arm]:
    path = os.pathsep.join(p for p in (str(code), os.environ.get("PYTHONPATH", "")) if p)
    base_env = {**os.environ, "PYTHONPATH": path}
    common = [*folders, "--config", str(corpus / CONFIG_NAME), "--statistics", "--exit-zero", "--jobs", str(jobs)]
    cli = [sys.executable, "-m", "llmguard.cli", "lint"]
    light = [sys.executable, "-m", "llmguard.lint", "lint"]
    warm_env = {**base_env, "LLMGUARD_HOME": str(tmp / "home-warm")}
    cold_env = {**base_env, "LLMGUARD_HOME": str(tmp / "home-cold")}
    arms = [
        Arm(
            "cold",
            "llmguard lint --select LG201 --no-cache",
            [*cli, *common, "--select", "LG201", "--no-cache"],
            cold_env,
            parse_llmguard,
        ),
        Arm(
            "warm",
            "llmguard lint --select LG201, cache filled",
            [*cli, *common, "--select", "LG201"],
            warm_env,
            parse_llmguard,
        ),
        Arm(
            "warm-light",
            "python -m llmguard.lint lint --select LG201, cache filled",
            [*light, *common, "--select", "LG201"],
            warm_env,
            parse_llmguard,
        ),
    ]
    if all_rules:
        arms.append(
            Arm(
                "cold-all",
                "llmguard lint (every rule) --no-cache",
                [*cli, *common, "--no-cache"],
                cold_env,
                parse_llmguard,
            )
        )
    if semgrep is not None:
        rule = tmp / "lg201.yaml"
        rule.write_text(SEMGREP_RULE, encoding="utf-8")
        semgrep_env = {
            **base_env,
            "SEMGREP_ENABLE_VERSION_CHECK": "0",
            "SEMGREP_SEND_METRICS": "off",
            "SEMGREP_SETTINGS_FILE": str(tmp / "semgrep-settings.yml"),
            "SEMGREP_LOG_FILE": str(tmp / "semgrep.log"),
            "SEMGREP_VERSION_CACHE_PATH": str(tmp / "semgrep-version"),
        }
        # --project-root .: read the corpus' .semgrepignore although the scanning roots are its subfolders
        arms.insert(
            1,
            Arm(
                "semgrep",
                "semgrep scan, 1 rule (LG201 as YAML)",
                [
                    *semgrep,
                    "scan",
                    "--config",
                    str(rule),
                    "--json",
                    "--metrics=off",
                    "--quiet",
                    "--disable-version-check",
                    "--project-root",
                    ".",
                    "--exclude",
                    "*.pyi",
                    "--jobs",
                    str(jobs),
                    *folders,
                ],
                semgrep_env,
                parse_semgrep,
            ),
        )
    return arms


def verdict(ok: bool, missed: str) -> str:
    return "met" if ok else f"missed by {missed}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds of every arm (default 3)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="workers for both tools (default: CPUs)")
    parser.add_argument("--only", help="comma-separated release names to use (default: every pinned release)")
    parser.add_argument("--build-only", action="store_true", help="build the corpus and stop")
    parser.add_argument("--no-semgrep", action="store_true", help="skip semgrep")
    parser.add_argument("--all-rules", action="store_true", help="add an arm: llmguard cold with every rule")
    parser.add_argument(
        "--code",
        type=Path,
        metavar="DIR",
        help="measure the llmguard package in DIR/llmguard (a candidate change) instead of a snapshot "
        "of the installed one",
    )
    parser.add_argument("--synthetic", nargs="+", metavar=("DIR", "FILES"), help="write the synthetic corpus")
    args = parser.parse_args()
    if args.synthetic:
        print(generate(Path(args.synthetic[0]), int(args.synthetic[1]) if len(args.synthetic) > 1 else 2500))
        return 0
    wanted = {n.strip() for n in args.only.split(",")} if args.only else None
    releases = tuple(r for r in PINNED if wanted is None or r.name in wanted)
    if not releases:
        parser.error(f"--only: no pinned release among {args.only!r} ({', '.join(r.name for r in PINNED)})")
    cache = bench_cache()
    corpus = build_real(cache, releases)
    if args.build_only:
        print(f"corpus ready in {corpus}")
        return 0
    folders = [r.folder for r in releases]
    info = survey(corpus, folders)
    _print_survey(info, releases, corpus)
    semgrep = None if args.no_semgrep else semgrep_command(cache)
    if isinstance(semgrep, str):
        print(f"semgrep: {semgrep}; measuring llmguard only")
        semgrep = None
    print(
        f"\nmachine: {os.cpu_count()} CPUs, load average {_load()} before measuring; --jobs {args.jobs} for both "
        f"tools; {args.repeats} interleaved rounds (order rotates each round)"
    )
    with tempfile.TemporaryDirectory(prefix="llmguard-corpus-bench-") as tmp_name:
        tmp = Path(tmp_name)
        code = args.code.resolve() if args.code else snapshot_code(tmp)
        print(
            f"code measured: {code / 'llmguard'}"
            + (
                ""
                if args.code
                else " (a snapshot of the installed package, taken now: edits during the run do not count)"
            )
        )
        arms = make_arms(corpus, folders, tmp, args.jobs, semgrep, args.all_rules, code)
        by_name = {arm.name: arm for arm in arms}
        fill = Arm("fill", "cache fill", by_name["warm"].command, by_name["warm"].env, parse_llmguard)
        run_arm(fill, corpus)  # the warm arms read the cache this writes
        filled = _cache_files(tmp / "home-warm")
        for round_ in range(args.repeats):
            for arm in arms[round_ % len(arms) :] + arms[: round_ % len(arms)]:
                run_arm(arm, corpus)
        load_after = _load()
        print(
            f"{'arm':<11} {'what':<58} {'files':>6} {'wall, median (min–max)':>24} {'files/s':>9} {'files/CPU-s':>11}"
        )
        for arm in [*arms, fill]:
            print(
                f"{arm.name:<11} {arm.label:<58} {arm.files:6d} {_median_range(arm.walls):>24} "
                f"{arm.rate():9.0f} {arm.cpu_rate():11.0f}"
            )
        print(f"(fill = one cold run writing the cache, not repeated; load average after: {load_after})")
        checks_ok = _checks(arms, info)
        untouched = filled == _cache_files(tmp / "home-warm") and len(filled) == 1
        print(
            f"  warm runs: the cache file the fill wrote was {'left untouched' if untouched else 'REWRITTEN'} "
            f"(a miss stores an entry and rewrites it: {'every file was a hit' if untouched else 'some missed'})"
        )
        checks_ok = checks_ok and untouched
        print("\nimport weight:")
        import_ok = import_report(code)
        _targets(by_name, import_ok, checks_ok)
    return 0


def _cache_files(home: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in (home / "lint-cache").glob("*.pickle")}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _print_survey(info: Survey, releases: tuple[Release, ...], corpus: Path) -> None:
    print(f"corpus: {corpus} (pinned releases, `pip download --no-deps`)")
    print(
        f"  {'release':<28} {'kind':<6} {'.py':>6} {'.ipynb':>6} {'lines':>9} {'LG201 pass':>11} {'to libcst':>10} "
        f"{'all rules':>10}"
    )
    for release in releases:
        row = info.rows[release.folder]
        files = row.get("python", 0) + row.get("notebook", 0)
        print(
            f"  {release.folder:<28} {release.kind:<6} {row.get('python', 0):6d} {row.get('notebook', 0):6d} "
            f"{row.get('lines', 0):9,d} {_share(row.get('pass_one', 0), files):>11} "
            f"{_share(row.get('tree_one', 0), files):>10} {_share(row.get('pass_all', 0), files):>10}"
        )
    files = info.total("python") + info.total("notebook")
    print(
        f"  {'total':<35} {info.total('python'):6d} {info.total('notebook'):6d} {info.total('lines'):9,d} "
        f"{_share(info.total('pass_one'), files):>11} {_share(info.total('tree_one'), files):>10} "
        f"{_share(info.total('pass_all'), files):>10}"
    )
    print(
        "  (pass = the share of files llmguard's text prefilter lets through (substring and regex searches, "
        "test files skipped by the rules that skip them); to libcst = those the prefilter on CPython's own "
        "tree, treefilter.py, lets through too: only these are parsed by libcst)"
    )


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _checks(arms: list[Arm], info: Survey) -> bool:
    """Every arm must have looked at the files it claims, the same files in every round."""
    ok = True
    expected = len(info.files)
    print("\nchecks:")
    for arm in arms:
        counts = sorted({o["files"] for o in arm.outcomes})
        findings = sorted({o["findings"] for o in arm.outcomes})
        if arm.name == "semgrep":
            scanned = set(arm.outcomes[0]["scanned"])
            python = {f for f in info.files if f.endswith(".py")}
            only_semgrep, only_llmguard = scanned - python, python - scanned
            same = counts == [len(python)] and not only_semgrep and not only_llmguard
            errors = sorted({o["errors"] for o in arm.outcomes})
            print(
                f"  semgrep: scanned {counts} files per its JSON; llmguard's .py files: {len(python)} "
                f"({'the same files' if same else 'DIFFERENT'}: {len(only_semgrep)} only semgrep, "
                f"{len(only_llmguard)} only llmguard{_examples(only_semgrep | only_llmguard)}); "
                f"{findings} findings, {errors} errors per run {arm.outcomes[0]['kinds'] or ''}"
            )
            ok = ok and same
        else:
            same = counts == [expected]
            codes = arm.outcomes[0].get("codes", {})
            print(
                f"  {arm.name}: {counts} files checked (llmguard discovery: {expected}: "
                f"{'same' if same else 'DIFFERENT'}); findings {findings} ({_codes(codes)})"
            )
            ok = ok and same
    warm, cold = next(a for a in arms if a.name == "warm"), next(a for a in arms if a.name == "cold")
    if warm.outcomes[0]["findings"] != cold.outcomes[0]["findings"]:
        print("  warm and cold disagree on the findings: the cache serves stale or wrong results")
        ok = False
    return ok


def _examples(paths: set[str]) -> str:
    return f", e.g. {', '.join(sorted(paths)[:3])}" if paths else ""


def _codes(codes: dict[str, int]) -> str:
    return ", ".join(f"{code} {n}" for code, n in sorted(codes.items())) or "none"


def _targets(arms: dict[str, Arm], import_ok: bool, checks_ok: bool) -> None:
    print("\ntargets (issue 12):")
    cold, warm = arms["cold"], arms["warm"]
    semgrep = arms.get("semgrep")
    if semgrep is not None:
        ratio, cpu_ratio = cold.rate() / semgrep.rate(), cold.cpu_rate() / semgrep.cpu_rate()
        print(
            f"  cold >= 2x semgrep's files/s, one LLM rule each: {cold.rate():.0f} vs {semgrep.rate():.0f} files/s "
            f"= {ratio:.2f}x (per CPU-second {cpu_ratio:.2f}x): "
            f"{verdict(ratio >= 2, f'{2 / ratio:.2f}x (cold must get {2 / ratio:.2f}x faster)')}"
        )
    else:
        print("  cold >= 2x semgrep: not measured (no semgrep)")
    needed = warm.files / 20_000
    print(
        f"  warm >= 20,000 files/s: {warm.rate():.0f} files/s ({statistics.median(warm.walls) * 1000:.0f} ms for "
        f"{warm.files} files; 20,000/s needs {needed * 1000:.0f} ms): "
        f"{verdict(warm.rate() >= 20_000, f'{20_000 - warm.rate():.0f} files/s')}"
        f" (the light entry python -m llmguard.lint: {arms['warm-light'].rate():.0f} files/s)"
    )
    print(f"  import llmguard.lint loads no runtime module: {verdict(import_ok, 'runtime modules loaded (see above)')}")
    if not checks_ok:
        print("  WARNING: some arm did not check what it claims (see checks above): compare the rates with care")


if __name__ == "__main__":
    sys.exit(main())
