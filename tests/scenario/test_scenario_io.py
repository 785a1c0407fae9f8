"""load_scenario / dump_scenario / built-ins / resolve_trace."""

from __future__ import annotations

import numpy as np
import pytest
import tomli_w

from idnbandit.errors import ConfigError, TraceError, UnknownNameError
from idnbandit.scenario import (
    FeedbackMode,
    Tier,
    builtin_names,
    builtin_path,
    dump_scenario,
    load_scenario,
    resolve_path,
    resolve_trace,
    scenario_from_dict,
    scenario_to_dict,
)

from .conftest import small_trace

BUILTINS = ["deadline-edge", "ensemble-hetero", "flash-crowd", "hi-two-tier", "idn-4tier", "shared-edge", "zoo-4tier"]


def _write(folder, data, name="s.toml"):
    path = folder / name
    path.write_text(tomli_w.dumps(data))
    return path


def test_builtin_names():
    assert builtin_names() == BUILTINS
    assert builtin_path("idn-4tier").is_file()


def test_unknown_builtin_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'idn-4tier'"):
        builtin_path("idn-4tire")
    with pytest.raises(UnknownNameError, match="unknown scenario 'hi-too-tier'"):
        load_scenario("hi-too-tier")


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_round_trip(tmp_path, name):
    s = load_scenario(name, check_data=False)
    assert s.name == name and s.description and s.source == f"{name}.toml"
    again = load_scenario(dump_scenario(s, tmp_path / f"{name}.toml"), check_data=False)
    assert again == s
    assert again.source != s.source  # where it came from is not part of equality
    assert scenario_from_dict(scenario_to_dict(s)) == s


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_every_number_has_a_source_comment(name):
    """Every numeric setting carries a comment: on its line, in the comment block opening its table,
    or on an identical setting elsewhere in the file (the same figure for the next phone)."""
    lines = builtin_path(name).read_text().splitlines()

    def setting(line):
        key, eq, value = line.partition("=")
        value = value.split("#", 1)[0].strip()
        if not eq or key.strip().startswith("#") or not value or not (value[0].isdigit() or value[0] in "-{"):
            return None
        return key.strip(), value

    def sourced_in_place(i):
        if "#" in lines[i]:
            return True
        j = i - 1
        while j >= 0 and not lines[j].startswith("["):  # up to the table header ...
            j -= 1
        k = j - 1
        while k >= 0 and lines[k].startswith("#"):  # ... and the comment block right above it
            k -= 1
        return "#" in lines[j] or any(x.lstrip().startswith("#") for x in lines[k + 1 : i])

    numeric = [i for i, x in enumerate(lines) if setting(x) and setting(x)[0] not in ("seed", "servers")]
    sourced = {setting(lines[i]) for i in numeric if sourced_in_place(i)}
    for i in numeric:
        assert sourced_in_place(i) or setting(lines[i]) in sourced, (
            f"{name}.toml line {i + 1} has no source comment: {lines[i]!r}")


def test_builtin_shapes():
    idn = load_scenario("idn-4tier", check_data=False)
    assert [n.tier for n in idn.path_to_root("phone-1")] == [Tier.DEVICE, Tier.EDGE, Tier.REGIONAL, Tier.CLOUD]
    assert [m for _, m in idn.options("phone-3")] == ["mobilenetv3-small", "resnet18", "resnet50", "vit-b16"]
    assert [idn.model(m).trace_column for _, m in idn.options("phone-1")] == [
        "logreg-4x4", "mlp-16", "cnn-small", "cnn-wide"]
    assert idn.trace.builtin == "digits" and idn.workload.background
    hi = load_scenario("hi-two-tier", check_data=False)
    assert hi.feedback.mode is FeedbackMode.LABEL_ON_FORWARD
    assert hi.reward.w_lat_per_s == 0 and hi.reward.w_cost > 0 and hi.node("cloud").cost_per_request == 1
    zoo = load_scenario("zoo-4tier", check_data=False)
    assert zoo.trace.synthetic.n_classes == 100
    assert zoo.trace.synthetic.accuracies == (0.677, 0.698, 0.809, 0.886)
    flash = load_scenario("flash-crowd", check_data=False)
    assert flash.workload.process.value == "bursty" and len(flash.workload.origins) == 8
    assert flash.node("edge").servers == 1


def test_path_trace_resolves_against_the_file(scenario_dir, base, monkeypatch, tmp_path_factory):
    path = _write(scenario_dir, base)
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    s = load_scenario(path)
    assert s.base_dir == str(scenario_dir.resolve())
    assert resolve_path(s, "outputs.npz") == scenario_dir.resolve() / "outputs.npz"
    trace = resolve_trace(s)
    assert trace.model_names == ("small", "big")
    np.testing.assert_array_equal(trace.labels, small_trace().labels)


def test_dump_round_trip_same_folder_and_other_folder(scenario_dir, base, tmp_path_factory):
    s = load_scenario(_write(scenario_dir, base))
    same = load_scenario(dump_scenario(s, scenario_dir / "copy.toml"))
    assert same == s
    other_dir = tmp_path_factory.mktemp("other") / "deeper"
    moved = load_scenario(dump_scenario(s, other_dir / "moved.toml"))  # the trace still resolves
    assert resolve_path(moved, moved.trace.path).resolve() == (scenario_dir / "outputs.npz").resolve()
    assert resolve_trace(moved).n_samples == resolve_trace(s).n_samples


def test_dump_is_atomic_and_overwrites(tmp_path):
    s = load_scenario("hi-two-tier", check_data=False)
    target = tmp_path / "out.toml"
    target.write_text("old content")
    dump_scenario(s, target)
    assert target.read_text().startswith("# scenario 'hi-two-tier'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.toml"]


def test_replay_file_checked(scenario_dir, base):
    base["workload"].update(process="replay", replay_file="arrivals.txt")
    path = _write(scenario_dir, base)
    (scenario_dir / "arrivals.txt").write_text("# seconds\n0.0\n0.5\n\n1.25\n")
    assert load_scenario(path).workload.replay_file == "arrivals.txt"
    (scenario_dir / "arrivals.txt").write_text("0.0\n2.0\n1.0\n")
    with pytest.raises(ConfigError, match=r"\[workload\]\.replay_file: 'arrivals.txt' line 3: '1.0'"):
        load_scenario(path)
    (scenario_dir / "arrivals.txt").write_text("# nothing\n")
    with pytest.raises(ConfigError, match="holds no timestamp"):
        load_scenario(path)


def test_corrupt_trace_is_trace_error_naming_the_file(scenario_dir, base):
    path = _write(scenario_dir, base)
    (scenario_dir / "outputs.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(TraceError, match=r"s\.toml: \[trace\]\.path: .*truncated or corrupted"):
        load_scenario(path)


def test_check_data_false_skips_the_trace(scenario_dir, base):
    base["trace"]["path"] = "not-there.npz"
    s = load_scenario(_write(scenario_dir, base), check_data=False)
    assert s.trace.path == "not-there.npz"


def test_ints_become_floats(scenario_dir, base):
    base["nodes"][0]["uplink"]["bandwidth_mbps"] = 6
    s = load_scenario(_write(scenario_dir, base))
    assert isinstance(s.node("phone").uplink.bandwidth_mbps, float)
    assert isinstance(s.node("cloud").servers, int)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads_with_its_trace(name):
    s = load_scenario(name)  # checks every trace_column against the real trace
    trace = resolve_trace(s)
    cols = [s.model(m).trace_column for _, m in s.options(s.workload.origins[0])]
    acc = trace.accuracies()[[trace.column(c) for c in cols]]
    assert acc[-1] > acc[0], (name, acc)  # the top of the ladder beats the device model
    if s.trace.synthetic is not None:
        np.testing.assert_allclose(acc, s.trace.synthetic.accuracies, atol=0.02)


def _threshold_rewards(local_correct, local_conf, remote_reward, grid):
    """Mean reward of 'serve locally iff confidence >= t' for each t in grid."""
    return np.array([np.where(local_conf >= t, local_correct, remote_reward).mean() for t in grid])


def test_hi_two_tier_best_threshold_is_interior():
    s = load_scenario("hi-two-tier")
    trace = resolve_trace(s)
    (_, small), (_, large) = s.options("phone")
    i, j = trace.column(s.model(small).trace_column), trace.column(s.model(large).trace_column)
    correct, conf = trace.correct(), trace.probs.max(axis=2)
    beta = s.reward.w_cost * s.node("cloud").cost_per_request
    grid = np.linspace(0.0, 1.0, 101)
    r = _threshold_rewards(correct[i], conf[i], correct[j] - beta, grid)
    never, always = correct[i].mean(), (correct[j] - beta).mean()  # t = 0 and t > 1
    assert r.max() > max(never, always) + 0.01, (r.max(), never, always)
    assert 0 < grid[r.argmax()] < 1


def test_idn_4tier_no_fixed_option_is_best_for_every_request():
    """Without queueing, a confidence threshold beats every fixed option (the trade-off is real)."""
    s = load_scenario("idn-4tier")
    trace = resolve_trace(s)
    opts = s.options("phone-1")
    cols = [trace.column(s.model(m).trace_column) for _, m in opts]
    correct = trace.correct()[cols].astype(float)
    latency_s = []
    for node, model in opts:  # one 50 KB request, no queueing: uplinks up and down + compute
        spec, path = s.model(model), s.path_to_root("phone-1")
        hops = path[: [n.name for n in path].index(node)]
        net = sum(2 * n.uplink.propagation_ms / 1e3 + (spec.input_bytes + spec.output_bytes) * 8
                  / (n.uplink.bandwidth_mbps * 1e6) for n in hops)
        latency_s.append(net + spec.gflops / s.node(node).speed_gflops)
    cost = np.array([s.node(n).cost_per_request for n, _ in opts])
    reward = s.reward.w_acc * correct - (s.reward.w_lat_per_s * np.array(latency_s) + s.reward.w_cost * cost)[:, None]
    best_fixed = reward.mean(axis=1).max()
    conf = trace.probs.max(axis=2)[cols[0]]
    grid = np.linspace(0.0, 1.0, 101)
    best_threshold = max(_threshold_rewards(reward[0], conf, reward[k], grid).max() for k in range(1, len(opts)))
    assert best_threshold > best_fixed + 0.01, (best_threshold, reward.mean(axis=1))
    assert 0.09 < latency_s[1] < 0.12 and 0.14 < latency_s[-1] < 0.18  # the figures in the file's header
