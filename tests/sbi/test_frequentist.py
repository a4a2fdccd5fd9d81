"""Likelihood-ratio tests, their coverage, and ratio calibration, with exact likelihoods."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import jaxgen as jg

SIM = jg.simulators.GaussianLinear(dim=1, prior_scale=1.0, noise_scale=1.0)
EXACT = jg.sbi.ExactLikelihood(SIM)


def test_lrt_coverage_matches_its_level():
    grid = jnp.linspace(-3, 3, 301)
    cov, se = jg.sbi.interval_coverage(
        jax.random.key(0), EXACT, SIM, jnp.array([0.4]), grid, num_obs=5, num_trials=400,
        level=0.68,
    )
    # Wilks is exact for a Gaussian mean. Binomial se at 400 trials is ~0.023; 4 se.
    assert abs(cov - 0.68) < 4 * 0.0233, (cov, se)


def test_confidence_set_is_the_textbook_interval():
    x = jnp.array([[0.1], [0.5], [-0.2], [0.8]])
    grid = jnp.linspace(-2, 2, 4001)
    cs = jg.sbi.likelihood_ratio_test(EXACT, x, grid, level=0.95)
    inside = cs.theta_grid[cs.inside, 0]
    # mean +- 1.96 / sqrt(n) for unit noise; the grid spacing is 0.001.
    mean, half = float(x.mean()), 1.959964 / 2.0
    np.testing.assert_allclose([inside.min(), inside.max()], [mean - half, mean + half],
                               atol=2e-3)


class Miscalibrated(jg.sbi.AbstractLogLikelihood):
    """The exact log-likelihood passed through a monotonic distortion."""

    inner: eqx.Module

    def __call__(self, theta, x):
        return 0.3 * self.inner(theta, x) + 2.0


def test_calibration_repairs_a_monotonic_distortion():
    t0, t1 = jnp.array([0.5]), jnp.array([-0.5])
    cal = jg.sbi.calibrate_ratio(jax.random.key(1), Miscalibrated(EXACT), SIM, t0, t1,
                                 num_simulations=20_000, num_bins=30)
    xs = jnp.linspace(-1.5, 1.5, 7)[:, None]
    got = jax.vmap(cal)(xs)
    want = jax.vmap(lambda x: SIM.log_likelihood(t0, x) - SIM.log_likelihood(t1, x))(xs)
    raw = jax.vmap(cal.score)(xs)
    # Histogram calibration with 30 bins and 20k draws per side: bin-count noise is a few
    # percent and the in-bin discretisation ~ the bin width in log-ratio (~0.1): 0.25 overall.
    np.testing.assert_allclose(got, want, atol=0.25)
    assert float(jnp.max(jnp.abs(raw - want))) > 0.5
