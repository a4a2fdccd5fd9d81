"""The optional PySR backend and symbolic distillation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

import jaxgen as jg
from jaxgen.symbolic.pysr_backend import pysr_available

needs_pysr = pytest.mark.skipif(
    not pysr_available(),
    reason="PySR/juliacall are not installed (PySR needs Julia, which cannot be installed here)",
)


@pytest.mark.skipif(pysr_available(), reason="PySR is installed: the error path does not apply")
def test_pysr_backend_without_pysr_says_how_to_install():
    with pytest.raises(ImportError, match="pip install pysr"):
        jg.symbolic.fit(jax.random.key(0), np.ones((5, 1)), np.ones(5), backend="pysr",
                        max_iterations=1)


@needs_pysr
def test_pysr_backend_maps_results():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, (100, 2))
    res = jg.symbolic.fit(jax.random.key(0), X, X[:, 0] * X[:, 1], backend="pysr",
                          max_iterations=20, time_budget=None, variable_names=["a", "b"])
    a, b = sympy.symbols("a b", real=True)
    assert sympy.simplify(res.best.sympy() - a * b) == 0


def test_unknown_backend():
    with pytest.raises(ValueError, match="Unknown backend"):
        jg.symbolic.fit(jax.random.key(0), np.ones((5, 1)), np.ones(5), backend="julia",
                        max_iterations=1)


def test_distill_recovers_a_known_function():
    from jaxgen.symbolic import SearchConfig
    from jaxgen.symbolic.distill import distill

    rng = np.random.default_rng(0)
    feats = jnp.asarray(rng.uniform(1, 3, (200, 2)))

    def edge(f):  # stands in for a trained network's message function
        return jnp.stack([f[0] * f[1], f[0] - f[1]])

    res = distill(jax.random.key(0), edge, feats, output_index=0, max_iterations=30,
                  config=SearchConfig(num_islands=4, island_size=40, offspring_per_island=32))
    x0, x1 = sympy.symbols("x0 x1", real=True)
    assert sympy.simplify(res.best.sympy() - x0 * x1) == 0
    with pytest.raises(ValueError, match="output_index"):
        distill(jax.random.key(0), edge, feats, max_iterations=1)


@pytest.mark.slow
def test_force_law_is_distilled_from_a_trained_network():
    from jaxgen.symbolic.distill import force_law_example

    _, res, loss = force_law_example(jax.random.key(0), time_budget=60.0)
    assert loss < 1e-2
    dx, r = sympy.symbols("dx r", real=True)
    ratio = sympy.simplify(res.best.sympy() / (dx / r**3))
    assert ratio.free_symbols == set() and abs(float(ratio) - 1) < 0.1, str(res.best)
