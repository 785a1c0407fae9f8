"""Agent kernels' cache identities (idnbandit._kernel_ids) and the supported numba range (idnbandit._kernel_cache).

The fused loop is compiled once per set of agent kernels and cached on disk under the kernels'
identities: an identity must change with the code the loop embeds (else a process runs another
kernel's machine code) and stay the same across processes for the same code (else every process
recompiles the loop).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numba
import pytest
from numba import njit

from idnbandit import _kernel_cache, _kernel_ids
from idnbandit.agents import make_agent, registry
from idnbandit.errors import IdnBanditError
from idnbandit.sim import loop, simulate

SCRIPT = '''
import json
import numpy as np
from numba import njit
from idnbandit.agents import Agent
from idnbandit.sim import loop, simulate


@njit
def select(state, x, u):
    return {choice}


@njit
def update(state, x, a, r, rs):
    pass


class Const(Agent):
    name = "const"
    _select_kernel = select
    _update_kernel = update

    def _init_state(self):
        return (np.zeros(1),)


res = simulate("hi-two-tier", Const(2, 4), 300, seed=1)
print(json.dumps({{"rates": res.option_rates.tolist(), "misses": len(loop.drive_fused_.stats.cache_misses)}}))
'''


def _run(script, **env):
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **env}, cwd=script.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_scripts_in_one_folder_never_share_a_kernel(tmp_path):
    """Issue 18: two ``__main__`` scripts in one folder, each with ``@njit def select``, share numba's cache
    (the inherited NUMBA_CACHE_DIR or the package's own); the second used to run the first one's kernel."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text(SCRIPT.format(choice=0))
    b.write_text(SCRIPT.format(choice=1))
    assert _run(a)["rates"] == [1.0, 0.0]
    assert _run(b)["rates"] == [0.0, 1.0]
    again = _run(a)
    assert again["rates"] == [1.0, 0.0]
    assert again["misses"] == 0  # a new process loads the fused loop of the same kernels from the cache


# ---------------------------------------------------------------------- identities
def _module(tmp_path, name, source):
    """Import ``source`` as module ``name`` from a file (kernels need a source file to be identified)."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


KERNELS = '''
import math
import numpy as np
from numba import njit
import {helpers}

K = {k}
W = np.array({w})


@njit({opts})
def _helper(x):
    return x {op} 1.0


@njit
def select(state, x, u):
    return int(_helper(x[0]) * K + W[0] + math.floor(u[0]) + {helpers}.h(x[0]))
'''


def _identity(tmp_path, monkeypatch, tag, k=2, w="[1.0]", opts="", op="+", h="x * 2.0"):
    monkeypatch.setattr(_kernel_cache, "folder_stamp", lambda folder: "stamp")  # the walk only
    sub = tmp_path / tag
    sub.mkdir()
    _module(sub, "idk_helpers", f"from numba import njit\n\n@njit\ndef h(x):\n    return {h}\n")
    mod = _module(sub, "idk_kernels", KERNELS.format(helpers="idk_helpers", k=k, w=w, opts=opts, op=op))
    ident = _kernel_ids.kernel_identity(mod.select)
    assert ident is not None
    return ident


def test_identity_follows_the_code_and_the_values_it_embeds(tmp_path, monkeypatch):
    base = _identity(tmp_path, monkeypatch, "base")
    assert _identity(tmp_path, monkeypatch, "same") == base  # same code, another file: same compiled loop
    assert _identity(tmp_path, monkeypatch, "k", k=3) != base  # a global number
    assert _identity(tmp_path, monkeypatch, "w", w="[2.0]") != base  # a global array
    assert _identity(tmp_path, monkeypatch, "op", op="-") != base  # a called numba function's code
    assert _identity(tmp_path, monkeypatch, "opts", opts="fastmath=True") != base  # its numba options
    assert _identity(tmp_path, monkeypatch, "h", h="x * 3.0") != base  # a function read from a module


def test_identity_covers_the_source_folder(tmp_path):
    mod = _module(tmp_path, "kernels_folder", "from numba import njit\n\n@njit\ndef f(x):\n    return x\n")
    before = _kernel_ids.kernel_identity(mod.f)
    (tmp_path / "other.py").write_text("y = 1\n")  # e.g. an @overload the walk cannot see
    _kernel_cache._folder_digest.cache_clear()
    assert _kernel_ids.kernel_identity(mod.f) != before


def test_unidentifiable_kernels_keep_a_random_uuid(tmp_path):
    ns = {"njit": njit}
    exec("@njit\ndef typed_at_the_prompt(x):\n    return x\n", ns)  # no source file
    assert _kernel_ids.kernel_identity(ns["typed_at_the_prompt"]) is None
    mod = _module(tmp_path, "kernels_unknown", """
        from numba import njit
        CONFIG = object()  # a global of no known kind

        @njit
        def f(x):
            return CONFIG
    """)
    assert _kernel_ids.kernel_identity(mod.f) is None
    _kernel_ids.stabilise_kernel_ids(mod.f)
    assert not str(mod.f._uuid).startswith(_kernel_ids.PREFIX)


def test_recursive_kernels_and_plain_constants_are_identified(tmp_path):
    mod = _module(tmp_path, "kernels_rec", """
        import enum
        from numba import njit

        class Mode(enum.IntEnum):
            FAST = 1

        LIMITS = (1, 2.5, None, frozenset({"a", "b"}))

        @njit
        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)

        @njit
        def fill(a):
            a[...] = Mode.FAST + LIMITS[0]
            return a[1:]
    """)
    assert _kernel_ids.kernel_identity(mod.fact) is not None
    assert _kernel_ids.kernel_identity(mod.fill) is not None


def _package_kernels():
    """Every numba function defined in ``idnbandit.agents`` (the registry imports all its modules) and the
    fused loop's own ``certain``."""
    registry.agent_names()
    out = {"idnbandit.sim.loop.certain": loop.certain}
    for mod_name, mod in sorted(sys.modules.items()):
        if mod_name.startswith("idnbandit.agents.") and mod is not None:
            for d in vars(mod).values():
                py = getattr(d, "py_func", None)
                if py is not None and py.__module__ == mod_name:
                    out[f"{mod_name}.{py.__qualname__}"] = d
    return out


def test_package_kernels_have_the_same_identity_in_every_process():
    kernels = _package_kernels()
    assert {"linucb_select", "linucb_pruned_select", "lints_update"} <= {k.rpartition(".")[2] for k in kernels}
    here = {n: _kernel_ids.kernel_identity(d) for n, d in kernels.items()}
    assert None not in here.values()  # every package kernel hits the cache across processes
    code = ("import json, test_kernel_identity as t\n"
            "from idnbandit import _kernel_ids\n"
            "print(json.dumps({n: _kernel_ids.kernel_identity(d) for n, d in t._package_kernels().items()}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(__file__), env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here


def test_stabilise_sets_the_identity_once(tmp_path):
    mod = _module(tmp_path, "kernels_once", "from numba import njit\n\n@njit\ndef g(x):\n    return x\n")
    _kernel_ids.stabilise_kernel_ids(mod.g)
    assert mod.g._uuid == _kernel_ids.kernel_identity(mod.g)
    _kernel_ids.stabilise_kernel_ids(mod.g)  # no second _set_uuid (numba asserts there is none)


# ---------------------------------------------------------------------- numba versions
@pytest.fixture
def numba_unchecked(monkeypatch):
    monkeypatch.setattr(_kernel_cache, "_numba_checked", False)
    monkeypatch.delenv(_kernel_cache.ALLOW_UNTESTED, raising=False)
    return monkeypatch


@pytest.mark.parametrize("version", ["0.58.1", "0.69.0", "1.0.0", "nonsense"])
def test_an_untested_numba_fails_at_the_first_simulation(numba_unchecked, version):
    numba_unchecked.setattr(numba, "__version__", version)
    with pytest.raises(IdnBanditError, match=rf"numba: {version} is not allowed; it must be >=0\.59,<0\.69"):
        simulate("hi-two-tier", make_agent("always-local", 2, 4), 10)
    numba_unchecked.setenv(_kernel_cache.ALLOW_UNTESTED, "1")
    with pytest.warns(RuntimeWarning, match="tested with"):
        _kernel_cache.require_tested_numba()


def test_the_tested_range_accepts_the_installed_numba(numba_unchecked):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _kernel_cache.require_tested_numba()
    lo, hi = _kernel_cache.NUMBA_TESTED
    assert _kernel_cache.NUMBA_RANGE == f">={lo[0]}.{lo[1]},<{hi[0]}.{hi[1] + 1}"
    pyproject = _kernel_cache.PACKAGE.parent / "pyproject.toml"
    if pyproject.is_file():  # a source checkout: the dependency says the same
        assert f'"numba{_kernel_cache.NUMBA_RANGE}"' in pyproject.read_text()


def test_a_numba_without_the_internals_fails_even_when_allowed(numba_unchecked):
    import numba.np.arrayobj

    numba_unchecked.delattr(numba.np.arrayobj, "make_array")
    numba_unchecked.setenv(_kernel_cache.ALLOW_UNTESTED, "1")
    with pytest.raises(IdnBanditError, match="no numba.np.arrayobj.make_array"):
        _kernel_cache.require_tested_numba()


def test_import_works_on_a_numba_without_the_internals():
    code = ("import numba, numba.np.arrayobj\n"
            "del numba.np.arrayobj.make_array\n"
            "numba.__version__ = '0.99.0'\n"
            "import idnbandit.sim\n"
            "from idnbandit.agents import make_agent\n"
            "try:\n"
            "    idnbandit.sim.simulate('hi-two-tier', make_agent('always-local', 2, 4), 10)\n"
            "except idnbandit.IdnBanditError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "numba: 0.99.0 is not allowed" in out.stdout


def test_numba_keeps_rebuilt_dispatchers_alive():
    from numba.core.dispatcher import _MemoMixin

    assert _MemoMixin._recent.maxlen >= _kernel_cache.KEEP_REBUILT  # this process: whichever came first
    code = ("import sys, idnbandit\n"
            "from numba.core import config\n"
            "from numba.core.dispatcher import _MemoMixin\n"
            "print(config.FUNCTION_CACHE_SIZE, _MemoMixin._recent.maxlen)")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_FUNCTION_CACHE_SIZE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == [str(_kernel_cache.KEEP_REBUILT)] * 2  # numba's public setting
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**env, "NUMBA_FUNCTION_CACHE_SIZE": "1000"})
    assert out.stdout.split() == ["1000", "1000"]  # the user's own setting wins
