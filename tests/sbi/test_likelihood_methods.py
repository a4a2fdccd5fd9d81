"""NLE, NRE, the samplers and the likelihood-based posterior."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen as jg
from jaxgen import JaxgenWarning
from jaxgen.sbi.mcmc import AbstractTarget
from jaxgen.sbi.nle import ElementwiseLog
from jaxgen.sbi.nre import build_ratio_estimator

SIM = jg.simulators.GaussianLinear(dim=2)
X_O = jnp.array([0.3, -0.2])


def small_flow(key, dim, cond_dim):
    return jg.flows.maf(key, dim, cond_dim=cond_dim, num_layers=2, hidden_size=32)


@pytest.fixture(scope="module")
def data():
    return jg.simulate(jax.random.key(0), SIM, 1000)


@pytest.fixture(scope="module")
def exact_posterior():
    return jg.sbi.LikelihoodPosterior(jg.sbi.ExactLikelihood(SIM), SIM.prior, (2,), 2)


@pytest.fixture(scope="module")
def nle_posterior(data):
    theta, x = data
    return jg.sbi.nle(
        jax.random.key(1), theta, x, prior=SIM.prior, density_estimator=small_flow,
        max_epochs=25,
    )


@pytest.fixture(scope="module")
def nre_posterior(data):
    theta, x = data
    return jg.sbi.nre(
        jax.random.key(2), theta, x, prior=SIM.prior, max_epochs=25, hidden_size=32
    )


def _moments_match(samples, exact, ess):
    # The mean of each coordinate has Monte Carlo standard error sd / sqrt(ESS); 5 standard
    # errors keeps the false-alarm rate below 1e-6 per coordinate. The standard deviation's
    # relative error is about 1 / sqrt(2 ESS); allow 5 of those too.
    mean, sd = np.asarray(exact.mean), np.sqrt(np.diag(np.asarray(exact.covariance_matrix)))
    s = np.asarray(samples)
    se = sd / np.sqrt(ess)
    assert np.all(np.abs(s.mean(0) - mean) < 5 * se), (s.mean(0), mean, se)
    assert np.all(np.abs(s.std(0) / sd - 1) < 5 / np.sqrt(2 * ess)), (s.std(0), sd)


def test_metropolis_on_exact_likelihood_matches_conjugate_posterior(exact_posterior):
    samples, info = exact_posterior.sample(jax.random.key(3), X_O, 2000, return_info=True)
    assert samples.shape == (2000, 2)
    assert info.converged and np.all(info.r_hat < 1.1)
    _moments_match(samples, SIM.posterior(X_O), float(np.min(info.ess)))


def test_iid_observations_add_log_likelihoods(exact_posterior):
    xs = jnp.array([[0.3, -0.2], [0.5, 0.1], [0.1, -0.4]])
    samples, info = exact_posterior.sample(jax.random.key(4), xs, 2000, return_info=True)
    _moments_match(samples, SIM.posterior(xs), float(np.min(info.ess)))
    theta = jnp.array([[0.1, 0.2]])
    single = sum(exact_posterior.log_prob(theta, x) for x in xs)
    joint = exact_posterior.log_prob(theta, xs)
    # The prior is counted once in `joint` and three times in `single`.
    two_priors = 2 * SIM.prior.log_prob(theta)
    np.testing.assert_allclose(joint, single - two_priors, rtol=1e-5)


def test_importance_and_rejection_samplers(exact_posterior):
    exact = SIM.posterior(X_O)
    for sampler in (jg.sbi.ImportanceSampling(50_000), jg.sbi.RejectionSampling(50_000)):
        post = exact_posterior.with_sampler(sampler)
        samples, info = post.sample(jax.random.key(5), X_O, 1000, return_info=True)
        # Resampling with replacement: the effective size is at most the number of samples.
        _moments_match(samples, exact, min(1000.0, float(info.ess[0])))


def test_normalised_log_prob_matches_exact(exact_posterior):
    theta = SIM.posterior(X_O).sample(jax.random.key(6), (5,))
    got = exact_posterior.log_prob(theta, X_O, key=jax.random.key(7), num_evidence_samples=50_000)
    # The evidence estimate from 50k prior draws has a relative error of about
    # sqrt(var(w)) / (mean(w) sqrt(n)) ~ 0.01 here; 0.05 in log space is a wide margin.
    np.testing.assert_allclose(got, SIM.posterior(X_O).log_prob(theta), atol=0.05)


def test_independence_metropolis_with_gaussian_proposal(exact_posterior):
    exact = SIM.posterior(X_O)

    class WideGaussian(eqx.Module):
        def sample_and_log_prob(self, key, num):
            import numpyro.distributions as dist

            q = dist.MultivariateNormal(exact.mean, 2.0 * exact.covariance_matrix)
            theta = q.sample(key, (num,))
            return theta, q.log_prob(theta)

    post = exact_posterior.with_sampler(jg.sbi.IndependenceMetropolis(WideGaussian()))
    samples, info = post.sample(jax.random.key(8), X_O, 4000, return_info=True)
    # A proposal twice as wide as the target accepts about half its moves.
    assert 0.3 < info.acceptance_rate < 0.9
    _moments_match(samples, exact, float(np.min(info.ess)))


def test_poorly_mixing_chains_warn(exact_posterior):
    stuck = exact_posterior.with_sampler(
        jg.sbi.MetropolisHastings(num_warmup=2, thin=1, jump_probability=0.0)
    )
    with pytest.warns(JaxgenWarning, match="R-hat"):
        _, info = stuck.sample(jax.random.key(9), jnp.array([0.9, 0.9]), 200, return_info=True)
    assert not info.converged


class _TwoBumps(AbstractTarget):
    """Two narrow Gaussian bumps at (-2, 0) (weight 1/4) and (2, 0) (weight 3/4) under a
    uniform prior on [-4, 4]^2: the random walk alone cannot cross between them."""

    def log_likelihood(self, theta):
        sd = 0.2
        left = jnp.log(0.25) - 0.5 * jnp.sum((theta - jnp.array([-2.0, 0.0])) ** 2) / sd**2
        right = jnp.log(0.75) - 0.5 * jnp.sum((theta - jnp.array([2.0, 0.0])) ** 2) / sd**2
        return jnp.logaddexp(left, right)

    def log_prior(self, theta):
        return jnp.where(jnp.all(jnp.abs(theta) <= 4.0), -2 * jnp.log(8.0), -jnp.inf)

    def sample_prior(self, key, num):
        return jax.random.uniform(key, (num, 2), minval=-4.0, maxval=4.0)


def test_mode_jumping_mixes_separated_modes():
    target = _TwoBumps()
    samples, trace = jg.sbi.MetropolisHastings().run(jax.random.key(0), target, 20_000)
    r_hat = jg.sbi.split_r_hat(np.asarray(trace.chains))
    ess = float(np.min(jg.sbi.effective_sample_size(np.asarray(trace.chains))))
    assert np.all(r_hat < 1.05), r_hat
    # The right bump holds 3/4 of the mass. The indicator's Monte Carlo standard error is
    # sqrt(p (1 - p) / ESS) with p = 3/4; 5 of them keep false alarms below 1e-6.
    frac = float(np.mean(np.asarray(samples)[:, 0] > 0))
    assert abs(frac - 0.75) < 5 * np.sqrt(0.75 * 0.25 / ess), (frac, ess)
    # Without the jumps every chain stays in the bump where it started.
    _, stuck = jg.sbi.MetropolisHastings(jump_probability=0.0).run(
        jax.random.key(0), target, 20_000
    )
    assert np.max(jg.sbi.split_r_hat(np.asarray(stuck.chains))) > 1.5


def test_r_hat_and_ess_on_known_chains():
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(8, 500, 1))
    # Independent draws: R-hat within 1.01 and an ESS near 4000 (its sampling sd ~ 10%).
    assert abs(jg.sbi.split_r_hat(iid)[0] - 1) < 0.01
    assert 0.7 < jg.sbi.effective_sample_size(iid)[0] / 4000 < 1.3
    shifted = iid + np.arange(8)[:, None, None]
    assert jg.sbi.split_r_hat(shifted)[0] > 2


@pytest.mark.slow
def test_nle_posterior_shapes_and_quality(nle_posterior):
    samples = nle_posterior.sample(jax.random.key(10), X_O, 2000, warn=False)
    assert samples.shape == (2000, 2)
    assert nle_posterior.log_prob(samples[:7], X_O).shape == (7,)
    # A small flow trained briefly: only a coarse check here, C2ST in the slow tests.
    exact = SIM.posterior(X_O)
    assert np.all(np.abs(np.asarray(samples.mean(0) - exact.mean)) < 0.1)


@pytest.mark.slow
def test_nre_posterior_shapes_and_quality(nre_posterior):
    samples = nre_posterior.sample(jax.random.key(11), X_O, 2000, warn=False)
    assert samples.shape == (2000, 2)
    exact = SIM.posterior(X_O)
    assert np.all(np.abs(np.asarray(samples.mean(0) - exact.mean)) < 0.1)


def test_observation_with_wrong_shape_is_rejected(exact_posterior):
    with pytest.raises(ValueError, match="shape of a training simulation"):
        exact_posterior.sample(jax.random.key(0), jnp.zeros(3), 10)
    with pytest.raises(ValueError, match="NaN"):
        exact_posterior.sample(jax.random.key(0), jnp.array([jnp.nan, 0.0]), 10)


def test_exact_likelihood_needs_a_likelihood():
    class NoLikelihood(jg.simulators.AbstractSimulator):
        prior: object = SIM.prior

        def __call__(self, key, theta, design=None):
            return theta

    with pytest.raises(ValueError, match="no tractable"):
        jg.sbi.ExactLikelihood(NoLikelihood())


@pytest.mark.slow
def test_ratio_losses_are_finite_and_distinct(data):
    theta, x = data
    model = build_ratio_estimator(jax.random.key(0), theta, x, None)
    losses = [
        float(loss(model, theta[:64], x[:64], jax.random.key(0)))
        for loss in (
            jg.sbi.BinaryRatioLoss(),
            jg.sbi.ContrastiveRatioLoss(num_atoms=5),
            jg.sbi.BalancedRatioLoss(),
        )
    ]
    assert np.all(np.isfinite(losses))
    # An untrained classifier has logits near 0: binary loss ~ 2 log 2, contrastive ~ log 5.
    assert abs(losses[0] - 2 * np.log(2)) < 0.5
    assert abs(losses[1] - np.log(5)) < 0.5


@pytest.mark.slow
@pytest.mark.parametrize(
    "method",
    ["nle", "nre_binary", "nre_contrastive", "nre_balanced"],
)
def test_c2st_against_exact_gaussian_linear(method):
    theta, x = jg.simulate(jax.random.key(20), SIM, 5000)
    key = jax.random.key(21)
    if method == "nle":
        post = jg.sbi.nle(key, theta, x, prior=SIM.prior)
    else:
        loss = {
            "nre_binary": jg.sbi.BinaryRatioLoss(),
            "nre_contrastive": jg.sbi.ContrastiveRatioLoss(),
            "nre_balanced": jg.sbi.BalancedRatioLoss(),
        }[method]
        post = jg.sbi.nre(key, theta, x, prior=SIM.prior, loss=loss)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JaxgenWarning)
        samples = post.sample(jax.random.key(22), X_O, 2000)
    ref = SIM.posterior(X_O).sample(jax.random.key(23), (2000,))
    # C2ST of two samples of the same distribution is 0.5 with a fold-averaged sd of about
    # sqrt(0.25 / 4000) ~ 0.008; the estimator error dominates: 0.5 +- 0.1 (house tolerance).
    assert jg.sbi.c2st(samples, ref) < 0.6


# -- x transforms of NLE ------------------------------------------------------------------------

POSITIVE = jg.simulators.LotkaVolterra()


def _log_x_model(key, theta, x, x_transform="log"):
    from jaxgen.sbi.nle import build_likelihood_estimator

    return build_likelihood_estimator(key, theta, x, small_flow, True, x_transform)


def test_log_transform_likelihood_is_a_normalised_density_of_the_original_x():
    # One positive dimension: y = log x with q(y | theta) a flow. The density of x is
    # q(log x | theta) / x, which must integrate to one over x in (0, inf). Substituting
    # x = e^y turns the integral into the integral of q(y) over y, computed here on a fine grid
    # in x (trapezoid rule in log x, so the grid covers many decades evenly); its error on a
    # smooth density spanning the grid is far below 1e-3.
    key = jax.random.key(30)
    theta = jax.random.normal(key, (500, 2))
    x = jnp.exp(theta[:, :1] + 0.3 * jax.random.normal(jax.random.key(31), (500, 1)))
    model = _log_x_model(jax.random.key(32), theta, x)
    log_x = jnp.linspace(-25.0, 25.0, 20_001)
    grid = jnp.exp(log_x)[:, None]
    t = jnp.array([0.3, -0.5])
    log_q = jax.vmap(lambda xi: model(t, xi))(grid)
    # int q(x) dx = int q(x) x d(log x).
    total = float(jnp.trapezoid(jnp.exp(log_q) * grid[:, 0], log_x))
    assert abs(total - 1.0) < 1e-3, total
    # The change of variables, term by term: log q(x) = log q_y(log x) - log x.
    xi = jnp.array([2.5])
    plain = model.estimator.log_prob_one(jnp.log(xi), t)
    np.testing.assert_allclose(model(t, xi), plain - jnp.log(xi[0]), rtol=1e-6)


def test_log_transform_matches_a_flow_trained_on_log_x():
    # Training on x with `x_transform="log"` and on log(x) without a transform fit the same
    # flow (same data after the transform, same keys); the log-likelihoods differ by the
    # Jacobian -sum(log x), which is constant in theta, so the posteriors agree exactly.
    theta, x = jg.simulate(jax.random.key(33), POSITIVE, 200)
    kw = {"prior": POSITIVE.prior, "density_estimator": small_flow, "max_epochs": 2}
    with_t = jg.sbi.nle(jax.random.key(34), theta, x, x_transform="log", **kw)
    on_log = jg.sbi.nle(jax.random.key(34), theta, jnp.log(x), **kw)
    t = POSITIVE.prior.sample(jax.random.key(35), (4,))
    x_o = x[0]
    got = jax.vmap(lambda ti: with_t.log_likelihood(ti, x_o))(t)
    ref = jax.vmap(lambda ti: on_log.log_likelihood(ti, jnp.log(x_o)))(t)
    np.testing.assert_allclose(got, ref - jnp.sum(jnp.log(x_o)), rtol=1e-4, atol=1e-3)
    # Emulator draws come back in the original units: positive.
    draws = with_t.log_likelihood.sample(jax.random.key(36), t[0], 50)
    assert draws.shape == (50, 20) and bool(jnp.all(draws > 0))


def test_log_transform_rejects_non_positive_data():
    theta = jax.random.normal(jax.random.key(37), (50, 2))
    x = jnp.abs(jax.random.normal(jax.random.key(38), (50, 3))) + 0.1
    bad = x.at[7, 1].set(0.0)
    with pytest.raises(ValueError, match=r"x > 0.*1 of 50 training simulations.*row 7.*x \+ 1"):
        _log_x_model(jax.random.key(39), theta, bad)
    post = jg.sbi.LikelihoodPosterior(
        _log_x_model(jax.random.key(39), theta, x), SIM.prior, (3,), 2
    )
    with pytest.raises(ValueError, match=r"x > 0.*observations in `x_o`"):
        post.sample(jax.random.key(40), jnp.array([1.0, -2.0, 0.5]), 10)
    with pytest.raises(ValueError, match=r"x > 0"):
        post.log_prob(jnp.zeros(2), jnp.array([1.0, 0.0, 0.5]))
    with pytest.raises(ValueError, match="'log'"):
        _log_x_model(jax.random.key(39), theta, x, x_transform="sqrt")
    with pytest.raises(ValueError, match="dim=3"):
        _log_x_model(jax.random.key(39), theta, x, x_transform=ElementwiseLog(4))


def test_mode_jumping_reaches_a_narrow_mode_far_from_the_others():
    # A narrow bump (sd 0.01) holding nearly all the mass, and a broad shelf 3 units away that
    # catches chains with ~e^-30 of the bump's density. Mixture components sized by the spread
    # between the chains (the shelf-to-bump distance) would almost never land a jump inside
    # the bump; components sized by each chain's own scale do, so every chain ends in the bump
    # (about a third start on the shelf; with components sized by the spread between chains,
    # 10-20 of 50 chains were still there at the end and R-hat was 1.9).
    samples, trace = jg.sbi.MetropolisHastings().run(jax.random.key(41), _NarrowAndShelf(), 5000)
    chains = np.asarray(trace.chains)
    assert np.all(chains[:, -1, 0] > -1.0)
    assert float(jnp.mean(samples[:, 0] > -1.0)) > 0.9
    assert np.all(jg.sbi.split_r_hat(chains) < 1.1)


class _NarrowAndShelf(AbstractTarget):
    def log_likelihood(self, theta):
        bump = -0.5 * jnp.sum((theta - jnp.array([1.0, 0.0])) ** 2) / 0.01**2
        shelf = -30.0 - 0.5 * jnp.sum((theta - jnp.array([-2.0, 0.0])) ** 2) / 0.5**2
        return jnp.logaddexp(bump, shelf)

    def log_prior(self, theta):
        return jnp.where(jnp.all(jnp.abs(theta) <= 4.0), -2 * jnp.log(8.0), -jnp.inf)

    def sample_prior(self, key, num):
        return jax.random.uniform(key, (num, 2), minval=-4.0, maxval=4.0)
