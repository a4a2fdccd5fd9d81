"""The search recovers the seed laws; it is deterministic; bad input fails clearly."""

import warnings

import jax
import numpy as np
import pytest
import sympy

import jaxgen as jg
from jaxgen.symbolic import SearchConfig
from jaxgen.symbolic import search as search_module

# One configuration and one data size for every test, so the compiled evaluators are shared.
CONFIG = SearchConfig(num_islands=4, island_size=40, offspring_per_island=32)
N = 200


def fit(key, X, y, **kw):
    kw.setdefault("max_iterations", 60)
    # No time limit: a search cut by the clock depends on the machine's load, not the key.
    kw.setdefault("time_budget", None)
    return jg.symbolic.fit(key, X, y, config=CONFIG, **kw)


def constant_ratio(expr, truth, symbols, rng):
    """The ratio expr / truth at random points: (mean, relative spread)."""
    f = sympy.lambdify(symbols, expr / truth, "numpy")
    pts = [rng.uniform(1.0, 3.0, 50) for _ in symbols]
    r = np.broadcast_to(np.asarray(f(*pts), np.float64), (50,))
    return float(np.mean(r)), float(np.std(r) / abs(np.mean(r)))


def test_kepler_third_law_from_noisy_data():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 5.0, N)
    T = a**1.5 * (1 + 0.01 * rng.normal(size=N))
    res = fit(jax.random.key(2), a[:, None], T, variable_names=["a"], max_iterations=30,
              time_budget=None)
    sym = sympy.Symbol("a", real=True)
    mean, spread = constant_ratio(res.best.sympy(), sym**1.5, [sym], rng)
    # 1% multiplicative noise on 200 points fits the prefactor to ~0.1%; allow 2%
    assert abs(mean - 1) < 0.02 and spread < 1e-3, str(res.best)
    assert res.best.complexity <= 5


def test_nfw_profile():
    rng = np.random.default_rng(1)
    r = rng.uniform(0.1, 10.0, N)
    rho0, rs = 2.0, 1.5
    rho = rho0 / ((r / rs) * (1 + r / rs) ** 2)
    res = fit(jax.random.key(1), r[:, None], rho, variable_names=["r"], max_iterations=120)
    sym = sympy.Symbol("r", real=True)
    truth = rho0 / ((sym / rs) * (1 + sym / rs) ** 2)
    mean, spread = constant_ratio(res.best.sympy(), truth, [sym], rng)
    assert abs(mean - 1) < 1e-3 and spread < 1e-3, str(res.best)


def test_ohms_law_and_result_api():
    rng = np.random.default_rng(2)
    X = np.stack([rng.uniform(0.5, 5, N), rng.uniform(1, 10, N)], 1)
    res = fit(jax.random.key(2), X, X[:, 0] * X[:, 1], variable_names=["I", "R"])
    I, R = sympy.symbols("I R", real=True)
    assert sympy.simplify(res.best.sympy() - I * R) == 0
    assert res.stopped == "exact"
    assert res.pareto[-1].loss <= res.pareto[0].loss
    assert res.select("accuracy").complexity >= res.best.complexity
    np.testing.assert_allclose(res.predict(X), X[:, 0] * X[:, 1], rtol=1e-5)
    assert "I" in str(res) and "<" in str(res)


def test_deterministic_for_fixed_key_and_budget():
    rng = np.random.default_rng(3)
    x = rng.uniform(1, 3, (N, 1))
    y = np.sin(x[:, 0]) * x[:, 0] + 0.5
    runs = [fit(jax.random.key(5), x, y, max_iterations=3, time_budget=None) for _ in range(2)]
    assert [str(e.expression) for e in runs[0].pareto] == [str(e.expression) for e in runs[1].pareto]
    assert [e.loss for e in runs[0].pareto] == [e.loss for e in runs[1].pareto]
    assert runs[0].num_evals == runs[1].num_evals


def test_interrupted_search_returns_best_so_far(monkeypatch):
    calls = {"n": 0}
    real = search_module.population_loss

    def interrupting(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(search_module, "population_loss", interrupting)
    rng = np.random.default_rng(4)
    x = rng.uniform(1, 3, (N, 1))
    res = fit(jax.random.key(0), x, np.exp(x[:, 0]) + x[:, 0] ** 3, time_budget=None)
    assert res.stopped == "interrupted" and res.pareto


def test_bad_input():
    key = jax.random.key(0)
    X = np.ones((10, 2))
    with pytest.raises(ValueError, match="same number of rows"):
        jg.symbolic.fit(key, X, np.ones(9), max_iterations=1)
    with pytest.raises(ValueError, match="positive"):
        jg.symbolic.fit(key, X, np.ones(10), time_budget=0)
    with pytest.raises(ValueError, match="needs a budget"):
        jg.symbolic.fit(key, X, np.ones(10), time_budget=None)
    with pytest.raises(ValueError, match="one entry per column"):
        jg.symbolic.fit(key, X, np.ones(10), units=["m"], output_units="m", max_iterations=1)
    with pytest.raises(TypeError, match="not a JAX function"):
        jg.symbolic.fit(key, X, np.ones(10), operators=["+", lambda a: float(a)], max_iterations=1)
    with pytest.raises(TypeError, match="typed PRNG key"):
        jg.symbolic.fit(0, X, np.ones(10), max_iterations=1)
    with pytest.raises(ValueError, match="variable_names"):
        jg.symbolic.fit(key, X, np.ones(10), variable_names=["a"], max_iterations=1)


def test_nonfinite_rows_are_dropped_with_a_warning():
    rng = np.random.default_rng(5)
    X = np.stack([rng.uniform(0.5, 5, N), rng.uniform(1, 10, N)], 1)
    y = X[:, 0] * X[:, 1]
    X[3, 0] = np.nan
    y[7] = np.inf
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(jax.random.key(2), X, y, variable_names=["I", "R"])
    assert any("Dropped 2 of" in str(w.message) for w in caught)
    assert res.stopped == "exact"


def test_units_penalty_keeps_only_consistent_expressions():
    from jaxgen.symbolic.units import expression_dimensions, parse_units, units_matrix

    rng = np.random.default_rng(6)
    X = rng.uniform(1, 3, (N, 3))
    y = X[:, 0] * X[:, 1] + X[:, 2]  # m * v + p: momenta
    units = ["kg", "m s^-1", "m s^-1 kg"]
    res = fit(jax.random.key(3), X, y, variable_names=["m", "v", "p"], units=units,
              output_units="m s^-1 kg", dimensional_analysis="penalty", max_iterations=15)
    D = units_matrix(units, 3)
    for entry in res.pareto:
        dims = expression_dimensions(entry.expression.tree, D, entry.expression.operators)
        assert dims is not False
        assert dims is None or np.allclose(dims, parse_units("m s^-1 kg"))


def test_units_with_pi_reduction_recovers_a_feynman_law():
    # I.12.11 without the angle: F = q (Ef + B v); groups B v / Ef
    rng = np.random.default_rng(7)
    X = rng.uniform(1, 5, (N, 4))
    y = X[:, 0] * (X[:, 1] + X[:, 2] * X[:, 3])
    res = fit(jax.random.key(4), X, y, variable_names=["q", "Ef", "B", "v"],
              units=["m^2 s^-2 kg V^-1", "m^-1 V", "m^-2 s V", "m s^-1"],
              output_units="m s^-2 kg")
    q, Ef, B, v = sympy.symbols("q Ef B v", real=True)
    mean, spread = constant_ratio(res.best.sympy(), q * (Ef + B * v), [q, Ef, B, v], rng)
    assert abs(mean - 1) < 1e-4 and spread < 1e-4, str(res.best)
