"""Doctest collection for ``python -m pytest`` (setup.cfg: ``testpaths = tests idnbandit`` and
``--doctest-modules``): every docstring example of the package runs with the tests.

The package stays importable without its optional extras (torch, ray, matplotlib, pettingzoo, ...), but
a few modules need one to import and a few examples need one to run. Such a module is left out and
such an example skipped — only when the error is :class:`idnbandit.errors.DependencyNotInstalled` or a
``ModuleNotFoundError`` for one of those packages: any other import error or failure is reported.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

# scripts that rebuild the bundled traces (train torch models for minutes): not examples
collect_ignore = ["idnbandit/traces/build.py", "idnbandit/traces/build_hetero.py"]


# what the extras of pyproject.toml provide (an example may import one directly: ``import torch``)
OPTIONAL = {"torch", "ray", "matplotlib", "pettingzoo", "pyarrow", "sklearn", "stable_baselines3", "vowpalwabbit"}


def _missing_dependency(exc: BaseException | None):
    """The error behind ``exc`` (itself or a cause) that says an optional dependency is missing, else
    None: :class:`DependencyNotInstalled`, or ``ModuleNotFoundError`` for a package of :data:`OPTIONAL`."""
    from idnbandit.errors import DependencyNotInstalled

    while exc is not None:
        if isinstance(exc, DependencyNotInstalled):
            return exc
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in OPTIONAL:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def pytest_ignore_collect(collection_path: Path, config):
    """Leave out a package module whose import needs a missing optional dependency, and the test
    folders' conftest.py files as doctest modules (several share the module name ``conftest``, which
    ``--doctest-modules`` would import twice; they are loaded as conftests all the same)."""
    path = Path(collection_path)
    if path.name == "conftest.py" or any(path == ROOT / p for p in collect_ignore):
        return True  # (this hook runs before pytest's own, which reads collect_ignore: never import a script)
    if path.suffix != ".py" or not path.is_relative_to(ROOT / "idnbandit"):
        return None
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    try:
        importlib.import_module(name)
    except Exception as exc:  # anything else is reported when pytest imports the module itself
        if _missing_dependency(exc) is not None:
            return True
    return None


def _skip_on_missing_dependency(runtest):
    """``runtest`` of a docstring example, turning a stop on a missing optional dependency into a skip."""

    def run():
        try:
            runtest()
        except doctest.UnexpectedException as failure:
            missing = _missing_dependency(failure.exc_info[1])
            if missing is None:
                raise
            pytest.skip(str(missing))
        except Exception as exc:  # MultipleDoctestFailures (--doctest-continue-on-failure; not public)
            first = (getattr(exc, "failures", None) or [None])[0]
            missing = _missing_dependency(getattr(first, "exc_info", (None, None))[1])
            if missing is None:  # the examples after a missing dependency fail too: the first one decides
                raise
            pytest.skip(str(missing))

    return run


def pytest_collection_modifyitems(items):
    """Skip a docstring example that stops on a missing optional dependency (``DQN`` without torch)."""
    for item in items:
        if type(item).__name__ == "DoctestItem":
            item.runtest = _skip_on_missing_dependency(item.runtest)
