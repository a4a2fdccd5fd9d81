"""AI Feynman's separability and symmetry tests, and fitting by splitting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.symbolic import (
    SearchConfig,
    find_separation,
    fit_separable,
    fit_surrogate,
    separability_error,
    symmetry_error,
)

CONFIG = SearchConfig(num_islands=4, island_size=40, offspring_per_island=32)
X = np.random.default_rng(0).uniform(1, 3, (200, 3))


def product(X):  # x0 * sin(x1) * x2: multiplicatively separable in every way
    return X[:, 0] * jnp.sin(X[:, 1]) * X[:, 2]


def additive(X):  # x0^2 + x1 * x2: additive split {0} | {1, 2}
    return X[:, 0] ** 2 + X[:, 1] * X[:, 2]


def test_separability_errors():
    assert separability_error(product, X, [0], "multiplicative") < 1e-5
    assert separability_error(product, X, [0], "additive") > 1e-2
    assert separability_error(additive, X, [0], "additive") < 1e-5
    assert separability_error(additive, X, [1], "additive") > 1e-2
    sep = find_separation(additive, X)
    assert sep.group == (0,) and sep.kind == "additive"
    with pytest.raises(ValueError, match="kind"):
        separability_error(product, X, [0], "subtractive")


def test_symmetries():
    def diff(X):
        return jnp.exp(X[:, 0] - X[:, 1]) * X[:, 2]

    def ratio(X):
        return X[:, 0] / X[:, 1] + X[:, 2]

    assert symmetry_error(diff, X, 0, 1, "translation") < 1e-5
    assert symmetry_error(diff, X, 0, 2, "translation") > 1e-2
    assert symmetry_error(ratio, X, 0, 1, "scaling") < 1e-5
    assert symmetry_error(ratio, X, 1, 2, "scaling") > 1e-2


def test_fit_by_splitting_with_an_exact_surrogate():
    y = np.asarray(additive(X))
    e = fit_separable(jax.random.key(0), X, y, surrogate=additive, max_iterations=40,
                      time_budget=60.0, config=CONFIG, variable_names=["a", "b", "c"])
    # each part is exact up to float32 constants, so the sum matches to ~1e-5 relative
    Xt = np.random.default_rng(1).uniform(1, 3, (50, 3))
    np.testing.assert_allclose(e.to_jax()(jnp.asarray(Xt)), additive(Xt), rtol=1e-4,
                               err_msg=str(e))
    assert {s.name for s in e.sympy().free_symbols} == {"a", "b", "c"}


@pytest.mark.slow
def test_surrogate_detects_separability():
    f = fit_surrogate(jax.random.key(0), X, np.asarray(product(X)))
    assert separability_error(f, X, [0], "multiplicative") < 0.02
