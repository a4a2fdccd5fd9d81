"""NPE against the exact Gaussian-linear posterior, calibration, determinism and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import jaxgen as jg
from jaxgen.sbi.npe import prepare_training_data

DIM = 2
NUM_SIMS = 3000


@pytest.fixture(scope="module")
def problem():
    sim = jg.simulators.GaussianLinear(dim=DIM)
    theta, x = jg.simulate(jax.random.key(0), sim, NUM_SIMS)
    posterior = jg.sbi.npe(
        jax.random.key(1), theta, x, prior=sim.prior, max_epochs=60, batch_size=100
    )
    return sim, theta, x, posterior


def test_npe_matches_exact_posterior(problem):
    sim, _, _, posterior = problem
    x_o = jnp.array([0.25, -0.15])
    exact = sim.posterior(x_o)
    n = 4000
    samples = posterior.sample(jax.random.key(2), x_o, n)
    assert samples.shape == (n, DIM)
    ref = exact.sample(jax.random.key(3), (n,))
    # C2ST: for identical distributions the 5-fold accuracy over 2n points has standard error
    # sqrt(0.25 / (2n)) = 0.0056, so pure Monte Carlo noise stays below 0.52; the rest of the
    # 0.1 allowance (the SBI-benchmark convention "0.5 +- 0.1") is the approximation error of a
    # flow trained on 3,000 simulations.
    acc = jg.sbi.c2st(samples, ref, num_epochs=50)
    assert acc < 0.6, acc
    # Moments: the Monte Carlo standard error of the sample mean is sd / sqrt(n) = 0.016 sd; we
    # allow 4 such errors plus 0.15 sd of approximation error per coordinate.
    sd = jnp.sqrt(jnp.diag(exact.covariance_matrix))
    err = jnp.abs(samples.mean(0) - exact.mean) / sd
    assert jnp.all(err < 0.15 + 4 / np.sqrt(n)), err
    np.testing.assert_allclose(samples.std(0) / sd, 1.0, atol=0.15)


def test_npe_log_prob_close_to_exact(problem):
    sim, _, _, posterior = problem
    x_o = jnp.array([0.1, 0.3])
    exact = sim.posterior(x_o)
    theta = exact.sample(jax.random.key(4), (500,))
    diff = posterior.log_prob(theta, x_o) - exact.log_prob(theta)
    # Within the bulk of the posterior, the learned log density is close to the exact one; the
    # mean difference is a KL-like gap and must be small, the spread a shape error.
    assert abs(float(jnp.mean(diff))) < 0.15
    assert float(jnp.std(diff)) < 0.25
    assert posterior.log_prob(theta, x_o).shape == (500,)


def test_npe_is_calibrated(problem):
    sim, _, _, posterior = problem
    theta, x = jg.simulate(jax.random.key(5), sim, 200)
    result = jg.sbi.sbc(jax.random.key(6), posterior, theta, x, num_posterior_samples=100)
    assert result.ranks.shape == (200, DIM)
    # Bonferroni-corrected KS and chi-square tests at level 0.05 (see check_sbc); a
    # calibrated posterior fails this with probability <= 0.05.
    assert result.calibrated, (result.ks_pvalues, result.chi2_pvalues)
    cov = jg.sbi.expected_coverage(jax.random.key(7), posterior, theta, x,
                                   num_posterior_samples=200)
    # Binomial standard error of a coverage fraction over 200 tests is <= 0.035; 3 SE plus the
    # discreteness of 200 posterior samples per test (0.005) bounds the deviation.
    assert cov.max_deviation() < 3 * 0.035 + 0.01, cov.coverage


def test_sbc_detects_an_overconfident_posterior(problem):
    sim, _, _, posterior = problem

    class Overconfident(jg.sbi.AbstractPosterior):
        def sample(self, key, x_o, num_samples):
            exact = sim.posterior(x_o)
            z = jax.random.normal(key, (num_samples, DIM))
            return exact.mean + 0.4 * z * jnp.sqrt(jnp.diag(exact.covariance_matrix))

        def log_prob(self, theta, x_o):
            return sim.posterior(x_o).log_prob(theta)

    theta, x = jg.simulate(jax.random.key(8), sim, 200)
    result = jg.sbi.sbc(jax.random.key(9), Overconfident(), theta, x)
    assert not result.calibrated


def test_support_rejection_and_acceptance():
    # A bounded prior with a posterior piled against its edge: part of the flow's mass leaks
    # outside and must be rejected, never returned.
    prior = dist.Uniform(jnp.zeros(1), jnp.ones(1)).to_event(1)
    key = jax.random.key(10)
    theta = prior.sample(key, (1000,))
    x = theta + 0.3 * jax.random.normal(jax.random.key(11), theta.shape)
    post = jg.sbi.npe(
        key, theta, x, prior=prior, max_epochs=15,
        density_estimator=lambda k, d, c: jg.flows.maf(k, d, cond_dim=c, num_layers=2),
    )
    samples, acc = post.sample(key, jnp.array([-0.2]), 2000, return_acceptance=True)
    assert samples.shape == (2000, 1)
    assert jnp.all((samples >= 0) & (samples <= 1))
    assert 0 < acc < 1
    assert jnp.isneginf(post.log_prob(jnp.array([[1.5]]), jnp.array([0.5])))[0]


def test_npe_deterministic_and_bad_input(problem):
    # Same data shapes and settings as the fixture: the compiled training epoch is reused.
    sim, theta, x, _ = problem
    kwargs = dict(prior=sim.prior, max_epochs=2, batch_size=100)
    a = jg.sbi.npe(jax.random.key(1), theta, x, **kwargs)
    b = jg.sbi.npe(jax.random.key(1), theta, x, **kwargs)
    sa = a.sample(jax.random.key(2), x[0], 50)
    sb = b.sample(jax.random.key(2), x[0], 50)
    assert jnp.array_equal(sa, sb)

    with pytest.raises(ValueError, match="must have 2 columns"):
        jg.sbi.npe(jax.random.key(1), jnp.ones((NUM_SIMS, 3)), x, **kwargs)
    with pytest.raises(ValueError, match="same number of rows"):
        jg.sbi.npe(jax.random.key(1), theta, x[:100], **kwargs)
    with pytest.raises(ValueError, match="empty"):
        jg.sbi.npe(jax.random.key(1), theta[:0], x[:0], **kwargs)
    with pytest.raises(TypeError, match="legacy"):
        jg.sbi.npe(jax.random.PRNGKey(1), theta, x, **kwargs)
    with pytest.raises(ValueError, match="flat event shape"):
        jg.sbi.npe(jax.random.key(1), theta, x, prior=dist.Normal(jnp.zeros((2, 2)), 1.0)
                   .to_event(2), max_epochs=2)
    with pytest.raises(ValueError, match="ONE observation"):
        a.sample(jax.random.key(2), jnp.ones(5), 10)
    # NaN/inf simulations are dropped and counted before training (npe calls this first).
    bad_x = x.at[:7].set(jnp.nan).at[9, 1].set(jnp.inf)
    with pytest.warns(jg.JaxgenWarning, match=f"Dropped 8 of {NUM_SIMS}"):
        t_clean, x_clean = prepare_training_data(theta, bad_x, sim.prior)
    assert t_clean.shape == (NUM_SIMS - 8, DIM) and jnp.all(jnp.isfinite(x_clean))


def test_c2st_separates_and_matches():
    key = jax.random.key(12)
    a = jax.random.normal(key, (1000, 2))
    b = jax.random.normal(jax.random.key(13), (1000, 2))
    # Same distribution: accuracy ~ N(0.5, 0.011); 0.5 +- 0.05 is a 4.5 sigma band.
    assert abs(jg.sbi.c2st(a, b, num_epochs=30) - 0.5) < 0.05
    # Shift of 3 sd along one axis: Bayes accuracy Phi(1.5) = 0.933.
    acc = jg.sbi.c2st(a, b.at[:, 0].add(3.0), num_epochs=30)
    assert 0.9 < acc < 0.96
