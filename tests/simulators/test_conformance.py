"""Every built-in simulator meets the simulator contract: shapes, purity, jit/vmap, gradients."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen as jg

S = jg.simulators

# (name, factory, design used for the checks, gradient checked here). Designs avoid t = 0,
# where a central difference in the times would step to negative times (NaN by contract). The
# ODE simulators' gradients are checked in float64 in a separate process (conftest.py,
# _background_checks.py): compiling a gradient through diffrax is the slowest step of this
# suite, and it runs there beside these tests. SIR with exact Binomial counts is a
# configuration of SIR, checked by `test_exact_binomial_observations`.
CASES = [
    ("gaussian_linear", lambda: S.GaussianLinear(dim=3), None, True),
    ("two_moons", S.TwoMoons, None, False),
    ("damped_oscillator", S.DampedOscillator, jnp.linspace(0.2, 5.0, 10), True),
    ("sir", S.SIR, 17.0 * jnp.arange(10.0) + 3.0, False),
    ("lotka_volterra", S.LotkaVolterra, 2.1 * jnp.arange(10.0) + 0.5, False),
]
ODE_CASES = ("sir", "lotka_volterra")
DIFFERENTIABLE = ("gaussian_linear", "damped_oscillator", "sir", "lotka_volterra")

NUM_ROWS = 4


def _call(simulator, key, theta, design):
    return simulator(key, theta, design)


_jit_call = eqx.filter_jit(_call)
_vmap_call = eqx.filter_jit(jax.vmap(_call, in_axes=(None, 0, 0, None)))


def _central_difference(fn, point):
    """Central differences with steps 1e-3 relative to each coordinate (at least 1e-4)."""
    steps = 1e-3 * jnp.maximum(jnp.abs(point), 0.1)
    rows = [(fn(point + e) - fn(point - e)) for e in jnp.diag(steps)]
    return jnp.stack(rows) / (2.0 * steps)


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def case(request):
    """Everything the checks need, computed with one compilation of each kind per simulator."""
    name, factory, design, differentiable = request.param
    simulator = factory()
    keys = jax.random.split(jax.random.key(11), NUM_ROWS)
    thetas = simulator.prior.sample(jax.random.key(5), (NUM_ROWS,))
    out = {"name": name, "simulator": simulator, "design": design, "thetas": thetas}
    out["plain"] = [np.asarray(simulator(keys[i], thetas[i], design)) for i in range(2)]
    out["jit"] = np.asarray(_jit_call(simulator, keys[0], thetas[0], design))
    out["jit_again"] = np.asarray(_jit_call(simulator, keys[0], thetas[0], design))
    out["jit_other_key"] = np.asarray(_jit_call(simulator, keys[1], thetas[0], design))
    out["vmap"] = np.asarray(_vmap_call(simulator, keys, thetas, design))
    if differentiable:
        weights = jax.random.normal(jax.random.key(2), simulator.x_shape(design))

        def loss(theta, design):
            return jnp.sum(weights * simulator(keys[0], theta, design))

        argnums = (0, 1) if design is not None else (0,)
        out["grad"] = eqx.filter_jit(jax.grad(loss, argnums=argnums))(thetas[0], design)
        # The differences reuse the compiled single-example call.
        jitted_loss = lambda t, d: jnp.sum(weights * _jit_call(simulator, keys[0], t, d))
        out["fd"] = [_central_difference(lambda t: jitted_loss(t, design), thetas[0])]
        if design is not None:
            out["fd"].append(_central_difference(lambda d: jitted_loss(thetas[0], d), design))
    return out


def test_output_shape_and_finite(case):
    expected = case["simulator"].x_shape(case["design"])
    assert case["vmap"].shape == (NUM_ROWS, *expected)
    assert case["jit"].shape == expected
    assert np.all(np.isfinite(case["vmap"]))


def test_jit_and_vmap_agree_with_plain_call(case):
    # Different compilations may round differently (fused ops, vectorised while loops): closed
    # forms then agree to a few float32 ulps of the output scale. An adaptive ODE solve turns
    # such rounding into different step choices; its global error is the local tolerance
    # (rtol=1e-6) amplified by the dynamics (up to ~1e3 for Lotka-Volterra, whose predator dips
    # to ~1e-5 of its peak and rebounds), so ODE outputs are compared to 1e-3.
    rtol = 1e-3 if case["name"] in ODE_CASES else 1e-5
    scale = max(1.0, float(np.max(np.abs(case["plain"][0]))))
    np.testing.assert_allclose(case["jit"], case["plain"][0], rtol=rtol, atol=rtol * scale)
    for i in range(2):
        np.testing.assert_allclose(case["vmap"][i], case["plain"][i], rtol=rtol, atol=rtol * scale)


def test_same_key_same_x_different_keys_differ(case):
    np.testing.assert_array_equal(case["jit"], case["jit_again"])
    assert not np.array_equal(case["jit"], case["jit_other_key"])
    assert not np.array_equal(case["vmap"][0], case["vmap"][1])


@eqx.filter_jit
def _prior_draws(prior, key):
    samples = prior.sample(key, (200,))
    return samples, prior.support.check(samples), prior.log_prob(samples)


def test_prior_samples_inside_support(case):
    samples, inside, log_prob = _prior_draws(case["simulator"].prior, jax.random.key(3))
    assert samples.shape == (200, case["simulator"].theta_dim)
    assert bool(jnp.all(inside))
    assert bool(jnp.all(jnp.isfinite(log_prob)))


def test_gradients_match_central_differences(case, background_checks):
    if case["name"] in ODE_CASES:
        _check_float64_ode_gradients(case["name"], background_checks.load("gradients.npz"))
        return
    if "grad" not in case:
        assert case["name"] not in DIFFERENTIABLE
        pytest.skip(f"{case['name']} is not differentiable (|.| in the shift: a kink)")
    # Tolerance: in float32 each loss evaluation carries a relative error eps of about 1e-6 (ODE
    # tolerance rtol=1e-6, float32 rounding ~1e-7 times the number of accumulated terms), so a
    # central difference with relative step h = 1e-3 has noise ~ eps / h ~ 1e-3 and truncation
    # error ~ h^2 ~ 1e-6, relative to the gradient norm. Observed errors are 5e-5 to 6e-4; we
    # allow 1e-2 (norm-wise), which a wrong gradient (sign, missing term, zero) exceeds by far.
    for grad, fd in zip(case["grad"], case["fd"]):
        grad, fd = np.asarray(grad), np.asarray(fd)
        assert np.all(np.isfinite(grad))
        assert np.linalg.norm(grad - fd) <= 1e-2 * np.linalg.norm(fd), (grad, fd)


def _check_float64_ode_gradients(name, results):
    # Tolerance: the float64 solve uses rtol=1e-10, so each loss evaluation is accurate to
    # ~1e-10 relative; central differences with relative step h = 1e-5 then carry noise
    # ~1e-10 / 1e-5 = 1e-5 and truncation error ~h^2 = 1e-10, relative to the gradient norm.
    # Observed: ~1e-7. We allow 1e-4.
    assert str(results[f"{name}_dtype"]) == "float64"
    for wrt in ("theta", "design"):
        grad, fd = results[f"{name}_grad_{wrt}"], results[f"{name}_fd_{wrt}"]
        assert np.all(np.isfinite(grad))
        assert np.linalg.norm(grad - fd) <= 1e-4 * np.linalg.norm(fd), (wrt, grad, fd)


def test_exact_binomial_observations():
    sim = S.SIR(exact_binomial=True)
    theta = jnp.array([0.6, 0.12])
    key, other_key = jax.random.split(jax.random.key(0))

    @eqx.filter_jit
    def run(sim, keys, theta):
        xs = jax.vmap(sim, in_axes=(0, None))(keys, theta)
        return xs, sim.num_sampled * sim.infected_fraction(theta)

    xs, expected = run(sim, jnp.stack([key, key, other_key]), theta)
    x = xs[0]
    assert x.shape == sim.x_shape() == (10,)
    assert np.array_equal(np.round(x), np.asarray(x))
    assert bool(jnp.all((x >= 0) & (x <= sim.num_sampled)))
    np.testing.assert_array_equal(xs[1], x)
    assert not np.array_equal(xs[2], x)
    # The counts follow the ODE: mean 1000 I/N, Binomial spread (sd at most sqrt(250) < 16).
    assert float(jnp.max(jnp.abs(x - expected))) < 6 * 16


def test_has_likelihood_and_dimensions():
    for _, factory, _, _ in CASES:
        sim = factory()
        assert sim.has_likelihood
        assert sim.theta_dim == sim.prior.event_shape[0]


def test_design_errors_are_readable():
    with pytest.raises(ValueError, match="1-D array of measurement times"):
        S.DampedOscillator()(jax.random.key(0), jnp.ones(3), jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="has no experimental design"):
        S.TwoMoons()(jax.random.key(0), jnp.zeros(2), jnp.ones(3))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        S.DampedOscillator()(jax.random.key(0), jnp.ones(2))


def test_failed_ode_solve_gives_nan():
    # Prey growing at rate 100 with a negligible predator overflow float32 (e^(100 t)) long
    # before t = 19: the solve fails, and the failure comes back as NaN instead of an error.
    sim, design = S.LotkaVolterra(), CASES[-1][2]
    x = _jit_call(sim, jax.random.key(0), jnp.array([100.0, 1e-6, 1.0, 1e-6]), design)
    assert bool(jnp.all(jnp.isnan(x)))
