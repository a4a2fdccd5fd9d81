"""The implicit SDE design problems: StochasticSIR and Pharmacokinetic."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen as jg

S = jg.simulators

# Measurement times in the middle of solver grid cells (SIR: cells of 0.1 day; PK: 0.05 h), so
# a central difference of +-1e-3 stays inside one cell where the read-out is linear in time.
CASES = {
    "sir": (S.StochasticSIR, jnp.array([10.03, 30.07])),
    "pk": (S.Pharmacokinetic, jnp.array([1.02, 3.02, 6.02, 12.02, 20.02])),
}


@eqx.filter_jit
def _batch(sim, keys, thetas, design):
    return jax.vmap(lambda k, t: sim(k, t, design))(keys, thetas)


@eqx.filter_jit
def _design_grad(sim, key, theta, design, weights):
    return jax.grad(lambda d: jnp.sum(weights * sim(key, theta, d)))(design)


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    factory, design = CASES[request.param]
    sim = factory()
    keys = jax.random.split(jax.random.key(0), 64)
    thetas = sim.prior.sample(jax.random.key(1), (64,))
    return request.param, sim, keys, thetas, design


def test_shapes_determinism_and_range(case):
    name, sim, keys, thetas, design = case
    x = np.asarray(_batch(sim, keys, thetas, design))
    assert x.shape == (64, design.shape[0]) and np.all(np.isfinite(x))
    np.testing.assert_array_equal(x, np.asarray(_batch(sim, keys, thetas, design)))
    other = np.asarray(_batch(sim, jax.random.split(jax.random.key(9), 64), thetas, design))
    assert not np.allclose(other, x)
    assert sim.has_likelihood is False
    if name == "sir":  # counts of infected people stay within the population
        assert np.all((x >= 0) & (x <= sim.population))


def test_design_gradient_is_exact(case):
    # d x / d tau is the slope of the read-out between grid points: central differences with the
    # same key (same Brownian path) agree up to float32 rounding of the differences.
    name, sim, keys, thetas, design = case
    # For the SIR, an epidemic that takes off (R0 = 16; with two initial cases it dies out with
    # probability about 1/256), so the counts change with time.
    theta = jnp.array([0.8, 0.05]) if name == "sir" else thetas[0]
    weights = jax.random.normal(jax.random.key(3), design.shape)
    grad = np.asarray(_design_grad(sim, keys[0], theta, design, weights))
    loss = lambda d: float(jnp.sum(weights * _batch(sim, keys[:1], theta[None], d)[0]))
    h = 1e-3
    fd = np.array([(loss(design.at[i].add(h)) - loss(design.at[i].add(-h))) / (2 * h)
                   for i in range(design.shape[0])])
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)
    scale = np.abs(fd).max()
    np.testing.assert_allclose(grad, fd, rtol=2e-2, atol=2e-2 * scale)


def test_pharmacokinetic_without_volatility_solves_the_ode():
    # With sigma = 0 the state is the two-compartment ODE solution,
    # A_c(t) = D k_a / (k_a - k_e) (exp(-k_e t) - exp(-k_a t)); the observation adds 0.1 N(0, 1).
    # Euler's global error with 4800 steps (dt = 0.005 h) is below 0.5% here; the mean of 200
    # noisy read-outs has standard error 0.1 / sqrt(200) = 0.0071, so 6 sd is 0.043.
    sim = S.Pharmacokinetic(volatility=0.0, num_steps=4800)
    theta = jnp.log(jnp.array([1.2, 0.08, 18.0]))
    design = jnp.array([0.5, 2.0, 6.0, 12.0, 23.0])
    keys = jax.random.split(jax.random.key(4), 200)
    x = np.asarray(_batch(sim, keys, jnp.broadcast_to(theta, (200, 3)), design)).mean(0)
    ka, ke, v = 1.2, 0.08, 18.0
    t = np.asarray(design)
    exact = 400.0 * ka / (ka - ke) * (np.exp(-ke * t) - np.exp(-ka * t)) / v
    np.testing.assert_allclose(x, exact, rtol=5e-3, atol=0.043)


def test_bad_design_and_parameters_are_reported():
    sim = S.StochasticSIR()
    with pytest.raises(ValueError, match="measurement times"):
        sim(jax.random.key(0), jnp.array([0.5, 0.1]), jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="shape \\(2,\\)"):
        sim(jax.random.key(0), jnp.array([0.5, 0.1, 0.2]))
    with pytest.raises(ValueError, match="population > 2"):
        S.StochasticSIR(population=1.0)
