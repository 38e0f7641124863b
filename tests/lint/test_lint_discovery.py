"""Discovery: .py and .ipynb, .gitignore respected, default and configured excludes, gitignore globs."""

from __future__ import annotations

from llmguard.lint.config import LintConfig, config_from_table
from llmguard.lint.discover import discover
from llmguard.lint.gitignore import PatternSet


def _found(root, config=None, paths=(".",)):
    return sorted(f.display for f in discover(list(paths), config or LintConfig(root=root), str(root)).files)


def test_gitignore_and_default_excludes(project):
    root = project(
        {
            ".gitignore": "build/\n*.gen.py\n/secret.py\n!keep.gen.py\n",
            "sub/.gitignore": "local_*.py\n",
            "a.py": "",
            "b.ipynb": "{}",
            "c.txt": "",
            "x.gen.py": "",
            "keep.gen.py": "",
            "secret.py": "",
            "sub/secret.py": "",
            "sub/local_one.py": "",
            "sub/ok.py": "",
            "build/out.py": "",
            ".venv/lib.py": "",
            "node_modules/m.py": "",
            "__pycache__/c.py": "",
        }
    )
    (root / ".git").mkdir()
    assert _found(root) == ["a.py", "b.ipynb", "keep.gen.py", "sub/ok.py", "sub/secret.py"]
    everything = config_from_table({"respect-gitignore": False}, root=root)
    assert "x.gen.py" in _found(root, everything) and "sub/local_one.py" in _found(root, everything)


def test_explicit_files_and_prompt_globs(project):
    root = project(
        {"script": "#!/usr/bin/env python\n", "prompts/a/system.txt": "", "prompts/b.md": "", "notes.txt": ""}
    )
    config = config_from_table({"prompt-files": ["prompts/**/*.txt"]}, root=root)
    found = discover(["script", "."], config, str(root))
    kinds = {f.display: f.kind for f in found.files}
    assert kinds == {"script": "python", "prompts/a/system.txt": "template"}
    missing = discover(["nope.py"], config, str(root))
    assert missing.missing == ["nope.py"] and missing.files == []


def test_gitignore_pattern_semantics():
    patterns = PatternSet(["*.log", "/root_only", "docs/**/draft.md", "cache/", "!important.log", "a?c", "[0-9]x"])
    assert patterns.match("x/y/app.log") is True
    assert patterns.match("important.log") is False
    assert patterns.match("root_only") is True and patterns.match("sub/root_only") is None
    assert patterns.match("docs/draft.md") is True and patterns.match("docs/a/b/draft.md") is True
    assert patterns.match("cache", is_dir=True) is True and patterns.match("cache") is None
    assert patterns.match("cache/file.py") is True
    assert patterns.match("abc") is True and patterns.match("abbc") is None
    assert patterns.match("7x") is True
