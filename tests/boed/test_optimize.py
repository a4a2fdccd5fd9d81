"""Design optimization recovers known optima; constraints; bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen as jg
from jaxgen.simulators.linear_regression import LinearGaussianRegression

# Four measurements of a 2-coefficient regression in the box [-1, 1]^2. The EIG
# 1/2 log det(I + D^T D) is maximal when D^T D = 4 I (every row a corner, columns orthogonal):
# EIG* = log 5 = 1.609 nats; the starting design (all points near 0.1) has EIG 0.04.
SIM = LinearGaussianRegression(num_features=2, num_measurements=4)
OPTIMUM = math.log(5.0)


@pytest.mark.parametrize(
    "constraint",
    [jg.boed.Box(-1.0, 2.0), jg.boed.OrderedTimes(0.0, 5.0), jg.boed.Simplex(3.0),
     jg.boed.Box(jnp.array([0.0, 0.1] * 3), jnp.array([100.0, 2000.0] * 3),
                 log_scale=jnp.array([False, True] * 3))],
    ids=["box", "ordered", "simplex", "log_box"],
)
def test_constraints_map_onto_their_sets(constraint):
    u = jax.random.normal(jax.random.key(0), (6,)) * 3.0
    if isinstance(constraint, jg.boed.OrderedTimes):
        u = jnp.concatenate([u, jnp.zeros(1)])
    design = constraint.to_design(u)
    assert bool(constraint.contains(design))
    back = constraint.to_design(constraint.to_unconstrained(design))
    np.testing.assert_allclose(back, design, rtol=1e-4, atol=1e-5)


def test_log_scale_box_moves_by_factors():
    box = jg.boed.Box(jnp.array([0.0, 0.1]), jnp.array([100.0, 2000.0]),
                      log_scale=jnp.array([False, True]))
    # u = 0 is the middle: arithmetic for the linear coordinate, geometric for the log one
    np.testing.assert_allclose(box.to_design(jnp.zeros(2)), [50.0, (0.1 * 2000.0) ** 0.5],
                               rtol=1e-5)
    with pytest.raises(ValueError, match="need low > 0"):
        jg.boed.Box(0.0, 1.0, log_scale=True)


def test_gradient_ascent_finds_corner_design():
    design0 = jnp.full((4, 2), 0.1) + 0.01 * jnp.arange(8.0).reshape(4, 2)
    best = jg.boed.optimize_design(
        jax.random.key(1), SIM, design0,
        estimator=jg.boed.PriorContrastive(num_outer=64, num_inner=64),
        constraint=jg.boed.Box(-1.0, 1.0),
        method=jg.boed.GradientAscent(num_steps=150, learning_rate=0.1, num_restarts=3),
    )
    # The exact EIG of the returned design is within 0.05 nats of the optimum (gradient ascent
    # in the sigmoid-parameterized box approaches the corners but never reaches them exactly).
    assert float(SIM.exact_eig(best.design)) > OPTIMUM - 0.05
    assert bool(jnp.all(jnp.abs(best.design) <= 1.0))
    assert best.history.shape == (150,)
    assert best.candidate_designs.shape == (3, 4, 2)
    # PCE lower bound with 64 contrastive samples: within 4 standard errors of the truth or below
    assert best.eig < float(SIM.exact_eig(best.design)) + 4 * best.eig_stderr + 1e-3
    assert best.eig_stderr > 0


def test_bayesian_optimization_and_discrete_search_find_edges():
    sim = LinearGaussianRegression(num_features=1, num_measurements=1)
    est = jg.boed.PriorContrastive(num_outer=256, num_inner=64)
    best = jg.boed.optimize_design(
        jax.random.key(2), sim, jnp.array([[0.1]]), estimator=est,
        constraint=jg.boed.Box(-1.0, 1.0),
        method=jg.boed.BayesianOptimization(num_iterations=8, num_initial=3),
    )
    # EIG = 1/2 log(1 + d^2) is largest at |d| = 1; 0.8 is within 0.07 nats of the optimum.
    assert abs(float(best.design[0, 0])) > 0.8
    candidates = jnp.linspace(-1.0, 1.0, 5)[:, None, None]
    found = jg.boed.optimize_design(
        jax.random.key(3), sim, jnp.array([[0.1]]), estimator=est,
        constraint=jg.boed.Box(-1.0, 1.0),
        method=jg.boed.DiscreteSearch(candidates),
    )
    assert abs(float(found.design[0, 0])) == 1.0
    assert found.candidate_eigs.shape == (5,)


def test_bad_input_is_reported():
    key = jax.random.key(4)
    est = jg.boed.PriorContrastive(num_outer=8, num_inner=8)
    with pytest.raises(ValueError, match="violates the design constraint"):
        jg.boed.optimize_design(key, SIM, jnp.full((4, 2), 3.0), estimator=est,
                                constraint=jg.boed.Box(-1.0, 1.0))

    class Rounded(jg.simulators.AbstractSimulator):
        """The design enters only through `round`, so the EIG gradient is zero everywhere."""

        prior: object = SIM.prior

        def __call__(self, key, theta, design=None):
            return SIM(key, theta, jnp.round(design))

        def log_likelihood(self, theta, x, design=None):
            return SIM.log_likelihood(theta, x, jnp.round(design))

    with pytest.raises(TypeError, match="BayesianOptimization"):
        jg.boed.optimize_design(
            key, Rounded(), jnp.full((4, 2), 0.4), estimator=est,
            constraint=jg.boed.Box(-1.0, 1.0),
            method=jg.boed.GradientAscent(num_steps=3, num_restarts=1),
        )
