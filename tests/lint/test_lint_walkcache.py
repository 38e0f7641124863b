"""Discovery's folder records (walkcache.py): a warm walk replays unchanged folders and sees every change."""

from __future__ import annotations

import itertools
import os

import pytest

from llmguard.lint import LintConfig, lint_paths, walkcache
from llmguard.lint import walk as walk_module
from llmguard.lint.discover import discover
from llmguard.lint.walkcache import FolderMemo

_CLOCK = itertools.count(1_600_000_000)


def _touch(path) -> None:
    """Give `path` a new mtime, as time passing would (the test runs faster than the clock's tick)."""
    seconds = next(_CLOCK)
    os.utime(path, ns=(seconds * 10**9, seconds * 10**9))


def _write(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        _touch(folder)


@pytest.fixture
def settled(monkeypatch):
    """Trust stamps however recent (the files of a test are seconds old)."""
    monkeypatch.setattr(walkcache, "RACY_NS", 0)


def _files(root, memo: FolderMemo | None, config: LintConfig | None = None) -> list[str]:
    found = discover([str(root)], config or LintConfig(root=root), str(root), memo=memo)
    return [f.display for f in found.files]


def _scans(monkeypatch) -> list[str]:
    listed: list[str] = []
    real = os.scandir

    def counting(path):  # noqa: ANN001, ANN202
        listed.append(str(path))
        return real(path)

    monkeypatch.setattr(walk_module.os, "scandir", counting)
    return listed


def test_a_warm_walk_lists_no_folder_again(tmp_path, settled, monkeypatch):
    _write(tmp_path, {".gitignore": "gen/\n*.tmp.py\n", "a/x.py": "", "a/b/y.py": "", "gen/z.py": "", "a/t.tmp.py": ""})
    memo = FolderMemo({})
    cold = _files(tmp_path, memo)
    assert cold == ["a/b/y.py", "a/x.py"]
    assert memo.changed
    memo.changed = False
    listed = _scans(monkeypatch)
    warm = _files(tmp_path, memo)
    assert listed == [] and not memo.changed
    assert warm == cold == _files(tmp_path, None)


@pytest.mark.parametrize(
    "change",
    ["add", "remove", "rename", "subfolder", "own gitignore", "edit gitignore", "remove gitignore", "unreadable"],
)
def test_every_change_is_seen(tmp_path, settled, change):
    _write(tmp_path, {".gitignore": "*.skip.py\n", "a/x.py": "", "a/b/y.py": "", "a/b/w.skip.py": ""})
    memo = FolderMemo({})
    _files(tmp_path, memo)
    b = tmp_path / "a" / "b"
    if change == "add":
        (b / "new.py").write_text("")
        _touch(b)
    elif change == "remove":
        (b / "y.py").unlink()
        _touch(b)
    elif change == "rename":
        (b / "y.py").rename(b / "y2.py")
        _touch(b)
    elif change == "subfolder":
        (b / "c").mkdir()
        (b / "c" / "deep.py").write_text("")
        _touch(b / "c")
        _touch(b)
    elif change == "own gitignore":
        (b / ".gitignore").write_text("y.py\n")
        _touch(b / ".gitignore")
        _touch(b)
    elif change == "edit gitignore":  # the folder holding it does not change: its stamp is checked
        (tmp_path / ".gitignore").write_text("*.skip.py\nx.py\n")
        _touch(tmp_path / ".gitignore")
    elif change == "remove gitignore":
        (tmp_path / ".gitignore").unlink()
        _touch(tmp_path)
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads every folder")
        b.chmod(0)
    try:
        warm = discover([str(tmp_path)], LintConfig(root=tmp_path), str(tmp_path), memo=memo)
        fresh = discover([str(tmp_path)], LintConfig(root=tmp_path), str(tmp_path))
    finally:
        b.chmod(0o755) if change == "unreadable" else None
    assert (warm.files, warm.unreadable) == (fresh.files, fresh.unreadable)


def test_recent_folders_and_folders_with_links_are_not_recorded(tmp_path):
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "a.py").write_text("")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "b.py").write_text("")
    (tmp_path / "old" / "link.py").symlink_to(tmp_path / "old" / "b.py")
    for folder in (tmp_path, tmp_path / "old"):
        _touch(folder)
    memo = FolderMemo({})
    _files(tmp_path, memo)
    assert str(tmp_path / "fresh") not in memo.records  # changed in the last RACY_NS: its mtime may lag
    assert str(tmp_path / "old") not in memo.records  # a link's target can change without its folder


def test_a_file_added_right_after_a_run_is_linted_by_the_next(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "ok.py").write_text("x = 1\n")
    config = LintConfig(root=tmp_path)
    assert lint_paths([str(tmp_path)], config).findings == []
    (tmp_path / "pkg" / "bad.py").write_text("from openai import OpenAI\nclient = OpenAI()\n")
    result = lint_paths([str(tmp_path)], config)
    assert [f.code for f in result.findings] == ["LG201"]
    assert result.files == 2


def test_follow_symlinks_never_uses_the_records(tmp_path, settled, monkeypatch):
    _write(tmp_path, {"a/x.py": ""})
    memo = FolderMemo({})
    found = discover([str(tmp_path)], LintConfig(root=tmp_path), str(tmp_path), follow_symlinks=True, memo=memo)
    assert [f.display for f in found.files] == ["a/x.py"] and memo.records == {}
