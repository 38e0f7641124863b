"""The fast paths of a run give what the slow ones gave: plain text output without rich, and
gitignore matching with per-folder lookups."""

from __future__ import annotations

import io
import random
import re

import pytest

from llmguard.lint.findings import Finding
from llmguard.lint.formats import text
from llmguard.lint.gitignore import PatternSet, _component


@pytest.fixture(autouse=True)
def no_forced_colour(monkeypatch):
    for name in text._STYLE_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


def _findings(tmp_path) -> list[Finding]:
    source = tmp_path / "app.py"
    source.write_text(
        "import openai\n"
        "client = openai.OpenAI()\n"
        "\tx = 'tab\there'  # sk-ant-api03-" + "Ab3dE5xY" * 12 + "\n"
        "y = 'wide 漢字 text' + 'bell\a feed\f cr\r'\n",
        encoding="utf-8",
    )
    path = str(source)
    return [
        Finding("LG201", "client-without-timeout", "no timeout", path, 2, 10, 2, 25, fix="add timeout=60"),
        Finding("LG501", "hardcoded-api-key", "a key\twith a tab", path, 3, 9, 3, 40),
        Finding("LG306", "unknown-model", "model [bold]x[/bold] \a\b\v\f\r odd", path, 4, 1, 4, 5, confidence="low"),
        Finding("LG000", "parse-error", "syntax error: ☃ at the end", path, 1, 1, 1, 1),
        Finding("LG402", "unbounded-document-prompt", "multi\nline message", path, 9, 1, 9, 2, cell=None),
        Finding("LG301", "missing-max-tokens", "line past the end", path, 99, 1, 99, 2, fix="add max_tokens=1024"),
    ]


@pytest.mark.parametrize("statistics", [False, True])
@pytest.mark.parametrize("concise", [False, True])
def test_plain_output_is_what_rich_writes_to_a_file(tmp_path, concise, statistics):
    findings = _findings(tmp_path)
    for subset in (findings, findings[:1], [findings[0], findings[4]], []):
        outputs = []
        for console in (text.rich_console(io.StringIO()), text.PlainConsole(io.StringIO())):
            text.render(subset, console, concise=concise, statistics=statistics, files=3)
            text.say(console, "No findings in 3 files checked; 1 path was not found (see above).")
            text.say(console, "a message with [brackets] goes through rich's markup")
            outputs.append(console.file.getvalue())
        assert outputs[0] == outputs[1]


def test_output_to_a_file_or_pipe_does_not_load_rich(monkeypatch):
    assert isinstance(text.console_for(io.StringIO()), text.PlainConsole)
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not isinstance(text.console_for(io.StringIO()), text.PlainConsole)


def _reference_match(patterns: PatternSet, relative: str, is_dir: bool) -> bool | None:
    """PatternSet.match as it was before the per-folder lookups: every component, every time."""
    best = -1
    regex = patterns._dirs if is_dir else patterns._files
    if regex is not None:
        found = regex.match(relative)
        if found is not None:
            best = int(found.lastgroup[1:])
    parts = relative.split("/")
    folders = parts if is_dir else parts[:-1]
    for part in parts:
        best = max(best, _component(part, patterns._names, patterns._suffixes, patterns._suffix_tuple, patterns._globs))
    for part in folders:
        best = max(
            best,
            _component(
                part, patterns._dir_names, patterns._dir_suffixes, patterns._dir_suffix_tuple, patterns._dir_globs
            ),
        )
    return None if best < 0 else not patterns.negated[best]


def test_gitignore_matching_per_folder_agrees_with_matching_every_component():
    rng = random.Random(12)
    names = ["a", "b", "build", "src", "x.py", "y.pyc", "docs", "tmp", "keep.py", "data.json"]
    pattern_pool = [
        "a", "b/", "build", "*.pyc", "*.py", "!keep.py", "!b", "src/a", "/docs", "**/tmp", "d?cs/",
        "x*", "!x.py", "*.json", "a/**/b", "tmp/", "[ab]", "!src/",
    ]  # fmt: skip
    for _ in range(300):
        patterns = PatternSet(rng.sample(pattern_pool, rng.randint(1, 8)))
        for _ in range(40):
            relative = "/".join(rng.choice(names) for _ in range(rng.randint(1, 5)))
            is_dir = rng.random() < 0.4
            assert patterns.match(relative, is_dir) == _reference_match(patterns, relative, is_dir), (
                patterns.negated,
                relative,
                is_dir,
            )


def test_plain_text_has_no_ansi_codes(tmp_path):
    console = text.PlainConsole(io.StringIO())
    text.render(_findings(tmp_path), console)
    assert not re.search(r"\x1b\[", console.file.getvalue())
