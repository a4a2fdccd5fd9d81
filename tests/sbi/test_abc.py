"""Rejection ABC and SMC-ABC against the exact linear-Gaussian posterior."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen as jg

SIM = jg.simulators.GaussianLinear(dim=2)
X_O = jnp.array([0.3, -0.2])


def test_rejection_abc_recovers_the_posterior_mean():
    post = jg.sbi.rejection_abc(
        jax.random.key(0), SIM, X_O, num_simulations=20_000, quantile=0.025
    )
    exact = SIM.posterior(X_O)
    samples = post.sample(jax.random.key(1), X_O, 500)
    # 500 accepted particles; the mean's Monte Carlo error is sd / sqrt(500) ~ 0.01, and a
    # 1% quantile tolerance widens the posterior a little (no effect on the mean by symmetry).
    # 5 standard errors:
    assert np.all(np.abs(np.asarray(samples.mean(0) - exact.mean)) < 0.05)
    assert post.log_prob(samples[:4], X_O).shape == (4,)
    with pytest.raises(ValueError, match="only valid for the observation"):
        post.sample(jax.random.key(1), X_O + 1, 5)


def test_tolerance_that_accepts_nothing_is_an_error():
    with pytest.raises(ValueError, match="Raise the tolerance"):
        jg.sbi.rejection_abc(
            jax.random.key(0), SIM, X_O, num_simulations=1000, tolerance=1e-9
        )


@pytest.mark.slow
def test_smc_abc_shrinks_the_tolerance_and_matches_the_posterior():
    post = jg.sbi.smc_abc(
        jax.random.key(2), SIM, X_O, num_particles=500, num_rounds=4
    )
    exact = SIM.posterior(X_O)
    samples = post.sample(jax.random.key(3), X_O, 2000)
    sd = np.sqrt(np.diag(np.asarray(exact.covariance_matrix)))
    # Weighted particles: the effective size is >= ~200 here, so the mean's error is below
    # sd / sqrt(200) ~ 0.016; 5 of those plus the residual ABC bias allowance 0.02:
    assert np.all(np.abs(np.asarray(samples.mean(0) - exact.mean)) < 0.1)
    # ABC with a tolerance can only widen the posterior; 4 rounds get within 30%.
    assert np.all(np.asarray(samples.std(0)) < 1.3 * sd)
    assert post.tolerance < 1.0
