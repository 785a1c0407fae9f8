"""Package-level promises: core import without extras, one error hierarchy."""

import subprocess
import sys

import pytest

from idnbandit.errors import (
    ConfigError,
    DependencyNotInstalled,
    IdnBanditError,
    TraceError,
    UnknownNameError,
    require,
)


def test_import_without_optional_extras():
    code = (
        "import sys, idnbandit, idnbandit.scenario, idnbandit.traces, idnbandit.agents, idnbandit.sim\n"
        "bad = sorted(m for m in ('torch', 'ray', 'matplotlib') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_hierarchy():
    for cls in (ConfigError, TraceError, UnknownNameError, DependencyNotInstalled):
        assert issubclass(cls, IdnBanditError)


def test_unknown_name_suggests_close_matches():
    err = UnknownNameError("agent", "linucbb", ["linucb", "lints", "random"])
    assert "did you mean 'linucb'" in str(err)
    assert err.suggestions[0] == "linucb"
    far = UnknownNameError("agent", "zzz", ["linucb", "random"])
    assert "known: linucb, random" in str(far)


def test_dependency_not_installed_names_the_extra():
    with pytest.raises(DependencyNotInstalled, match=r"pip install 'idnbandit\[plot\]'"):
        require("surely_not_a_module_xyz", "plot")
