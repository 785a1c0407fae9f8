"""The package's numba cache is stamped with every source a kernel may embed (idnbandit._kernel_cache)."""

from __future__ import annotations

import os

import idnbandit
from idnbandit import _kernel_cache
from idnbandit.sim import core, loop


def _touch(path, text):
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a new mtime even on coarse clocks


def test_stamp_covers_the_folders_a_kernel_depends_on(tmp_path, monkeypatch):
    for d in ("sim", "envs", "agents"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "k.py").write_text("x = 1\n")
    monkeypatch.setattr(_kernel_cache, "PACKAGE", tmp_path)
    before = {d: _kernel_cache.source_stamp(tmp_path / d / "k.py") for d in ("sim", "envs", "agents")}
    _touch(tmp_path / "sim" / "other.py", "y = 2\n")  # a new helper in sim/ (e.g. the event core)
    after = {d: _kernel_cache.source_stamp(tmp_path / d / "k.py") for d in ("sim", "envs", "agents")}
    assert after["sim"] != before["sim"] and after["envs"] != before["envs"]  # the drivers and env kernels
    assert after["agents"] == before["agents"]  # agents embed nothing of the simulator
    _touch(tmp_path / "agents" / "k.py", "x = 3\n")
    assert _kernel_cache.source_stamp(tmp_path / "agents" / "k.py") != before["agents"]


def test_package_kernels_use_the_package_locator():
    assert _kernel_cache.install()  # idempotent; installed by `import idnbandit`
    for disp in (core.advance_, loop.drive_fused_):
        locator = disp._cache._impl.locator
        assert getattr(type(locator), "_idnbandit", False)
        assert locator.get_source_stamp() == _kernel_cache.source_stamp(disp.py_func.__code__.co_filename)
    assert idnbandit.__version__
