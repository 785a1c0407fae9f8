"""The agent registry finds every agent by itself (issue 18): the modules of ``idnbandit.agents``
(no list in ``agents/__init__.py``) and the ``idnbandit.agents`` entry points (the ``ens-*``
strategies of ``idnbandit.ensembles``, a third-party package's agents), without an upward import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from idnbandit.agents import registry


def _run(code: str, **env) -> str:
    """Run ``code`` in a fresh interpreter; its stdout (stderr shown on failure)."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=120, env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_ens_names_work_in_a_fresh_interpreter_without_importing_ensembles():
    out = _run("""
        import sys
        import idnbandit.agents
        # (idnbandit/__init__.py itself imports idnbandit.envs for its gymnasium ids)
        assert not any(m.split(".")[1] in ("ensembles", "sim", "bench", "cli")
                       for m in sys.modules if m.startswith("idnbandit.")), "agents imported a package above it"
        from idnbandit.agents import make_agent
        s = make_agent("ens-cucb(budget=0.5)", 4, 8, seed=0)
        print(type(s).__module__, s.budget)
        from idnbandit.agents.registry import agent_names, factory_names
        print(sorted(factory_names()))
        print("ens-seq" in agent_names())
    """)
    assert out.splitlines() == ["idnbandit.ensembles.cucb 0.5",
                                "['ens-cucb', 'ens-seq', 'ens-seq-learned', 'ens-single', 'ens-vote-all']", "False"]


def test_a_new_module_in_the_agents_package_is_found(tmp_path):
    """A module with an ``@register`` class placed among the agent modules (here: a folder added to the
    package's search path) is found on the first lookup, without a line in ``agents/__init__.py``."""
    (tmp_path / "zz_discovery_test_agent.py").write_text(textwrap.dedent('''
        from .baselines import Fixed
        from .registry import register

        @register("discovery-test-last", "test only: always the last option")
        class DiscoveryTestLast(Fixed):
            def __init__(self, n_actions, n_features, seed=None):
                super().__init__(n_actions, n_features, option=-1, seed=seed)
    '''))
    out = _run(f"""
        import idnbandit.agents
        idnbandit.agents.__path__.append({str(tmp_path)!r})
        from idnbandit.agents import make_agent
        from idnbandit.agents.registry import agent_class_by_name, agent_names
        print("discovery-test-last" in agent_names())
        agent = make_agent("discovery-test-last", 3, 2, seed=0)
        print(type(agent).__module__, agent.act([0.5, 1.0]), agent_class_by_name("DiscoveryTestLast") is type(agent))
    """)
    assert out.splitlines() == ["True", "idnbandit.agents.zz_discovery_test_agent 2 True"]


def _plugin(root: Path, entry_points: str) -> None:
    """An installed third-party distribution ``idn-plugin-test`` (its dist-info) and its module."""
    info = root / "idn_plugin_test-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: idn-plugin-test\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    (root / "idn_plugin_test.py").write_text(textwrap.dedent('''
        from idnbandit.agents.baselines import Fixed
        from idnbandit.agents.registry import register, register_factory

        @register("plugin-last", "a third-party agent: always the last option")
        class PluginLast(Fixed):
            def __init__(self, n_actions, n_features, seed=None):
                super().__init__(n_actions, n_features, option=-1, seed=seed)

        register_factory("plugin-first", lambda n_actions, n_features, seed=None: Fixed(n_actions, n_features),
                         "a third-party factory: always option 0")
    '''))


def test_a_third_party_package_registers_through_the_entry_point(tmp_path):
    _plugin(tmp_path, "[idnbandit.agents]\nmine = idn_plugin_test\nbroken = idn_no_such_module_here\n")
    out = _run("""
        import warnings
        from idnbandit.agents import make_agent
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            print(make_agent("plugin-last", 4, 2).act([0.5, 1.0]), make_agent("plugin-first", 4, 2).act([0.5, 1.0]))
        print([str(w.message).split(":")[0] for w in caught if w.category is RuntimeWarning])
        from idnbandit.cli import main
        main(["agents"])
    """, PYTHONPATH=os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]))
    lines = out.splitlines()
    assert lines[0] == "3 0"
    assert lines[1] == ("[\"agent plug-in 'broken' (idn_no_such_module_here, entry point group "
                        "'idnbandit.agents') could not be loaded and is left out\"]")
    listed = {line.split()[0] for line in lines[2:]}
    assert {"plugin-last", "plugin-first", "ens-cucb", "linucb"} <= listed


def test_an_unknown_name_suggests_among_agents_and_strategies():
    from idnbandit.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="did you mean 'ens-cucb'"):
        registry.make_agent("ens-cub", 4, 8)
    with pytest.raises(UnknownNameError, match="did you mean 'linucb'"):
        registry.make_agent("linucbb", 4, 8)
