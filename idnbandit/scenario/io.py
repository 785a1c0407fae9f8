"""Scenario files: :func:`load_scenario`, :func:`dump_scenario`, built-in scenarios, the trace.

A scenario file is TOML (read with the standard library's ``tomllib``, written with ``tomli_w``)::

    name = "my-idn"
    seed = 0
    [trace]
    builtin = "digits"            # or: path = "outputs.npz"   or: [trace.synthetic] ...
    [[models]]
    name = "small"
    trace_column = "logreg-4x4"
    gflops = 0.057
    memory_mb = 9.8
    [[nodes]]
    name = "phone"
    tier = "device"
    speed_gflops = 17.0
    models = ["small"]
    parent = "cloud"
    uplink = { propagation_ms = 15.0, bandwidth_mbps = 6.0 }
    ...

Everything is checked at load, before any work: see ``docs/scenarios.md`` for the layout and the
full list of checks.
"""

from __future__ import annotations

import gc
import os
import sys
from importlib import resources
from pathlib import Path

import tomli_w

from ..errors import ConfigError, TraceError, UnknownNameError, close_matches
from ..traces import Trace, load_builtin_trace, synthetic_trace_from_spec
from .limits import MAX_SCENARIO_BYTES
from .model import ArrivalProcess, Scenario
from .parse import scenario_from_dict, scenario_to_dict
from .replay import read_replay_file, replay_request_rate
from .validate import check_background_load, model_loc

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "DEFAULT_SCENARIO",
    "load_scenario",
    "loads_scenario",
    "dump_scenario",
    "builtin_names",
    "builtin_path",
    "resolve_path",
    "resolve_trace",
    "check_scenario_data",
]

_BUILTIN_PACKAGE = "idnbandit.scenario"
DEFAULT_SCENARIO = "idn-4tier"  # the built-in used when a command is given no scenario


# ---------------------------------------------------------------------------------------- built-ins
def _builtin_dir():
    return resources.files(_BUILTIN_PACKAGE).joinpath("builtin")


def builtin_names() -> list[str]:
    """Names of the built-in scenarios (package data ``idnbandit/scenario/builtin/*.toml``), sorted."""
    return sorted(p.name[: -len(".toml")] for p in _builtin_dir().iterdir() if p.name.endswith(".toml"))


def builtin_path(name: str) -> Path:
    """Path of built-in scenario ``name``.

    Raises
    ------
    UnknownNameError
        If there is no such built-in; the message suggests close names.
    """
    names = builtin_names()
    if name not in names:
        raise UnknownNameError("scenario", name, names)
    return Path(str(_builtin_dir().joinpath(f"{name}.toml")))


# ------------------------------------------------------------------------------------------- paths
def resolve_path(scenario: Scenario, path: str) -> Path:
    """``path`` as written in ``scenario``, resolved against the scenario file's folder if relative."""
    p = Path(path).expanduser()
    if p.is_absolute() or not scenario.base_dir:
        return p
    return Path(scenario.base_dir) / p


def resolve_trace(scenario: Scenario) -> Trace:
    """The :class:`~idnbandit.traces.Trace` a scenario's models read their outputs from.

    ``builtin`` → :func:`idnbandit.traces.load_builtin_trace`; ``path`` → :meth:`Trace.load`
    (relative to the scenario file's folder); ``synthetic`` → generated from the spec's seed.

    Raises
    ------
    TraceError
        If the trace file is missing, truncated or malformed.
    UnknownNameError
        If the built-in trace does not exist.
    """
    spec = scenario.trace
    if spec.builtin is not None:
        return load_builtin_trace(spec.builtin)
    if spec.path is not None:
        return Trace.load(resolve_path(scenario, spec.path))
    return synthetic_trace_from_spec(spec.synthetic)


# ------------------------------------------------------------------------------------------ checks
def _fail(scenario: Scenario, where: str, msg: str) -> ConfigError:
    prefix = f"{scenario.source}: " if scenario.source else ""
    return ConfigError(f"{prefix}{where}: {msg}")


def _trace_facts(scenario: Scenario) -> tuple[tuple[str, ...], int, str]:
    """(columns, n_classes, description) of the scenario's trace, loading it only if it is a file."""
    spec = scenario.trace
    if spec.synthetic is not None:
        return spec.synthetic.model_names, spec.synthetic.n_classes, "the synthetic trace"
    if spec.builtin is not None:
        try:
            trace = load_builtin_trace(spec.builtin)
        except UnknownNameError as exc:
            raise _fail(scenario, "[trace].builtin", f"{exc}") from None
        return trace.model_names, trace.n_classes, f"built-in trace {spec.builtin!r}"
    path = resolve_path(scenario, spec.path)
    npz = path if path.suffix == ".npz" else path.with_suffix(".npz")
    if not npz.is_file():
        raise _fail(scenario, "[trace].path", f"{spec.path!r} does not exist (looked for {npz}); "
                    "give the .npz file of a trace saved with Trace.save, relative to the scenario file")
    try:
        trace = Trace.load(path)
    except TraceError as exc:
        raise TraceError(f"{scenario.source}: [trace].path: {exc}" if scenario.source else str(exc)) from None
    return trace.model_names, trace.n_classes, f"trace {spec.path!r}"


def _check_trace(scenario: Scenario) -> None:
    columns, n_classes, what = _trace_facts(scenario)
    if n_classes < 2:  # the Trace enforces it; kept here for traces built by other means
        raise _fail(scenario, "[trace]", f"{what} has {n_classes} class(es); a trace needs >= 2 classes")
    for m in scenario.models:
        if m.trace_column not in columns:
            hint = close_matches(m.trace_column, columns)
            extra = f"did you mean {hint[0]!r}? " if hint else ""
            raise _fail(scenario, f"{model_loc(m.name)}.trace_column",
                        f"{m.trace_column!r} is not a column of {what}; {extra}its columns are {', '.join(columns)}")
    # all models read from one trace, so they share its class count C; a synthetic trace must also
    # leave room above chance for every model
    if scenario.trace.synthetic is not None:
        syn = scenario.trace.synthetic
        for name, acc in zip(syn.model_names, syn.accuracies):
            if acc <= 1.0 / syn.n_classes:
                raise _fail(scenario, "[trace.synthetic].accuracies",
                            f"{acc!r} for {name!r} is not allowed; with n_classes = {syn.n_classes} an accuracy "
                            f"must be above chance (> {1.0 / syn.n_classes:.4g}) and < 1")


def _check_replay(scenario: Scenario) -> None:
    """The replay file, read by the parser the simulator uses; its request rate against background load."""
    wl = scenario.workload
    if wl.process is not ArrivalProcess.REPLAY and wl.replay_file is None:
        return
    path = resolve_path(scenario, wl.replay_file)
    if not path.is_file():
        raise _fail(scenario, "[workload].replay_file",
                    f"{wl.replay_file!r} does not exist (looked for {path}); give a text file with one "
                    "timestamp in seconds per line, relative to the scenario file")
    try:
        times = read_replay_file(path, shown=wl.replay_file)
    except ConfigError as exc:
        raise ConfigError(f"{scenario.source}: {exc}" if scenario.source else str(exc)) from None
    if wl.process is ArrivalProcess.REPLAY:
        rate = replay_request_rate(times, len(wl.origins) * wl.rate_per_s)[1]
        check_background_load(scenario, rate, f"{times.shape[0]:,} timestamps of {wl.replay_file!r}")


def check_scenario_data(scenario: Scenario) -> None:
    """Checks that need files outside the scenario: trace columns and class counts, replay file.

    :func:`load_scenario` calls it; call it yourself for a scenario built in Python.

    Raises
    ------
    ConfigError
        A model's ``trace_column`` is not in the trace, the trace or the replay file is missing, ...
    TraceError
        The trace file exists but is truncated or malformed.
    """
    _check_trace(scenario)
    _check_replay(scenario)


# ------------------------------------------------------------------------------------------- load
_FAST_PARSE_CHARS = 1_000_000  # above this, rtoml (Rust) parses: tomllib takes ~3 s for a 100,000-node tree


def _parse_toml(text: str) -> dict:
    """TOML text as a dict: ``tomllib``, or ``rtoml`` for large files (4x faster; same result on every
    valid scenario). Anything rtoml refuses goes to tomllib, whose message (line, column) is reported."""
    if len(text) > _FAST_PARSE_CHARS:
        try:
            import rtoml

            return rtoml.loads(text)
        except Exception:  # noqa: BLE001 - rtoml missing or refusing: tomllib decides and explains
            pass
    return tomllib.loads(text)


def loads_scenario(text: str, *, source: str = "<string>", base_dir: str = "", check_data: bool = True) -> Scenario:
    """Parse scenario TOML ``text``; see :func:`load_scenario`."""
    collecting = gc.isenabled()  # a 100,000-node file builds ~10^6 objects; the cyclic collector would
    gc.disable()  # rescan the caller's whole heap many times meanwhile (nothing built here has cycles)
    try:
        return _loads_scenario(text, source, base_dir, check_data)
    finally:
        if collecting:
            gc.enable()


def _loads_scenario(text: str, source: str, base_dir: str, check_data: bool) -> Scenario:
    try:
        data = _parse_toml(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer of more than 4,300 digits
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    except RecursionError:  # arrays or inline tables nested thousands deep
        raise ConfigError(f"{source}: not allowed: arrays or tables nested deeper than the TOML parser allows; "
                          "a scenario nests a few levels at most") from None
    scenario = scenario_from_dict(data, source=source, base_dir=base_dir)
    if check_data:
        check_scenario_data(scenario)
    return scenario


def load_scenario(path_or_name: str | os.PathLike, *, check_data: bool = True) -> Scenario:
    """Read and validate a scenario file, or a built-in scenario by name.

    Parameters
    ----------
    path_or_name
        A ``.toml`` file, or the name of a built-in (see :func:`builtin_names`).
    check_data
        Also check the trace (columns, class counts) and the replay file (default).

    Returns
    -------
    Scenario
        ``source`` is the file as given (built-ins: ``"<name>.toml"``); ``base_dir`` its folder.

    Raises
    ------
    ConfigError
        The file is missing or is not valid TOML, or any check fails; the message names the file,
        the table and field, the bad value and what is allowed.
    UnknownNameError
        ``path_or_name`` is neither a file nor a built-in name.
    TraceError
        The scenario's trace file is truncated or malformed.

    Examples
    --------
    >>> from idnbandit.scenario import load_scenario
    >>> s = load_scenario("hi-two-tier", check_data=False)
    >>> [n.name for n in s.nodes]
    ['phone', 'cloud']
    """
    text_name = os.fspath(path_or_name)
    path = Path(text_name)
    if path.is_file():
        source = text_name
    elif isinstance(path_or_name, os.PathLike) or path.suffix == ".toml" or os.sep in text_name:
        raise ConfigError(f"{text_name}: file not found (built-in scenarios: {', '.join(builtin_names())})")
    else:
        path = builtin_path(text_name)
        source = path.name
    try:
        size = path.stat().st_size
        if size > MAX_SCENARIO_BYTES:
            raise ConfigError(f"{source}: {size:,} bytes are not allowed; a scenario file may hold at most "
                              f"{MAX_SCENARIO_BYTES:,} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read the file ({exc})") from None
    return loads_scenario(text, source=source, base_dir=str(path.resolve().parent), check_data=check_data)


# ------------------------------------------------------------------------------------------- dump
def _relocate(scenario: Scenario, value: str | None, dest_dir: Path) -> str | None:
    """Rewrite a relative path so that it still names the same file from ``dest_dir``."""
    if value is None or Path(value).is_absolute() or not scenario.base_dir:
        return value
    if Path(scenario.base_dir).resolve() == dest_dir.resolve():
        return value
    return os.path.relpath(Path(scenario.base_dir) / value, dest_dir)


def dump_scenario(scenario: Scenario, path: str | os.PathLike) -> Path:
    """Write ``scenario`` as TOML to ``path`` atomically (temporary file, then ``os.replace``).

    ``load_scenario(dump_scenario(s, p)) == s``. Relative trace and replay paths are written so
    that they name the same files from the new file's folder (unchanged when it is the folder
    ``s`` was read from).

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = scenario_to_dict(scenario)
    if "path" in data["trace"]:
        data["trace"]["path"] = _relocate(scenario, data["trace"]["path"], path.parent)
    if "replay_file" in data["workload"]:
        data["workload"]["replay_file"] = _relocate(scenario, data["workload"]["replay_file"], path.parent)
    text = f"# scenario {scenario.name!r}, written by idnbandit.scenario.dump_scenario\n" + tomli_w.dumps(data)
    from .._io import atomic_write_text

    atomic_write_text(path, text)
    return path
