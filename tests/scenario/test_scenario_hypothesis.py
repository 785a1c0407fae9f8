"""Property-based: a bad number in any numeric field raises ConfigError naming that field."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnbandit.errors import ConfigError
from idnbandit.scenario import scenario_to_dict

from .conftest import load_dict
from .conftest import put as _put
from .conftest import synthetic_base as _base

# (path into the scenario dict, zero allowed?, substring the message must contain)
FLOAT_FIELDS = [
    (("nodes", 0, "speed_gflops"), False, "[[nodes]] 'phone'.speed_gflops"),
    (("nodes", 1, "memory_mb"), False, "[[nodes]] 'edge'.memory_mb"),
    (("nodes", 2, "cost_per_request"), True, "[[nodes]] 'cloud'.cost_per_request"),
    (("nodes", 0, "uplink", "propagation_ms"), True, "[[nodes]] 'phone'.uplink.propagation_ms"),
    (("nodes", 1, "uplink", "bandwidth_mbps"), False, "[[nodes]] 'edge'.uplink.bandwidth_mbps"),
    (("nodes", 1, "uplink", "cost_per_mb"), True, "[[nodes]] 'edge'.uplink.cost_per_mb"),
    (("models", 0, "gflops"), False, "[[models]] 'm-small'.gflops"),
    (("models", 1, "memory_mb"), False, "[[models]] 'm-big'.memory_mb"),
    (("workload", "rate_per_s"), False, "[workload].rate_per_s"),
    (("workload", "timeout_ms"), False, "[workload].timeout_ms"),
    (("workload", "mean_burst_s"), False, "[workload].mean_burst_s"),
    (("workload", "diurnal_period_s"), False, "[workload].diurnal_period_s"),
    (("workload", "background", 0, "utilisation"), True, "[[workload.background]] 'edge'.utilisation"),
    (("workload", "background", 0, "mean_service_ms"), False, "[[workload.background]] 'edge'.mean_service_ms"),
    (("reward", "w_acc"), True, "[reward].w_acc"),
    (("reward", "w_lat_per_s"), True, "[reward].w_lat_per_s"),
    (("reward", "w_cost"), True, "[reward].w_cost"),
    (("reward", "deadline_ms"), False, "[reward].deadline_ms"),
    (("feedback", "delay_s"), True, "[feedback].delay_s"),
    (("faults", 0, "factor"), False, "[[faults]] #1.factor"),
    (("faults", 0, "start_s"), True, "[[faults]] #1.start_s"),
]
INT_FIELDS = [
    (("nodes", 2, "servers"), "[[nodes]] 'cloud'.servers"),
    (("models", 0, "input_bytes"), "[[models]] 'm-small'.input_bytes"),
    (("models", 1, "output_bytes"), "[[models]] 'm-big'.output_bytes"),
    (("trace", "synthetic", "n_samples"), "[trace.synthetic].n_samples"),
    (("trace", "synthetic", "n_classes"), "[trace.synthetic].n_classes"),
    (("trace", "synthetic", "seed"), "[trace.synthetic].seed"),
    (("feedback", "delay_requests"), "[feedback].delay_requests"),
]


def _load(d: dict):
    return load_dict(d, "prop.toml")


def test_synthetic_base_is_valid():
    assert _load(_base()).trace.synthetic.n_classes == 3


_special = st.sampled_from([math.nan, math.inf, -math.inf])
_negative = st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False)
_non_positive = st.floats(max_value=0.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FLOAT_FIELDS), data=st.data())
def test_bad_float_names_the_field(field, data):
    path, zero_ok, expected = field
    value = data.draw(st.one_of(_special, _negative if zero_ok else _non_positive))
    d = _base()
    _put(d, path, value)
    with pytest.raises(ConfigError) as info:
        _load(d)
    msg = str(info.value)
    assert msg.startswith("prop.toml: "), msg
    assert expected in msg, msg


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(INT_FIELDS), value=st.one_of(st.integers(max_value=0), st.floats(allow_nan=True),
                                                           st.booleans(), st.text(max_size=3)))
def test_bad_integer_names_the_field(field, value):
    path, expected = field
    if path[-1] in ("seed", "delay_requests") and value == 0 and type(value) is int:
        value = -1  # zero is allowed there
    d = _base()
    _put(d, path, value)
    with pytest.raises(ConfigError) as info:
        _load(d)
    assert expected in str(info.value), str(info.value)


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from([f[0] for f in FLOAT_FIELDS]),
       value=st.one_of(st.text(max_size=4), st.booleans(), st.lists(st.integers(), max_size=2)))
def test_wrong_type_names_the_field(field, value):
    d = _base()
    _put(d, field, value)
    with pytest.raises(ConfigError, match=r"must be a number"):
        _load(d)


@settings(max_examples=40, deadline=None)
@given(rate=st.floats(min_value=1e-3, max_value=1e6), bw=st.floats(min_value=1e-3, max_value=1e6),
       prop=st.floats(min_value=0.0, max_value=1e4), servers=st.integers(min_value=1, max_value=64))
def test_valid_numbers_round_trip(rate, bw, prop, servers):
    d = _base()
    _put(d, ("workload", "rate_per_s"), rate)
    _put(d, ("nodes", 0, "uplink", "bandwidth_mbps"), bw)
    _put(d, ("nodes", 0, "uplink", "propagation_ms"), prop)
    _put(d, ("nodes", 2, "servers"), servers)
    s = _load(d)
    assert _load(scenario_to_dict(s)) == s
    assert s.workload.rate_per_s == rate and s.node("cloud").servers == servers
