"""Mining gold: joint scores and ratios, and the gold-augmented losses, against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen as jg

SIM = jg.simulators.PartonDetector()
S2_Z, S2_X = SIM.parton_scale**2, SIM.detector_scale**2


def jacobian_t(theta):
    # g(theta) = (theta_1, theta_2 + theta_1^2 / 2): rows of J^T are d g / d theta_j.
    return jnp.array([[1.0, theta[0]], [0.0, 1.0]])


def marginal_score(theta, x):
    return jacobian_t(theta) @ (x - SIM.mean(theta)) / (S2_Z + S2_X)


def test_simulator_marginal_likelihood_integrates_the_latent():
    theta = jnp.array([0.7, -0.4])
    x = jnp.array([0.2, 0.1])
    # Monte Carlo over the latent: p(x | theta) = E_z[p(x | z)], 200k draws give a relative
    # error of about 0.3% here; 2% is a safe margin.
    z = SIM.mean(theta) + SIM.parton_scale * jax.random.normal(jax.random.key(0), (200_000, 2))
    import numpyro.distributions as dist

    mc = jnp.mean(jnp.exp(dist.Normal(z, SIM.detector_scale).log_prob(x).sum(-1)))
    np.testing.assert_allclose(jnp.log(mc), SIM.log_likelihood(theta, x), atol=0.02)


def test_joint_score_is_the_autodiff_of_the_joint_density():
    gold = jg.sbi.mine_gold(jax.random.key(1), SIM, 2000, theta_ref=jnp.zeros(2))
    assert gold.joint_score.shape == (2000, 2) and gold.joint_log_ratio.shape == (2000,)
    # E[t(x, z | theta) | x, theta] is the marginal score. Regress the joint score of the toy on
    # the closed-form marginal score over many simulations: averaging out z, the residual
    # t - marginal has mean zero and is uncorrelated with the marginal score.
    marg = jax.vmap(marginal_score)(gold.theta, gold.x)
    resid = np.asarray(gold.joint_score - marg)
    # Each residual coordinate has sd ~ 2 here; the mean of 2000 has se ~ 0.05: 5 se.
    assert np.all(np.abs(resid.mean(0)) < 0.25)
    corr = [np.corrcoef(resid[:, j], np.asarray(marg[:, j]))[0, 1] for j in range(2)]
    # Sample correlation of uncorrelated variables: sd 1/sqrt(2000) ~ 0.022; 5 sd.
    assert np.all(np.abs(corr) < 0.11)


def test_rolr_loss_prefers_the_true_ratio():
    theta_ref = jnp.zeros(2)
    key = jax.random.key(2)
    # Parameters near theta_ref, where joint ratios are moderate (far away, the squared
    # ratio errors are dominated by rare extreme draws: ROLR is a local method).
    theta = jax.random.uniform(key, (4000, 2), minval=-0.5, maxval=0.5)
    gold = jg.sbi.mine_gold(key, SIM, 4000, theta=theta, theta_ref=theta_ref)
    gold_ref = jg.sbi.mine_reference_gold(jax.random.key(3), SIM, gold.theta, theta_ref)

    def true_log_r(theta, x):
        return SIM.log_likelihood(theta, x) - SIM.log_likelihood(theta_ref, x)

    lr_true = jnp.concatenate([
        jax.vmap(true_log_r)(gold.theta, gold.x), jax.vmap(true_log_r)(gold_ref.theta, gold_ref.x)
    ])
    lr_joint = jnp.concatenate([gold.joint_log_ratio, gold_ref.joint_log_ratio])
    ref = jnp.concatenate([jnp.zeros(4000, bool), jnp.ones(4000, bool)])
    exact = float(jg.sbi.rolr_loss(lr_true, lr_joint, ref))
    for shift in (-0.5, 0.5):
        assert float(jg.sbi.rolr_loss(lr_true + shift, lr_joint, ref)) > exact


def test_gold_needs_a_joint_density():
    with pytest.raises(TypeError, match="no joint density"):
        jg.sbi.mine_gold(jax.random.key(0), jg.simulators.GaussianLinear(dim=2), 10)


@pytest.mark.slow
def test_sally_learns_the_local_score():
    theta_ref = jnp.array([0.5, 0.0])
    n = 3000
    gold = jg.sbi.mine_gold(jax.random.key(4), SIM, n, theta=jnp.tile(theta_ref, (n, 1)))
    summary = jg.sbi.sally(jax.random.key(5), gold, width_size=32, max_epochs=60)
    xs = jax.vmap(lambda k: SIM(k, theta_ref))(jax.random.split(jax.random.key(6), 500))
    got = jax.vmap(summary)(xs)
    want = jax.vmap(lambda x: marginal_score(theta_ref, x))(xs)
    # The target is linear in x; the fitted network should explain > 90% of its variance
    # (the joint-score noise only slows convergence, it does not bias the optimum).
    r2 = 1 - jnp.sum((got - want) ** 2, 0) / jnp.sum((want - want.mean(0)) ** 2, 0)
    assert np.all(np.asarray(r2) > 0.9), r2


@pytest.mark.slow
def test_scandal_beats_nle_with_few_simulations():
    x_o = jnp.array([[0.5, 0.6], [0.4, 0.9], [0.8, 0.5]])
    exact = jg.sbi.LikelihoodPosterior(jg.sbi.ExactLikelihood(SIM), SIM.prior, (2,), 2)
    ref = exact.sample(jax.random.key(7), x_o, 2000)
    gold = jg.sbi.mine_gold(jax.random.key(8), SIM, 300)
    plain = jg.sbi.nle(jax.random.key(9), gold.theta, gold.x, prior=SIM.prior)
    augmented = jg.sbi.scandal(jax.random.key(9), gold, prior=SIM.prior)
    c_plain = jg.sbi.c2st(plain.sample(jax.random.key(10), x_o, 2000, warn=False), ref)
    c_gold = jg.sbi.c2st(augmented.sample(jax.random.key(10), x_o, 2000, warn=False), ref)
    assert c_gold < c_plain


def test_numpyro_model_gives_the_joint_score():
    import numpyro
    import numpyro.distributions as dist

    def model(theta):
        z = numpyro.sample("z", dist.Normal(theta[0], 1.0).expand([3]).to_event(1))
        numpyro.sample("x", dist.Normal(z, 0.5).to_event(1))

    sim = jg.simulators.NumpyroSimulator(model, dist.Normal(0, 1).expand([1]).to_event(1))
    assert sim.latent_shapes == (("z", (3,)),)
    theta = jnp.array([0.3])
    x, z = sim.sample_joint(jax.random.key(0), theta)
    # log p(x, z | theta) depends on theta only through z ~ N(theta, 1): score = sum(z - theta).
    np.testing.assert_allclose(jg.sbi.joint_score(sim, theta, x, z), [jnp.sum(z - theta)],
                               rtol=1e-5)
    with pytest.raises(ValueError, match="no sample site named"):
        jg.simulators.NumpyroSimulator(model, dist.Normal(0, 1).expand([1]).to_event(1), "y")
