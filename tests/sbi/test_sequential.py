"""Sequential rounds, truncated priors and marginal estimation."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import jaxgen as jg

SIM = jg.simulators.GaussianLinear(dim=2)
X_O = jnp.array([0.3, -0.2])


def small_flow(key, dim, cond_dim):
    return jg.flows.maf(key, dim, cond_dim=cond_dim, num_layers=2, hidden_size=32)


def test_marginal_prior_of_independent_and_gaussian_priors():
    uniform = dist.Uniform(jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 3.0, 5.0])).to_event(1)
    m = jg.sbi.marginal_prior(uniform, (2, 0))
    np.testing.assert_allclose(m.base_dist.low, [2.0, 0.0])
    np.testing.assert_allclose(m.base_dist.high, [5.0, 1.0])
    cov = jnp.array([[1.0, 0.5, 0.0], [0.5, 2.0, 0.1], [0.0, 0.1, 3.0]])
    mvn = dist.MultivariateNormal(jnp.arange(3.0), covariance_matrix=cov)
    m = jg.sbi.marginal_prior(mvn, (1, 2))
    np.testing.assert_allclose(m.covariance_matrix, cov[1:, 1:], rtol=1e-6)
    with pytest.raises(ValueError, match="coordinates"):
        jg.sbi.marginal_prior(mvn, (3,))


def test_atomic_loss_is_a_proper_cross_entropy():
    theta, x = jg.simulate(jax.random.key(0), SIM, 64)
    est = jg.sbi.npe(
        jax.random.key(1), theta, x, prior=SIM.prior, density_estimator=small_flow, max_epochs=1
    ).estimator
    # Each row is a softmax over 8 atoms: the loss lies in (0, inf) and is near log 8 before
    # the estimator has learnt anything that separates the atoms.
    loss = float(jg.sbi.atomic_loss(est, theta, x, SIM.prior, 8))
    assert 0 < loss < 2 * np.log(8)


def test_bad_round_counts():
    with pytest.raises(ValueError, match="num_rounds"):
        jg.sbi.sequential_nre(jax.random.key(0), SIM, X_O, num_rounds=0)
    with pytest.raises(ValueError, match="one count per round"):
        jg.sbi.sequential_nre(jax.random.key(0), SIM, X_O, num_rounds=2, num_simulations=[5])


@pytest.mark.slow
@pytest.mark.parametrize("truncate", [False, True])
def test_sequential_npe_matches_exact_posterior(truncate):
    res = jg.sbi.sequential_npe(
        jax.random.key(2), SIM, X_O, num_rounds=2, num_simulations=1000, truncate=truncate,
        density_estimator=small_flow, max_epochs=100,
    )
    assert res.num_simulations == [1000, 2000]
    samples = res.posterior.sample(jax.random.key(3), X_O, 2000)
    ref = SIM.posterior(X_O).sample(jax.random.key(4), (2000,))
    # House tolerance for C2ST: 0.5 + 0.1 (the null sd for 2000 vs 2000 is ~0.01).
    assert jg.sbi.c2st(samples, ref) < 0.6


@pytest.mark.slow
def test_truncated_sequential_nre_matches_exact_posterior():
    res = jg.sbi.sequential_nre(
        jax.random.key(5), SIM, X_O, num_rounds=2, num_simulations=1000, truncate=True,
    )
    samples = res.posterior.sample(jax.random.key(6), X_O, 2000, warn=False)
    ref = SIM.posterior(X_O).sample(jax.random.key(7), (2000,))
    assert jg.sbi.c2st(samples, ref) < 0.6
