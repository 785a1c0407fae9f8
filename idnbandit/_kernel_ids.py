"""Stable identities for agent kernels, so the fused loop's on-disk numba cache hits across processes.

The fused loop (:func:`idnbandit.sim.loop.drive_fused_`) takes an agent's ``select`` / ``update`` /
``prob`` dispatchers as arguments, so numba compiles one specialisation of the loop per kernel set,
with the kernels' machine code inlined into it, and caches it on disk keyed by the argument types. A
dispatcher's type is identified by the dispatcher's UUID, random in each process: without a stable
UUID every new process recompiles the loop for every agent (5-20 s each; numba issue #6264). With a
stable UUID, that UUID is the *only* thing that tells one cached loop from another, so it must
change whenever the code the loop embeds changes. :func:`kernel_identity` derives it from:

* the kernel's own code: bytecode, constants and names of its code object and of every code object
  nested in it, defaults, closure values, numba options (``fastmath``, ``inline``, ...) and locals;
* every global the code names, by value: numbers, strings, tuples and numpy arrays (numba freezes
  globals into the machine code), and, recursively, the code of the numba functions, intrinsics and
  Python functions it calls (directly or as attributes of a module it names); objects of numba,
  numpy and the standard library by their qualified name (their code is fixed by the versions below);
* the Python, numba and numpy versions;
* a stamp of the source folder of every non-library function met on the way (the package's stamp,
  :func:`idnbandit._kernel_cache.source_stamp`, for its own kernels; a hash of the folder's ``*.py``
  files otherwise), which also covers what the walk above cannot see (e.g. an ``@overload``
  implementation of a function the kernel calls).

The kernel's module name and qualified name are part of it, its file path is not: two kernels with
the same code and values compile to the same loop, wherever their files live. Two ``__main__``
scripts in one folder that both define ``select`` thus get different identities as soon as their
code differs (the bug of issue 18: the second script ran the first one's kernel).

A kernel whose identity cannot be derived (a global of an unknown kind, no source file: a function
typed at the prompt or in a notebook) keeps numba's random UUID: it is compiled in each process,
never confused with another.
"""

from __future__ import annotations

import builtins
import enum
import hashlib
import sys
import sysconfig
import types
from pathlib import Path

import numpy as np

from . import _kernel_cache

__all__ = ["kernel_identity", "stabilise_kernel_ids"]

PREFIX = "idnbandit-kernel:"

# top-level packages whose objects are identified by name (their behaviour is fixed by the versions
# in the identity): numba, numpy and the standard library (a user module that shadows a standard
# module's name is not taken for it: its file must be in the standard library's folder)
_LIBRARIES = frozenset({"numba", "numpy", "llvmlite", "builtins"})
_STDLIB_NAMES = frozenset(getattr(sys, "stdlib_module_names", ()))
_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


class _Unknown(Exception):
    """A value the identity cannot describe: the kernel keeps numba's random UUID."""


def _is_library(module: str | None) -> bool:
    top = (module or "").partition(".")[0]
    if top in _LIBRARIES:
        return True
    if top not in _STDLIB_NAMES:
        return False
    src = getattr(sys.modules.get(top), "__file__", None)  # None: built into the interpreter
    return src is None or Path(src).resolve().is_relative_to(_STDLIB)


def _canon(v, depth: int = 0) -> str:
    """A repr of a plain value that is the same in every process (sets and dicts sorted), or _Unknown."""
    if depth > 20:
        raise _Unknown("nested too deeply")
    if isinstance(v, enum.Enum):  # before int: IntEnum members are ints
        return f"enum:{type(v).__module__}.{type(v).__qualname__}.{v.name}:{_canon(v.value, depth + 1)}"
    if v is None or v is Ellipsis or isinstance(v, (bool, int, float, complex, str, bytes)):
        return f"{type(v).__name__}:{v!r}"
    if isinstance(v, slice):
        return f"slice({_canon(v.start, depth + 1)},{_canon(v.stop, depth + 1)},{_canon(v.step, depth + 1)})"
    if isinstance(v, np.ndarray):
        if v.dtype.hasobject:
            raise _Unknown("object array")
        a = np.ascontiguousarray(v)
        return f"ndarray:{a.dtype.str}:{a.shape}:{int(v.flags.writeable)}:{hashlib.sha256(a.tobytes()).hexdigest()}"
    if isinstance(v, np.generic):
        return f"np:{v.dtype.str}:{v!r}"
    if isinstance(v, np.dtype):
        return f"dtype:{v.str}"
    if isinstance(v, (tuple, list)):
        return f"{type(v).__name__}(" + ",".join(_canon(x, depth + 1) for x in v) + ")"
    if isinstance(v, (set, frozenset)):
        return f"{type(v).__name__}(" + ",".join(sorted(_canon(x, depth + 1) for x in v)) + ")"
    if isinstance(v, dict):
        return "dict(" + ",".join(sorted(f"{_canon(k, depth + 1)}={_canon(x, depth + 1)}" for k, x in v.items())) + ")"
    if isinstance(v, types.CodeType):
        raise _Unknown("code object outside a function")
    try:  # numba types (types.float64, ...) have stable names
        from numba.core.types import Type
    except ImportError:  # pragma: no cover
        Type = ()  # noqa: N806
    if isinstance(v, Type):
        return f"numba-type:{v}"
    raise _Unknown(type(v).__qualname__)


class _Walk:
    """One identity computation: a hash fed with every part, and the functions already visited."""

    def __init__(self):
        self.h = hashlib.sha256()
        self.visiting: dict[int, str] = {}
        self.folders: set[str] = set()

    def feed(self, *parts: str) -> None:
        for p in parts:
            self.h.update(p.encode())
            self.h.update(b"\x00")

    # ------------------------------------------------------------------ code
    def code(self, co: types.CodeType, names: set[str]) -> None:
        self.feed("code", co.co_name, repr(co.co_code), repr(co.co_names), str(co.co_argcount),
                  str(co.co_kwonlyargcount), str(co.co_flags), repr(co.co_freevars), repr(co.co_cellvars))
        names.update(co.co_names)
        for c in co.co_consts:
            if isinstance(c, types.CodeType):
                self.code(c, names)
            else:
                self.feed(_canon(c))

    def function(self, fn: types.FunctionType) -> None:
        """Fold in a Python function: its code, defaults, closure and the globals its code names."""
        key = id(fn)
        if key in self.visiting:  # recursion (a kernel calling itself, or two calling each other)
            self.feed("cycle", self.visiting[key])
            return
        self.visiting[key] = f"{fn.__module__}.{fn.__qualname__}"
        self.feed("function", fn.__module__ or "", fn.__qualname__)
        src = Path(fn.__code__.co_filename)
        if not src.is_file():  # typed at the prompt, exec'd, ...: nothing to stamp it with
            raise _Unknown(f"no source file for {fn.__qualname__}")
        self.folders.add(str(src.resolve().parent))
        names: set[str] = set()
        self.code(fn.__code__, names)
        self.feed(_canon(fn.__defaults__), _canon(fn.__kwdefaults__))
        for cell in fn.__closure__ or ():
            self.value(cell.cell_contents, names)
        glob = fn.__globals__
        for n in sorted(names):
            if n in glob:
                self.feed("global", n)
                self.value(glob[n], names)
            elif hasattr(builtins, n):
                self.feed("builtin", n)

    # ------------------------------------------------------------------ values
    def value(self, v, names: set[str]) -> None:
        """Fold in a value the code refers to."""
        if isinstance(v, types.ModuleType):
            self.feed("module", v.__name__)
            if not _is_library(v.__name__):  # attributes the code may read (``helpers.f``): by value
                for n in sorted(names):
                    if n in vars(v):
                        self.feed("attr", n)
                        self.value(vars(v)[n], set())
            return
        module = getattr(v, "__module__", None)
        py = getattr(v, "py_func", None)
        if py is not None and hasattr(v, "targetoptions"):  # a numba dispatcher
            if _is_library(getattr(py, "__module__", None)):
                self.feed("library-dispatcher", py.__module__, py.__qualname__)
                return
            self.feed("dispatcher", type(v).__name__, _canon(dict(v.targetoptions)), _canon(
                {k: str(t) for k, t in (getattr(v, "locals", None) or {}).items()}))
            self.function(py)
            return
        defn = getattr(v, "_defn", None)
        if isinstance(defn, types.FunctionType):  # a numba @intrinsic: its typing and codegen code
            self.feed("intrinsic", getattr(v, "_name", ""))
            if _is_library(defn.__module__):
                self.feed(defn.__module__, defn.__qualname__)
            else:
                self.function(defn)
            return
        if isinstance(v, types.FunctionType):
            if _is_library(module):
                self.feed("library-function", module, v.__qualname__)
            else:
                self.function(v)
            return
        if isinstance(v, (type, types.BuiltinFunctionType, np.ufunc)) or callable(v) and _is_library(module):
            if not _is_library(module):
                src = getattr(sys.modules.get(module or ""), "__file__", None)
                if not src:
                    raise _Unknown(f"class {v!r} without a source file")
                self.folders.add(str(Path(src).resolve().parent))
            self.feed("named", str(module), getattr(v, "__qualname__", getattr(v, "__name__", repr(v))))
            return
        self.feed(_canon(v))

    def digest(self) -> str:
        for folder in sorted(self.folders):  # the package's own stamp (with the folders it embeds) or the folder's
            inside = Path(folder).is_relative_to(_kernel_cache.PACKAGE)
            self.feed("folder", _kernel_cache.source_stamp(Path(folder) / "__init__.py") if inside
                      else _kernel_cache.folder_stamp(folder))
        return self.h.hexdigest()[:32]


def kernel_identity(dispatcher) -> str | None:
    """A UUID for ``dispatcher`` that is the same in every process exactly when the code it compiles to is
    the same (module docstring), or None when it cannot be derived."""
    import numba

    py = getattr(dispatcher, "py_func", None)
    if not isinstance(py, types.FunctionType):
        return None
    w = _Walk()
    w.feed(f"python {sys.version_info[:3]}", f"numba {numba.__version__}", f"numpy {np.__version__}")
    try:
        w.value(dispatcher, set())
        digest = w.digest()
    except (_Unknown, OSError, RecursionError):
        return None
    return f"{PREFIX}{py.__module__}.{py.__qualname__}:{digest}"


def stabilise_kernel_ids(*dispatchers) -> None:
    """Give each numba dispatcher that has no UUID yet its :func:`kernel_identity` (if one can be derived)."""
    for disp in dispatchers:
        if getattr(disp, "_MemoMixin__uuid", "") is not None:  # already set (or not a numba dispatcher)
            continue
        ident = kernel_identity(disp)
        if ident is None:
            continue
        try:
            disp._set_uuid(ident)
        except Exception:  # pragma: no cover - numba internals changed: compiled in each process instead
            continue
