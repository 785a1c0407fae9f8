"""Issue 17, class 2: every damaged or tampered agent checkpoint -> CheckpointError naming the file and the
array or field; nothing is unpickled; a checkpoint that loads acts and learns without error.

A corpus of corrupted checkpoints is produced by mutating real ones (saved by trained agents of every
saveable registered kind): the file's bytes (truncation, bit flips, a corrupt deflate stream, a plain
``.npy``), its JSON metadata (class, params, rng, format, version, extra fields) and its arrays'
values (NaN, inf, negative counters, out-of-range indices, non-symmetric or indefinite matrices,
changed configuration). Hypothesis draws the value mutations; the property is "CheckpointError, or an
agent that works", and a table of mutations that must fail pins the value checks.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from conftest import build_agent, choose, feedback, make_stream, play, saveable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnbandit.agents import Agent
from idnbandit.agents.registry import agent_names
from idnbandit.errors import CheckpointError

# saveable agents with a learned state worth tampering with (baselines included: their state is config)
AGENTS = [n for n in sorted(agent_names()) if saveable(n) and n not in ("always-cloud", "always-local")]
AGENTS.append("linucb[pruned]")
N_STEPS = 40


def _train(name: str):
    agent = build_agent(name, seed=5)
    xs, rs, mode = make_stream(N_STEPS, agent.n_actions, agent.n_features, seed=9)
    play(agent, xs, rs, mode)
    return agent


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """name -> (path of a real checkpoint of a trained agent, its arrays, its metadata)."""
    out = {}
    root = tmp_path_factory.mktemp("ckpt")
    for name in AGENTS:
        try:
            agent = _train(name)
        except pytest.skip.Exception:  # torch missing
            continue
        path = agent.save(root / f"{name.replace('[', '_').replace(']', '')}.npz")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
        out[name] = (path, arrays, meta)
    return out


def _write(path, meta, arrays, compressed=False) -> None:
    blob = meta if isinstance(meta, (bytes, bytearray)) else json.dumps(meta).encode()
    (np.savez_compressed if compressed else np.savez)(path, __meta__=np.frombuffer(blob, dtype=np.uint8), **arrays)


def _exercise(agent: Agent) -> None:
    """A loaded agent must act (valid actions) and learn without error."""
    xs, rs, mode = make_stream(6, agent.n_actions, agent.n_features, seed=1)
    for i in range(xs.shape[0]):
        a = choose(agent, xs[i], rs[i])
        assert isinstance(a, int) and 0 <= a < agent.n_actions
        r, rws = feedback(rs[i], a, mode[i])
        agent.update(xs[i], a, r, rewards=rws)


def _fails(path, *words) -> str:
    with pytest.raises(CheckpointError) as exc:
        Agent.load(path)
    msg = str(exc.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, msg
    assert "\n" not in msg
    return msg


def test_valid_checkpoints_load_bit_identical(saved, tmp_path):
    """The value checks accept every real checkpoint, and the loaded agent continues exactly."""
    assert len(saved) >= 20
    for name, (path, _, _) in saved.items():
        back = Agent.load(path)
        twin = Agent.load(path)
        xs, rs, mode = make_stream(10, back.n_actions, back.n_features, seed=2)
        assert play(back, xs, rs, mode) == play(twin, xs, rs, mode), name


# ------------------------------------------------------------------ file structure
def test_file_level_corruption(saved, tmp_path):
    path, arrays, meta = saved["linucb"]
    raw = path.read_bytes()
    # missing file, empty file, a plain .npy, text, truncated at many lengths
    _fails(tmp_path / "missing.npz", "no such checkpoint")
    (tmp_path / "empty.npz").write_bytes(b"")
    _fails(tmp_path / "empty.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    _fails(tmp_path / "plain.npy", "not a .npz")
    (tmp_path / "text.npz").write_text("hello")
    _fails(tmp_path / "text.npz")
    for cut in (10, 100, len(raw) // 3, len(raw) // 2, len(raw) - 30, len(raw) - 1):
        p = tmp_path / f"cut{cut}.npz"
        p.write_bytes(raw[:cut])
        _fails(p)
    # a directory
    (tmp_path / "dir.npz").mkdir()
    _fails(tmp_path / "dir.npz")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_byte_damage_is_typed(saved, tmp_path, data):
    """Bit flips anywhere (stored or deflate-compressed archive): CheckpointError, or (a flip in padding
    or an unread byte) a checkpoint that still loads and works."""
    name = data.draw(st.sampled_from(["linucb", "hil-n", "qlearning", "exp3"]))
    path, arrays, meta = saved[name]
    compressed = data.draw(st.booleans())
    p = tmp_path / f"{name}-flip.npz"
    _write(p, meta, arrays, compressed=compressed)
    raw = bytearray(p.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    p.write_bytes(bytes(raw))
    try:
        agent = Agent.load(p)
    except CheckpointError as exc:
        assert str(p) in str(exc)
    else:
        _exercise(agent)


def test_corrupt_deflate_stream(saved, tmp_path):
    path, arrays, meta = saved["linucb"]
    p = tmp_path / "deflate.npz"
    _write(p, meta, arrays, compressed=True)
    raw = bytearray(p.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = zf.getinfo("s3.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 5, start + 25):
        raw[i] ^= 0xA5
    p.write_bytes(bytes(raw))
    _fails(p)


def test_archive_members(saved, tmp_path):
    path, arrays, meta = saved["linucb"]
    # a pickled object array is never unpickled
    p = tmp_path / "pickle.npz"
    with zipfile.ZipFile(p, "w") as zf:
        for k, a in {"__meta__": np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays}.items():
            buf = io.BytesIO()
            np.save(buf, a if k != "s2" else np.array([{"x": 1}], dtype=object), allow_pickle=True)
            zf.writestr(f"{k}.npy", buf.getvalue())
    _fails(p)
    # a member that is not a .npy, and no __meta__
    p = tmp_path / "notnpy.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("__meta__.npy", b"garbage")
    _fails(p)
    p = tmp_path / "nometa.npz"
    np.savez(p, **arrays)
    _fails(p, "__meta__")
    # an extra, a missing and a misshaped state array
    p = tmp_path / "extra.npz"
    _write(p, meta, {**arrays, "s99": np.zeros(2)})
    _fails(p, "s99")
    p = tmp_path / "missing.npz"
    _write(p, meta, {k: v for k, v in arrays.items() if k != "s3"})
    _fails(p, "s3")
    p = tmp_path / "shape.npz"
    _write(p, meta, {**arrays, "s4": arrays["s4"][:1]})
    _fails(p, "s4")
    p = tmp_path / "dtype.npz"
    _write(p, meta, {**arrays, "s4": arrays["s4"].astype(np.float32)})
    _fails(p, "s4")


META_MUTATIONS = [
    ("format", lambda m: {**m, "format": "other"}, "format"),
    ("version", lambda m: {**m, "version": 99}, "version"),
    ("version-bool", lambda m: {**m, "version": True}, "version"),
    ("class-int", lambda m: {**m, "class": 3}, "class"),
    ("class-list", lambda m: {**m, "class": ["LinUCB"]}, "class"),
    ("class-unknown", lambda m: {**m, "class": "Nope"}, "unknown agent class"),
    ("class-other", lambda m: {**m, "class": "EXP3"}, "params"),
    ("params-list", lambda m: {**m, "params": [1, 2]}, "params"),
    ("params-null", lambda m: {**m, "params": None}, "params"),
    ("params-extra", lambda m: {**m, "params": {**m["params"], "bogus": 1}}, "bogus"),
    ("params-bad-value", lambda m: {**m, "params": {**m["params"], "alpha": -1}}, "alpha"),
    ("params-nan", lambda m: {**m, "params": {**m["params"], "ridge": float("nan")}}, "ridge"),
    ("params-list-value", lambda m: {**m, "params": {**m["params"], "alpha": [1, 2]}}, "alpha"),
    ("params-huge", lambda m: {**m, "params": {**m["params"], "refactor_every": 10**30}}, "refactor_every"),
    ("params-sizes", lambda m: {**m, "params": {**m["params"], "n_features": 10**6}}, "params"),
    ("params-missing", lambda m: {**m, "params": {k: v for k, v in m["params"].items() if k != "n_actions"}},
     "n_actions"),
    ("rng-list", lambda m: {**m, "rng": [1]}, "rng"),
    ("rng-garbage", lambda m: {**m, "rng": {"bit_generator": "PCG64", "state": "x"}}, "rng"),
    ("rng-empty", lambda m: {**m, "rng": {}}, "rng"),
    ("module-int", lambda m: {**m, "module": 1}, "module"),
    ("extra-field", lambda m: {**m, "evil": 1}, "evil"),
    ("json-list", lambda m: [m], "__meta__"),
    ("json-string", lambda m: "x", "__meta__"),
]


@pytest.mark.parametrize("label,mutate,word", META_MUTATIONS, ids=[m[0] for m in META_MUTATIONS])
def test_metadata_mutations(saved, tmp_path, label, mutate, word):
    path, arrays, meta = saved["linucb"]
    p = tmp_path / f"{label}.npz"
    _write(p, mutate(meta), arrays)
    _fails(p, word)


@pytest.mark.parametrize("blob", [b"", b"{", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000, b"null", b"1e999"])
def test_metadata_bytes(saved, tmp_path, blob):
    path, arrays, meta = saved["linucb"]
    p = tmp_path / "blob.npz"
    _write(p, blob, arrays)
    _fails(p, "__meta__")


def test_class_load_of_another_class(saved):
    from idnbandit.agents import LinTS

    with pytest.raises(CheckpointError, match="not a LinTS"):
        LinTS.load(saved["linucb"][0])


# ------------------------------------------------------------------ values
VALUES = [np.nan, np.inf, -np.inf, 1e308, -1e308, -1.0, 0.0, 2.0**62, -(2.0**62), 7.0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_value_tampering_is_typed_or_harmless(saved, tmp_path, data):
    """One entry of one array set to an extreme value: CheckpointError naming the array, or an agent
    that still acts (valid options) and learns without any error (the kernels never index out of
    their arrays: a bad counter or stored index is refused before it can)."""
    name = data.draw(st.sampled_from(sorted(saved)))
    path, arrays, meta = saved[name]
    key = data.draw(st.sampled_from(sorted(arrays)))
    a = arrays[key].copy()
    if a.size == 0:
        return
    i = data.draw(st.integers(0, a.size - 1))
    v = data.draw(st.sampled_from(VALUES))
    flat = a.reshape(-1)
    if a.dtype.kind == "f":
        flat[i] = v
    elif a.dtype.kind == "b":
        flat[i] = not flat[i]
    elif np.isfinite(v) and abs(v) < 2.0**63:
        flat[i] = int(v)
    else:
        flat[i] = data.draw(st.sampled_from([-1, 2**62, -(2**62), 2**31]))
    p = tmp_path / "tampered.npz"
    _write(p, meta, {**arrays, key: a})
    try:
        agent = Agent.load(p)
    except CheckpointError as exc:
        assert str(p) in str(exc) and key in str(exc), str(exc)
    else:
        _exercise(agent)


def _set(arrays, key, fn):
    a = arrays[key].copy()
    fn(a)
    return {**arrays, key: a}


def _nan_all(a):
    a[...] = np.nan


def _first(v):
    def f(a):
        a.reshape(-1)[0] = v
    return f


def _at(i, v):
    def f(a):
        a.reshape(-1)[i] = v
    return f


def _negate(a):
    a *= -1.0


def _asym(a):
    a[0, 0, -1] += 1.0


def _neg_count(a):
    a.reshape(-1)[0] = -1


# (agent, array, mutation, word in the message): each must be refused
MUST_FAIL = [
    ("linucb", "s2", _nan_all, "A"), ("linucb", "s3", _nan_all, "A⁻¹"), ("linucb", "s3", _negate, "positive definite"),
    ("linucb", "s3", _asym, "symmetric"), ("linucb", "s2", _negate, "positive definite"),
    ("linucb", "s4", _first(np.nan), "s4"), ("linucb", "s4", _first(np.inf), "s4"),
    ("linucb", "s0", _first(5.0), "parameters"), ("linucb", "s1", _first(7), "parameters"),
    ("linucb", "s5", _neg_count, "s5"), ("linucb[pruned]", "s15", _first(5), "s15"),
    ("linucb[pruned]", "s9", _first(np.nan), "s9"), ("linucb[pruned]", "s8", _first(np.inf), "s8"),
    ("lints", "s1", _nan_all, "s1"), ("lints", "s1", _negate, "s1"), ("lints", "s3", _first(np.nan), "s3"),
    ("epsilon-greedy", "s3", _negate, "A⁻¹"), ("epsilon-greedy", "s5", _first(np.nan), "s5"),
    ("epsilon-greedy", "s1", _first(-5), "s1"),
    ("d-linucb", "s2", _negate, "V"), ("d-linucb", "s6", _first(np.nan), "s6"), ("d-linucb", "s1", _neg_count, "s1"),
    ("sw-linucb", "s1", _first(3), "s1"), ("sw-linucb", "s3", _asym, "symmetric"),
    ("sw-linucb", "s8", _first(np.nan), "s8"),
    ("exp3", "s1", _first(np.nan), "s1"), ("exp3", "s3", _neg_count, "s3"),
    ("exp4", "s2", _first(0.5), "parameters"), ("exp4", "s3", _first(np.inf), "s3"),
    ("hil-n", "s4", _first(10**9), "s4"), ("hil-n", "s4", _first(0), "s4"), ("hil-n", "s2", _first(0.5), "s2"),
    ("hil-f", "s3", _first(np.nan), "s3"), ("hedge-hi", "s5", _first(np.inf), "s5"),
    ("hedge-hi-restart", "s5", _first(10**9), "s5"), ("hedge-hi-restart", "s3", _first(np.nan), "s3"),
    ("hi-lcb", "s2", _first(-1.0), "s2"), ("hi-lcb", "s2", _first(0.5), "s2"), ("hi-lcb-lite", "s3", _first(np.nan), "s3"),
    ("qlearning", "s1", _first(99), "s1"), ("qlearning", "s0", _first(np.nan), "s0"),
    ("sarsa-lambda", "s1", _first(-3), "s1"),
    ("linear-q", "s5", _first(np.nan), "s5"), ("linear-q", "s3", _first(9), "s3"),
    ("static-threshold", "s1", _first(5), "s1"), ("fixed", "s0", _first(10**6), "s0"),
    ("random", "s0", _first(3), "s0"), ("oracle", "s0", _first(-1), "s0"),
    ("dqn", "net.0.weight", _first(np.nan), "net.0.weight"), ("dqn", "target.0.bias", _first(np.inf), "target.0.bias"),
    ("dqn", "counters", _neg_count, "counters"), ("dqn", "buf_a", _first(7), "buf_a"),
    ("neural-ucb", "net.2.weight", _nan_all, "net.2.weight"), ("neural-ucb", "U", _first(-1.0), "U"),
    ("neural-ts", "hist_a", _first(-1), "hist_a"), ("neural-ts", "counters", _at(1, 10**6), "counters"),
    ("river", "mean", _first(np.nan), "mean"), ("river", "counts", _neg_count, "counts"),
    ("river", "rng", _first(-1), "rng"),
    ("squarecb", "weights", _first(np.nan), "weights"), ("squarecb", "n", _neg_count, "n"),
]


@pytest.mark.parametrize("name,key,mutate,word", MUST_FAIL, ids=[f"{m[0]}-{m[1]}-{i}" for i, m in enumerate(MUST_FAIL)])
def test_tampered_values_are_refused(saved, tmp_path, name, key, mutate, word):
    if name not in saved:
        pytest.skip(f"{name} not available (optional dependency)")
    path, arrays, meta = saved[name]
    p = tmp_path / "tampered.npz"
    _write(p, meta, _set(arrays, key, mutate))
    msg = _fails(p, f"state array {key}")
    assert word in msg, msg


def test_extra_arrays_refused_for_python_agents(saved, tmp_path):
    for name in ("river", "squarecb", "dqn", "neural-ucb"):
        if name not in saved:
            continue
        path, arrays, meta = saved[name]
        p = tmp_path / f"{name}-extra.npz"
        _write(p, meta, {**arrays, "evil": np.zeros(3)})
        _fails(p, "evil")
