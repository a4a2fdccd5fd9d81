"""Exact likelihoods and posteriors of the built-in simulators against independent answers."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import jaxgen as jg

S = jg.simulators


def test_gaussian_linear_log_likelihood_matches_scipy():
    sim = S.GaussianLinear(dim=4)
    rng = np.random.default_rng(0)
    for _ in range(3):
        theta, x = rng.normal(size=4) * 0.3, rng.normal(size=4) * 0.5
        expected = scipy.stats.multivariate_normal(theta, 0.1 * np.eye(4)).logpdf(x)
        got = sim.log_likelihood(jnp.asarray(theta, jnp.float32), jnp.asarray(x, jnp.float32))
        np.testing.assert_allclose(float(got), expected, rtol=1e-5, atol=1e-5)


def test_damped_oscillator_log_likelihood_matches_hand_formula():
    sim = S.DampedOscillator()
    theta = np.array([1.7, 0.4, 2.3])
    times = np.array([0.1, 0.7, 1.9, 3.3])
    x = np.array([1.5, 0.2, -0.3, 0.05])
    mean = theta[0] * np.exp(-theta[1] * times) * np.cos(theta[2] * times)
    expected = np.sum(-0.5 * ((x - mean) / 0.05) ** 2 - np.log(0.05 * math.sqrt(2 * math.pi)))
    got = sim.log_likelihood(jnp.asarray(theta), jnp.asarray(x), jnp.asarray(times))
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_two_moons_likelihood_integrates_to_one():
    sim = S.TwoMoons()
    theta = jnp.array([0.3, -0.2])
    # All the mass lies in the half-disc u0 > 0, |u| < 0.17 (7 standard deviations of the radius
    # beyond its mean 0.1) around centre = shift(theta) + (0.25, 0). Midpoint rule with cell
    # h = 5e-4 whose edges sit on the boundary u0 = 0 where the density jumps: the error is about
    # h^2 / 24 * integral |f''| ~ h^2 / (24 * 0.01^2) ~ 1e-4 of the mass; mass beyond 7 sd is
    # ~1e-12, float32 pairwise sums add ~1e-6. Tolerance 2e-3.
    h = 5e-4
    centre = np.asarray(sim._shift(theta)) + np.array([0.25, 0.0])
    u0 = (np.arange(340) + 0.5) * h
    u1 = (np.arange(-340, 340) + 0.5) * h
    grid = np.stack(np.meshgrid(u0, u1, indexing="ij"), axis=-1).reshape(-1, 2) + centre
    log_p = jax.jit(jax.vmap(sim.log_likelihood, in_axes=(None, 0)))(theta, jnp.asarray(grid))
    mass = float(jnp.sum(jnp.exp(log_p))) * h * h
    assert abs(mass - 1.0) < 2e-3, mass
    # Outside the half-plane the likelihood is exactly zero.
    assert float(sim.log_likelihood(theta, jnp.asarray(centre - np.array([0.05, 0.0])))) == -np.inf


def _posterior_by_conditioning(x_o, prior_var, noise_var):
    """Posterior of theta given n observations, conditioning the joint Gaussian of
    (theta, x_1, ..., x_n) with numpy (independent of the conjugate formula)."""
    n, d = x_o.shape
    eye = np.eye(d)
    cov_tt = prior_var * eye
    cov_tx = np.tile(prior_var * eye, (1, n))
    cov_xx = np.kron(np.full((n, n), prior_var), eye) + noise_var * np.eye(n * d)
    gain = cov_tx @ np.linalg.inv(cov_xx)
    return gain @ x_o.reshape(-1), cov_tt - gain @ cov_tx.T


@pytest.mark.parametrize("num_obs", [1, 3])
def test_gaussian_linear_posterior_matches_gaussian_conditioning(num_obs):
    sim = S.GaussianLinear(dim=3, prior_scale=0.5, noise_scale=0.2)
    x_o = np.random.default_rng(num_obs).normal(size=(num_obs, 3))
    mean, cov = _posterior_by_conditioning(x_o, 0.25, 0.04)
    posterior = sim.posterior(jnp.asarray(x_o[0] if num_obs == 1 else x_o, jnp.float32))
    np.testing.assert_allclose(np.asarray(posterior.mean), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(posterior.covariance_matrix), cov, rtol=1e-5, atol=1e-7)


def test_gaussian_linear_posterior_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        S.GaussianLinear(dim=3).posterior(jnp.zeros(4))


def test_two_moons_reference_posterior_moments():
    # Exact posterior in rotated coordinates s = (theta1 + theta2)/sqrt2, v = (theta2 - theta1)/
    # sqrt2: |s| = r cos a + 0.25 - x0 and v = x1 - r sin a with a ~ U(-pi/2, pi/2),
    # r ~ N(0.1, 0.01^2), and the sign of s is + or - with probability 1/2 (the two moons). This
    # holds when the moon stays inside the prior box and |s| > 0 never binds (x0 < 0.09), true for
    # x_o below. Hence E[v] = x1, Var[v] = E[r^2]/2, E|s| = 0.2/pi + 0.25 - x0,
    # Var|s| = E[r^2]/2 - (0.2/pi)^2.
    sim = S.TwoMoons()
    x_o = np.array([0.05, -0.02])
    n = 10_000
    samples = np.asarray(sim.reference_posterior_samples(jax.random.key(4), jnp.asarray(x_o), n))
    assert samples.shape == (n, 2) and np.all(np.abs(samples) <= 1.0)
    s = (samples[:, 0] + samples[:, 1]) / math.sqrt(2)
    v = (samples[:, 1] - samples[:, 0]) / math.sqrt(2)
    second_moment_r = 0.1**2 + 0.01**2
    var_v = second_moment_r / 2
    mean_abs_s = 0.2 / math.pi + 0.25 - x_o[0]
    var_abs_s = second_moment_r / 2 - (0.2 / math.pi) ** 2
    # Tolerances: 5 Monte Carlo standard errors with n = 10^4 (the 0.001-wide grid cells add a
    # bias below 1e-6). SE of a sample variance <= sigma^2 sqrt(2/n) here, because v is
    # platykurtic (an arcsine law blurred by r); SE of a fraction <= 0.5/sqrt(n).
    assert abs(v.mean() - x_o[1]) < 5 * math.sqrt(var_v / n)
    assert abs(v.var() - var_v) < 5 * var_v * math.sqrt(2 / n)
    assert abs(np.abs(s).mean() - mean_abs_s) < 5 * math.sqrt(var_abs_s / n)
    assert abs((s > 0).mean() - 0.5) < 5 * 0.5 / math.sqrt(n)
    # Samples lie on the moons. Only those jittered across the support's edge (the moon tips,
    # angle +-pi/2) can fall outside it: the tips' cells hold ~4 * (0.0005 / 0.1) / pi of the
    # mass, so well under 1% of the samples.
    log_lik = jax.vmap(sim.log_likelihood, in_axes=(0, None))(jnp.asarray(samples), x_o)
    assert float(jnp.mean(~jnp.isfinite(log_lik))) < 0.01


def test_ode_log_likelihoods_match_scipy_given_the_ode_solution():
    lotka, sir = S.LotkaVolterra(), S.SIR(exact_binomial=True)
    lv_theta, sir_theta = jnp.array([0.9, 0.05, 1.1, 0.04]), jnp.array([0.5, 0.13])
    lv_x = jnp.exp(jnp.linspace(0.0, 3.0, 20))
    sir_x = jnp.array([0.0, 1, 3, 40, 120, 160, 90, 30, 8, 2])

    @eqx.filter_jit
    def run(lotka, sir):
        return (
            lotka.populations(lv_theta),
            lotka.log_likelihood(lv_theta, lv_x),
            sir.infected_fraction(sir_theta),
            sir.log_likelihood(sir_theta, sir_x),
        )

    populations, lv_log_lik, fraction, sir_log_lik = map(np.asarray, run(lotka, sir))
    # Observations are ordered prey values then predator values.
    medians = np.clip(populations, 1e-10, 1e4).T.reshape(-1)
    expected = scipy.stats.lognorm(s=0.1, scale=medians).logpdf(np.asarray(lv_x)).sum()
    np.testing.assert_allclose(lv_log_lik, expected, rtol=1e-5)
    expected = scipy.stats.binom(1000, np.clip(fraction, 0, 1)).logpmf(np.asarray(sir_x)).sum()
    np.testing.assert_allclose(sir_log_lik, expected, rtol=1e-4)
