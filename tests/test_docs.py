"""The documentation runs and cites only what a reader of the repository has.

* Every ```python block of README.md and docs/*.md runs: the blocks of one file in order, as one
  script run with ``python`` in a temporary folder. A block that cannot run here is preceded by a line
  ``<!-- not-run: <reason> -->`` (the reason is shown as the skip reason; use it sparingly).
  docs/ope.md has its own test (tests/ope/test_ope_docs.py).
* Docstring examples of the package are collected by ``python -m pytest`` (``--doctest-modules`` in
  setup.cfg; the repository's conftest.py skips the ones whose optional dependency is missing).
* No document or docstring cites a file that is not in the repository (notes of the machine the
  library was written on) or a path of one machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OWN_TEST = {"ope.md"}  # docs with a test of their own
DOCS = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in OWN_TEST)

FENCE = re.compile(r"^([ \t]*)```(\w*)[^\n]*\n(.*?)^\1```[ \t]*$", re.S | re.M)  # also indented (in a list)
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.*?)\s*-->\s*$")
# what the extras of pyproject.toml provide: a block that imports a missing one is skipped
OPTIONAL = {"torch", "ray", "matplotlib", "pettingzoo", "pyarrow", "sklearn", "stable_baselines3",
            "vowpalwabbit", "PIL"}


def python_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """``(line, code, not_run_reason)`` of every ```python block of a Markdown text, in order."""
    blocks = []
    for m in FENCE.finditer(text):
        if m.group(2) not in ("python", "py"):
            continue
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = NOT_RUN.search(before)
        code = textwrap.dedent(m.group(3))
        blocks.append((text.count("\n", 0, m.start()) + 2, code, reason.group(1) if reason else None))
    return blocks


def test_python_blocks_are_found_with_their_markers():
    text = ("intro\n```python\nx = 1\n```\n\n<!-- not-run: needs a Ray cluster -->\n```python\n"
            "ray.init()\n```\n```bash\nls\n```\n* item:\n\n  ```py\n  print(x)\n  ```\n")
    assert python_blocks(text) == [(3, "x = 1\n", None), (8, "ray.init()\n", "needs a Ray cluster"),
                                   (16, "print(x)\n", None)]


def doc_script(text: str) -> tuple[str, list[str]]:
    """The runnable ```python blocks of a Markdown text as one script, each block on its own lines of
    the Markdown file (so a traceback's line numbers are the document's), and the not-run blocks."""
    lines, not_run = [], []
    for line, code, reason in python_blocks(text):
        if reason is not None:
            not_run.append(f"line {line}: {reason}")
            continue
        lines += [""] * (line - 1 - len(lines))
        lines += code.splitlines()
    return "\n".join(lines) + "\n", not_run


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_doc_python_blocks_run(doc, tmp_path):
    """As a reader would: the blocks, in order, saved as one script and run with ``python`` in an
    empty folder (a script, not ``exec``: ``run_bench(jobs=2)`` must see a real ``__main__``)."""
    text = doc.read_text(encoding="utf-8")
    script, not_run = doc_script(text)
    assert all(len(r.split(": ", 1)[1]) >= 10 for r in not_run), "give a real reason in <!-- not-run: -->"
    if not script.strip():
        pytest.skip("no python block to run" + (f" (not run: {'; '.join(not_run)})" if not_run else ""))
    path = tmp_path / (doc.stem + "_md.py")
    path.write_text(script, encoding="utf-8")
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = subprocess.run([sys.executable, path.name], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    if out.returncode != 0:
        missing = re.search(r"(ModuleNotFoundError: No module named '([\w.]+)'|DependencyNotInstalled: (\w+))",
                            out.stderr)
        name = missing and (missing.group(2) or missing.group(3))
        if name and name.split(".")[0] in OPTIONAL:
            pytest.skip(f"{doc.name} needs {name}")
    if out.returncode != 0:
        pytest.fail(f"{doc.relative_to(ROOT)} (line numbers are the document's):\n{out.stderr}", pytrace=False)


# --- references that a reader of the repository cannot follow ------------------------------------

# notes kept outside the repository while the library was written
PRIVATE_NOTES = re.compile(r"\b(ALGORITHMS\.md|ALGORITHMS §|DESIGN(\.md| §| section)|GROUNDING|"
                           r"CONVENTIONS\.md|ANCHORS\.md|ANCHORS's)")
# paths of one machine
MACHINE_PATHS = re.compile(r"(/work/|/home/\w+|/root/|/Users/\w+|\.venv/|site-packages)")


def _documents():
    """Every file a reader reads as documentation: Markdown, the sources of the package, benchmarks,
    examples and tests (docstrings and comments), and package data (built-in scenarios)."""
    yield from (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
                *sorted((ROOT / "benchmarks").glob("*.md")))
    for folder in ("idnbandit", "benchmarks", "examples", "tests"):
        yield from sorted(p for p in (ROOT / folder).rglob("*.py") if p != Path(__file__).resolve())
    yield from sorted((ROOT / "idnbandit").rglob("*.toml"))


def test_no_reference_to_files_outside_the_repository():
    bad = []
    for path in _documents():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for pattern in (PRIVATE_NOTES, MACHINE_PATHS):
                m = pattern.search(line)
                if m:
                    bad.append(f"{path.relative_to(ROOT)}:{n}: {m.group(0)!r} in {line.strip()[:90]!r}")
    assert not bad, "cite the paper or a file of the repository instead:\n" + "\n".join(bad)


# a repository path cited in a document: docs/x.md, tests/y.py, benchmarks/z.py, ...
REPO_PATH = re.compile(r"(?<![\w/.])((?:docs|tests|benchmarks|examples|idnbandit)/[\w./-]+\."
                       r"(?:py|md|toml|json|npz|png|csv))(?![\w*<])")


def test_cited_repository_files_exist():
    """A path of the repository named in a document or a package docstring exists (no renamed or
    never-committed file)."""
    bad = []
    for path in _documents():
        if path.suffix == ".py" and not path.is_relative_to(ROOT / "idnbandit"):
            continue  # scripts and tests name the files they write (``--md docs/table.md``)
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            bad += [f"{path.relative_to(ROOT)}:{n}: {m.group(1)}" for m in REPO_PATH.finditer(line)
                    if not (ROOT / m.group(1)).exists()]
    assert not bad, "cited files that are not in the repository:\n" + "\n".join(bad)


def test_reference_check_catches_both_kinds():
    assert PRIVATE_NOTES.search("see ALGORITHMS.md Part A §2") and PRIVATE_NOTES.search("(DESIGN §2)")
    assert PRIVATE_NOTES.search("# a 50 KB image (GROUNDING, Network)")
    assert MACHINE_PATHS.search("run /work/main/.venv/bin/python -m pytest")
    assert not PRIVATE_NOTES.search("docs/simulator.md, design of the event core")
    assert [m.group(1) for m in REPO_PATH.finditer("see docs/simulator_semantics.md and `tests/x.py`.")] \
        == ["docs/simulator_semantics.md", "tests/x.py"]
    assert not REPO_PATH.search("idnbandit/scenario/builtin/*.toml") and not REPO_PATH.search("a/docs/x.md")


# --- doctests ----------------------------------------------------------------------------------------

_NO_EXTRAS = """
import importlib.abc, sys
BLOCK = {"torch", "ray", "matplotlib", "pettingzoo", "pyarrow", "sklearn", "stable_baselines3"}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCK:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Blocker())
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def _pytest_without_extras(*args):
    return subprocess.run([sys.executable, "-c", _NO_EXTRAS, "-p", "no:cacheprovider", "-q", "-rs", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_doctests_are_collected_and_skip_missing_extras():
    """``python -m pytest`` collects the package's docstring examples; without the extras the modules
    that need one are left out and the examples that need one are skipped, not failed."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "idnbandit" in cfg["tool:pytest"]["testpaths"].split()
    assert "--doctest-modules" in cfg["tool:pytest"]["addopts"].split()
    out = _pytest_without_extras("--collect-only", "idnbandit")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "idnbandit/agents/linucb.py::idnbandit.agents.linucb.LinUCB" in out.stdout
    assert "multiagent.py" not in out.stdout and "traces/build.py" not in out.stdout
    out = _pytest_without_extras("idnbandit/traces/record.py")  # record_trace's example imports torch
    assert out.returncode == 0 and "1 skipped" in out.stdout, out.stdout + out.stderr


def test_every_public_class_and_function_of_agents_has_an_example():
    """river's style: each of ``idnbandit.agents.__all__`` shows a short seeded run in its docstring
    (collected as a doctest; constants such as ``FEEDBACK_MODES`` appear in the example of the
    function that uses them)."""
    import doctest

    import idnbandit.agents as agents

    finder = doctest.DocTestFinder(recurse=False)
    missing = [name for name in agents.__all__ if callable(obj := getattr(agents, name))
               and not any(t.examples for t in finder.find(obj, name))]
    assert not missing, f"no docstring example: {missing}"
    example_lines = " ".join(ex.source for name in agents.__all__ if callable(getattr(agents, name))
                             for t in finder.find(getattr(agents, name), name) for ex in t.examples)
    constants = [name for name in agents.__all__ if not callable(getattr(agents, name))]
    assert all(re.search(rf"\b{c}\b", example_lines) for c in constants), constants
