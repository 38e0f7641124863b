"""Hostile input (issue 12, "Robustness"): no crash, no hang, every unreadable input an LG000 finding,
and the rest of the run intact. Inputs that crash libcst's native parser run in a subprocess."""

from __future__ import annotations

import faulthandler
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import make_notebook

from llmguard.lint import LintConfig, lint_notebook_source, lint_paths, lint_source

GOOD = "import openai\nclient = openai.OpenAI()\n"  # one LG201 at line 2
DEEP = {  # each segfaulted libcst's native parser (and with it the whole run)
    "deep_parens.py": "import openai\nx = " + "(" * 5000 + "1" + ")" * 5000 + "\n",
    "deep_lists.py": "import openai\nx = " + "[" * 5000 + "]" * 5000 + "\n",
    "deep_calls.py": "import openai\nx = " + "f(" * 3000 + ")" * 3000 + "\n",
}


def _lint_subprocess(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmguard.lint", "lint", ".", "--no-cache", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _codes_by_file(findings: list[dict]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in findings:
        out.setdefault(f["file"], []).append(f["code"])
    return out


# -- 1. deep nesting -------------------------------------------------------------------------------
@pytest.mark.parametrize("jobs", ["2", "1"])  # worker processes, and everything in the main process
def test_deep_nesting_is_an_lg000_and_the_run_goes_on(project, jobs):
    files = {f"pkg/good{i:02d}.py": GOOD for i in range(60)}
    files.update({f"pkg/{name}": text for name, text in DEEP.items()})
    root = project(files)
    proc = _lint_subprocess(root, "--format", "json", "--jobs", jobs)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    by_file = _codes_by_file(json.loads(proc.stdout))
    assert {name: codes for name, codes in by_file.items() if name.startswith("pkg/good")} == {
        f"pkg/good{i:02d}.py": ["LG201"] for i in range(60)
    }
    for name in DEEP:
        assert by_file[f"pkg/{name}"] == ["LG000"]
    messages = {f["file"]: f["message"] for f in json.loads(proc.stdout) if f["code"] == "LG000"}
    assert messages["pkg/deep_parens.py"] == "syntax error: too many nested parentheses (not checked)"


def test_deep_nesting_in_costs_and_fix(project):
    root = project({"good.py": GOOD, **DEEP})
    costs = subprocess.run(
        [sys.executable, "-m", "llmguard.lint", "lint", ".", "--costs", "--format", "json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert costs.returncode == 0, (costs.returncode, costs.stderr[-2000:])
    for name in DEEP:
        assert f"{name}: cannot parse" in costs.stderr
    fixed = _lint_subprocess(root, "--fix", "--format", "json")
    assert fixed.returncode == 1, (fixed.returncode, fixed.stderr[-2000:])
    assert "timeout=" in (root / "good.py").read_text()
    assert sorted(f["file"] for f in json.loads(fixed.stdout)) == sorted(DEEP)


def test_a_worker_that_dies_costs_only_its_own_file(project, monkeypatch):
    """If a worker process dies anyway, its file gets an LG000, the others are linted, exit code 2."""
    from llmguard.lint import engine as engine_module

    parent = os.getpid()
    real = engine_module.Engine.lint_bytes

    def lint_bytes(self, data, path, kind, ignored=frozenset()):  # noqa: ANN001, ANN202
        if path.endswith("boom.py") and os.getpid() != parent:
            faulthandler.disable()  # pytest's handler would print the dying worker's stack
            os.kill(os.getpid(), signal.SIGSEGV)
        return real(self, data, path, kind, ignored)

    monkeypatch.setattr(engine_module.Engine, "lint_bytes", lint_bytes)
    root = project({**{f"good{i:02d}.py": GOOD for i in range(40)}, "boom.py": GOOD})
    monkeypatch.chdir(root)
    result = lint_paths(["."], LintConfig(root=root), use_cache=False, jobs=2)
    by_file: dict[str, list[str]] = {}
    for f in result.findings:
        by_file.setdefault(f.path, []).append(f.code)
    assert by_file.pop("boom.py") == ["LG000"]
    assert by_file == {f"good{i:02d}.py": ["LG201"] for i in range(40)}
    assert len(result.errors) == 1 and "boom.py" in result.errors[0] and "crashed" in result.errors[0]


# -- 2. recursion in libcst's Python code ----------------------------------------------------------
def test_deep_but_valid_code_is_linted():
    """Nesting CPython accepts but libcst's visitors and code generation recurse through (was RecursionError)."""
    shapes = {
        "lambdas": "f = " + "lambda: " * 600 + "1",
        "or-chain": "x = " + " or ".join(["a"] * 600),
        "implicit concatenation": "PARTS = (\n" + "\n".join(['    "piece "'] * 600) + "\n)",
        "subscripts": "x = a" + "[0]" * 600,
    }
    for name, code in shapes.items():
        findings = lint_source(GOOD + code + "\n", "deep.py")
        assert [(f.code, f.line) for f in findings] == [("LG201", 2)], name


def test_nested_lambdas_past_the_limit_are_lg000(cli, project):
    root = project({"lambdas.py": GOOD + "f = " + "lambda: " * 3000 + "1\n", "good.py": GOOD})
    result = cli(["lint", ".", "--format", "json", "--no-cache"], cwd=root)
    assert result.code == 1, result.err
    found = {(f["file"], f["code"]) for f in result.json()}
    assert found == {("lambdas.py", "LG000"), ("good.py", "LG201")}
    assert "too complex to lint" in next(f["message"] for f in result.json() if f["file"] == "lambdas.py")


# -- 3. superlinear parse time ---------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_inputs_too_complex_to_lint_are_lg000(cli, project):
    root = project(
        {
            "sum5k.py": GOOD + "x = " + "+".join(["1"] * 5_000) + "\n",
            "sum100k.py": GOOD + "x = " + "+".join(["1"] * 100_000) + "\n",
            # each chain is under the depth limit; together they are over the work budget
            "chains.py": GOOD + "".join(f"x{i} = a" + "[0]" * 990 + "\n" for i in range(20)),
            "good.py": GOOD,
        }
    )
    result = cli(["lint", ".", "--format", "json", "--no-cache"], cwd=root)
    assert result.code == 1, result.err
    by_file = {}
    for f in result.json():
        by_file.setdefault(f["file"], []).append(f)
    assert [f["code"] for f in by_file.pop("good.py")] == ["LG201"]
    assert sorted(by_file) == ["chains.py", "sum100k.py", "sum5k.py"]
    for name, items in by_file.items():
        assert [f["code"] for f in items] == ["LG000"], name
        assert items[0]["message"].startswith("too complex to lint"), items[0]["message"]
    assert by_file["sum5k.py"][0]["line"] == 3


def test_long_flat_code_is_still_linted():
    """The limits are on nesting, not size: long lists, argument lists and comparison chains are fine."""
    code = (
        "x = ["
        + ", ".join(["1"] * 20_000)
        + "]\n"
        + "y = f("
        + ", ".join(["a"] * 5_000)
        + ")\n"
        + "z = "
        + " < ".join(["a"] * 2_000)
        + "\n"
        + "w = "
        + " + ".join(["1"] * 150)
        + "\n"
    )
    assert [f.code for f in lint_source(GOOD + code, "flat.py")] == ["LG201"]


# -- 4. symlinks -----------------------------------------------------------------------------------
def _symlink_tree(project):  # noqa: ANN001, ANN202
    root = project({"src/a/one.py": GOOD, "src/b/two.py": GOOD, "outside/three.py": GOOD})
    os.symlink(root / "src", root / "src" / "a" / "loop")  # a/loop -> src: a cycle
    os.symlink(root / "src" / "a", root / "src" / "b" / "to_a")  # a second way into a
    os.symlink(root / "outside", root / "src" / "ext")  # a folder outside the tree
    os.symlink(root / "src" / "a" / "one.py", root / "src" / "b" / "one_link.py")  # a file link: linted
    return root


@pytest.mark.timeout(60)
def test_directory_symlinks_are_not_followed_by_default(project):
    from llmguard.lint.discover import discover

    root = _symlink_tree(project)
    found = discover(["src"], LintConfig(root=root), str(root))
    assert [f.display for f in found.files] == ["src/a/one.py", "src/b/one_link.py", "src/b/two.py"]


@pytest.mark.timeout(60)
def test_follow_symlinks_visits_each_folder_once(project, cli):
    from llmguard.lint.discover import discover

    root = _symlink_tree(project)
    found = discover(["src"], LintConfig(root=root), str(root), follow_symlinks=True)
    shown = [f.display for f in found.files]
    assert len(shown) == 4 and len({os.path.realpath(f.path) for f in found.files}) == 3
    assert "src/ext/three.py" in shown and "src/b/two.py" in shown
    result = cli(["lint", "src", "--follow-symlinks", "--format", "json", "--no-cache"], cwd=root)
    assert result.code == 1 and len(result.json()) == 4


# -- 5. unreadable folders -------------------------------------------------------------------------
def _deny_scandir(monkeypatch, denied: Path) -> None:
    real = os.scandir

    def scandir(path="."):  # noqa: ANN001, ANN202
        if os.path.abspath(os.fspath(path)) == str(denied):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unreadable_folder_is_reported(cli, project, monkeypatch):
    root = project({"ok/good.py": GOOD, "locked/hidden.py": GOOD})
    _deny_scandir(monkeypatch, root / "locked")
    linted = [("ok/good.py", "LG201")]
    for args, expected in (["."], linted), (["locked"], []), (["locked", "ok"], linted):
        result = cli(["lint", *args, "--format", "json", "--no-cache"], cwd=root)
        assert result.code == 2, (args, result.out, result.err)
        assert "locked: cannot read folder: Permission denied" in result.err
        assert [(f["file"], f["code"]) for f in result.json()] == expected
    text = cli(["lint", "locked", "--no-cache"], cwd=root)
    assert "All checks passed" not in text.out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_unreadable_folder_for_real(tmp_path):
    """The same with real permissions: chmod 000, run as an unprivileged user when the tests run as root."""
    command = [sys.executable, "-m", "llmguard.lint", "lint", ".", "--no-cache"]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and no setpriv to drop privileges")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    base = Path(tempfile.mkdtemp(prefix="llmguard-perm-"))  # pytest's tmp_path is 0700 root-only
    try:
        os.chmod(base, 0o755)
        (base / "ok").mkdir()
        (base / "ok" / "good.py").write_text(GOOD)
        (base / "locked").mkdir()
        (base / "locked" / "hidden.py").write_text(GOOD)
        os.chmod(base / "locked", 0)
        import llmguard

        # the unprivileged user may not read the venv's editable-install hook: point it at the source
        source = str(Path(llmguard.__file__).resolve().parents[1])
        env = {**os.environ, "LLMGUARD_HOME": str(base / "home"), "PYTHONPATH": source}
        os.mkdir(base / "home")
        os.chmod(base / "home", 0o777)
        proc = subprocess.run(command, cwd=base, capture_output=True, text=True, timeout=120, env=env)
        if ("Permission denied" in proc.stderr and "python" in proc.stderr.split(":")[0]) or (
            "No module named" in proc.stderr
        ):
            pytest.skip(f"the unprivileged user cannot run llmguard from here: {proc.stderr[:200]}")
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert "locked: cannot read folder: Permission denied" in proc.stderr
        assert "ok/good.py:2:10: LG201" in proc.stdout
    finally:
        os.chmod(base / "locked", stat.S_IRWXU)
        shutil.rmtree(base, ignore_errors=True)


# -- 6-8. notebooks --------------------------------------------------------------------------------
def test_notebook_metadata_of_the_wrong_type():
    for metadata in (
        {"kernelspec": "python"},
        {"language_info": 5},
        {"kernelspec": ["x"], "language_info": None},
        [1, 2],
        "python",
    ):
        nb = json.loads(make_notebook([("code", GOOD)]))
        nb["metadata"] = metadata
        assert [(f.code, f.cell, f.line) for f in lint_notebook_source(json.dumps(nb))] == [("LG201", 1, 2)], metadata


def test_notebook_json_nested_too_deeply():
    findings = lint_notebook_source('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert [f.code for f in findings] == ["LG000"]
    assert "invalid notebook" in findings[0].message


def test_one_bad_cell_does_not_poison_the_notebook():
    cells = [("code", "import openai\nclient = openai.OpenAI(timeout=5)"), ("code", "def stub():")]
    cells += [("markdown", "text")]
    cells += [("code", f"r{i} = client.chat.completions.create(model='m', messages=[])") for i in range(60)]
    cells += [("code", "for x in (:\n    pass"), ("code", "client.responses.create(model='m', input='x')")]
    found = [(f.code, f.cell, f.line) for f in lint_notebook_source(make_notebook(cells))]
    assert found == [("LG000", 2, 1)] + [("LG301", cell, 1) for cell in range(4, 64)] + [
        ("LG000", 64, 1),
        ("LG301", 65, 1),
    ]


def test_shell_continuations_and_unusual_line_breaks_in_cells():
    pip = "!pip install -qU \\\n    openai \\\n    anthropic\nimport openai\nclient = openai.OpenAI()"
    assert [(f.code, f.cell, f.line) for f in lint_notebook_source(make_notebook([("code", pip)]))] == [("LG201", 1, 5)]
    indented = "if True:\n    !pip install \\\n        openai\n    import openai\nclient = openai.OpenAI()"
    assert [(f.code, f.line) for f in lint_notebook_source(make_notebook([("code", indented)]))] == [("LG201", 5)]
    for char in ("\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c"):
        cell = f"import openai\nx = 'a{char}b'\nclient = openai.OpenAI()"
        found = [(f.code, f.cell, f.line) for f in lint_notebook_source(make_notebook([("code", cell)]))]
        assert found == [("LG201", 1, 3)], repr(char)


def test_unusual_line_breaks_keep_suppressions_on_their_line():
    for char in ("\u2028", "\x0c", "\x85"):
        source = f"import openai\ns = 'a{char}b'\nclient = openai.OpenAI()  # noqa: LG201\nother = openai.OpenAI()\n"
        assert [(f.code, f.line) for f in lint_source(source, "x.py")] == [("LG201", 4)], repr(char)


# -- 9. exit codes ---------------------------------------------------------------------------------
def test_a_rule_crash_exits_2_and_names_the_file(cli, project, monkeypatch):
    from llmguard.lint.rules.lg301_missing_max_tokens import MissingMaxTokens

    def boom(self, ctx):  # noqa: ANN001, ANN202
        raise ValueError("rule bug")

    monkeypatch.setattr(MissingMaxTokens, "check", boom)
    root = project({"a.py": GOOD, "b.py": GOOD})
    result = cli(["lint", ".", "--format", "json", "--no-cache"], cwd=root)
    assert result.code == 2
    assert "a.py" in result.err and "b.py" in result.err and "LG301" in result.err
    assert {(f["file"], f["code"]) for f in result.json() if f["code"] == "LG201"} == {
        ("a.py", "LG201"),
        ("b.py", "LG201"),
    }


def test_an_engine_crash_exits_2_and_names_the_file(cli, project, monkeypatch):
    from llmguard.lint import engine as engine_module

    real = engine_module.Engine.lint_bytes

    def lint_bytes(self, data, path, kind, ignored=frozenset()):  # noqa: ANN001, ANN202
        if path.endswith("b.py"):
            raise KeyError("engine bug")
        return real(self, data, path, kind, ignored)

    monkeypatch.setattr(engine_module.Engine, "lint_bytes", lint_bytes)
    root = project({"a.py": GOOD, "b.py": GOOD})
    result = cli(["lint", ".", "--format", "json", "--no-cache"], cwd=root)
    assert result.code == 2
    assert "b.py" in result.err and "KeyError" in result.err
    assert [(f["file"], f["code"]) for f in result.json()] == [("a.py", "LG201"), ("b.py", "LG000")]
    again = cli(["lint", ".", "--format", "json"], cwd=root)  # an internal error is never cached
    monkeypatch.setattr(engine_module.Engine, "lint_bytes", real)
    assert again.code == 2
    assert [f["code"] for f in cli(["lint", ".", "--format", "json"], cwd=root).json()] == ["LG201", "LG201"]


def test_a_crash_outside_any_file_exits_2(cli, project, monkeypatch):
    from llmguard.lint import runner

    def run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("runner bug")

    monkeypatch.setattr(runner, "run", run)
    result = cli(["lint", "."], cwd=project({"a.py": GOOD}))
    assert result.code == 2
    assert "internal error" in result.err and "RuntimeError: runner bug" in result.err
