"""Mining gold: joint scores and joint likelihood ratios from simulators with tractable latents.

For a simulator that can evaluate ``log p(x, z | theta)`` (an
:class:`~jaxgen.simulators.AbstractLatentSimulator`), autodiff gives the joint score
``t(x, z | theta) = grad_theta log p(x, z | theta)`` and the joint ratio
``r(x, z | theta, theta_ref)``. Their conditional expectations given ``x`` are the intractable
marginal score and ratio, so they are unbiased regression targets that make the estimators
below far more sample-efficient (Brehmer, Louppe, Pavez & Cranmer 2020, "Mining gold from
implicit models to improve likelihood-free inference", PNAS; Brehmer, Cranmer, Louppe & Pavez
2018, "Constraining effective field theories with machine learning", PRL).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ..nn import MLP, AbstractEmbedding, Standardizer
from ..train import fit
from .likelihood_posterior import LikelihoodPosterior
from .mcmc import AbstractSampler, MetropolisHastings
from .nle import build_likelihood_estimator
from .nre import build_ratio_estimator


class GoldData(eqx.Module):
    """Simulations augmented with their joint score and (optionally) joint log-ratio.

    Attributes:
        theta: ``(n, d)``; x: ``(n, ...)``.
        joint_score: ``(n, d)``, ``grad_theta log p(x, z | theta)`` at the row's theta.
        joint_log_ratio: ``(n,)``, ``log p(x, z | theta) - log p(x, z | theta_ref)``, or None.
        theta_ref: the reference parameters of the ratio, or None.
    """

    theta: Array
    x: Array
    joint_score: Array
    joint_log_ratio: Array | None = None
    theta_ref: Array | None = None


def _check_latent(simulator: Any) -> None:
    if not (hasattr(simulator, "joint_log_prob") and hasattr(simulator, "sample_joint")):
        raise TypeError(
            f"{type(simulator).__name__} has no joint density log p(x, z | theta), which the "
            f"gold-augmented methods need. Subclass `jg.simulators.AbstractLatentSimulator` and "
            f"implement `sample_joint` and `joint_log_prob`, or use a likelihood-free method "
            f"(`jg.sbi.npe`, `jg.sbi.nle`, `jg.sbi.nre`)."
        )


def joint_score(simulator: Any, theta: Array, x: Array, z: Array) -> Float[Array, " d"]:
    """``grad_theta log p(x, z | theta)`` for one example, by autodiff."""
    _check_latent(simulator)
    return jax.grad(simulator.joint_log_prob)(theta, x, z)


@eqx.filter_jit
def _mine(simulator, keys, theta, theta_ref):
    def one(k, t):
        x, z = simulator.sample_joint(k, t)
        score = jax.grad(simulator.joint_log_prob)(t, x, z)
        log_r = (
            simulator.joint_log_prob(t, x, z) - simulator.joint_log_prob(theta_ref, x, z)
            if theta_ref is not None
            else jnp.zeros(())
        )
        return x, score, log_r

    return jax.vmap(one)(keys, theta)


def mine_gold(
    key: PRNGKeyArray,
    simulator: Any,
    num_simulations: int,
    *,
    theta: Float[Array, "n d"] | None = None,
    theta_ref: Float[Array, " d"] | None = None,
) -> GoldData:
    """Simulate and record the joint score (and joint log-ratio to ``theta_ref``).

    Args:
        key: PRNG key.
        simulator: an :class:`~jaxgen.simulators.AbstractLatentSimulator`.
        num_simulations: number of simulations (parameters from the prior unless ``theta``).
        theta: explicit parameters, e.g. all equal to ``theta_ref`` for :func:`sally`.
        theta_ref: reference parameters for the joint log-ratio.

    Returns:
        :class:`GoldData`.
    """
    _check_latent(simulator)
    key = check_key(key)
    k_prior, k_sim = jax.random.split(key)
    if theta is None:
        theta = simulator.prior.sample(k_prior, (num_simulations,))
    theta = jnp.asarray(theta, dtype=float)
    ref = None if theta_ref is None else jnp.asarray(theta_ref, dtype=theta.dtype)
    x, score, log_r = _mine(simulator, jax.random.split(k_sim, theta.shape[0]), theta, ref)
    return GoldData(theta, x, score, None if ref is None else log_r, ref)


def scandal(
    key: PRNGKeyArray,
    gold: GoldData,
    *,
    prior: dist.Distribution,
    score_weight: float = 1.0,
    density_estimator: Any = None,
    sampler: AbstractSampler | None = None,
    learning_rate: float = 5e-4,
    batch_size: int = 200,
    max_epochs: int = 500,
    patience: int = 20,
    progress: bool = False,
) -> LikelihoodPosterior:
    """SCANDAL: neural likelihood estimation plus a score-regression term.

    The loss is ``-log q(x | theta) + score_weight * |grad_theta log q(x | theta) - t|^2``
    with the joint score ``t``, in standardized theta units. Its minimum is the true
    likelihood, since ``E[t | x, theta]`` is the marginal score (Brehmer et al. 2020, PNAS).

    Returns:
        A :class:`~jaxgen.sbi.LikelihoodPosterior` (sampled by MCMC), as from
        :func:`~jaxgen.sbi.nle`.
    """
    key = check_key(key)
    theta, x, t = gold.theta, gold.x, gold.joint_score
    x_shape = tuple(x.shape[1:])
    x_flat = x.reshape(x.shape[0], -1)
    k_model, k_fit = jax.random.split(key)
    model = build_likelihood_estimator(k_model, theta, x_flat, density_estimator, True)
    theta_scale = jax.lax.stop_gradient(model.estimator.condition_standardizer.std)

    def loss_fn(m, batch, k):
        th, xb, tb = batch
        logq, grads = jax.vmap(jax.value_and_grad(lambda a, b: m(a, b)))(th, xb)
        # d/d theta_std = std * d/d theta: the score term in standardized units.
        score_err = jnp.sum(((grads - tb) * theta_scale) ** 2, axis=-1)
        return -jnp.mean(logq) + score_weight * jnp.mean(score_err)

    model, _ = fit(
        k_fit, model, loss_fn, (theta, x_flat, t), learning_rate=learning_rate,
        batch_size=batch_size, max_epochs=max_epochs, patience=patience, progress=progress,
    )
    return LikelihoodPosterior(model, prior, x_shape, theta.shape[1],
                               sampler or MetropolisHastings())


def rolr_loss(log_r_hat: Array, log_r: Array, from_reference: Array, clip: float = 10.0) -> Array:
    """The ROLR ratio-regression loss for one batch (Brehmer et al. 2018, PRL).

    For samples drawn at theta: ``|1/r_hat - 1/r|^2``; for samples drawn at theta_ref:
    ``|r_hat - r|^2``. Log-ratios are clipped to ``[-clip, clip]`` so a rare extreme joint
    ratio cannot dominate a minibatch.
    """
    lr_hat = jnp.clip(log_r_hat, -clip, clip)
    lr = jnp.clip(log_r, -clip, clip)
    at_theta = (jnp.exp(-lr_hat) - jnp.exp(-lr)) ** 2
    at_ref = (jnp.exp(lr_hat) - jnp.exp(lr)) ** 2
    return jnp.mean(jnp.where(from_reference, at_ref, at_theta))


def rascal(
    key: PRNGKeyArray,
    gold: GoldData,
    gold_ref: GoldData,
    *,
    prior: dist.Distribution,
    score_weight: float = 1.0,
    embedding: AbstractEmbedding | None = None,
    sampler: AbstractSampler | None = None,
    learning_rate: float = 5e-4,
    batch_size: int = 200,
    max_epochs: int = 500,
    patience: int = 20,
    progress: bool = False,
) -> LikelihoodPosterior:
    """RASCAL (``score_weight > 0``) or ROLR (``score_weight = 0``): regress the likelihood
    ratio ``r(x | theta, theta_ref)`` onto the joint ratio, plus the joint score.

    Args:
        key: PRNG key.
        gold: :func:`mine_gold` at prior parameters with ``theta_ref`` (x drawn at theta).
        gold_ref: :func:`mine_gold` with x drawn at ``theta_ref`` and ratios evaluated at the
            ``theta`` of each row (``theta=prior draws`` is not right here; pass
            :func:`mine_reference_gold`'s output).
        prior: the prior.
        score_weight: weight of the score term (0 gives ROLR).

    Returns:
        A :class:`~jaxgen.sbi.LikelihoodPosterior` with ``p(theta | x) ~ p(theta) r_hat``:
        ``theta_ref`` is fixed, so the denominator ``p(x | theta_ref)`` cancels.
    """
    if gold.joint_log_ratio is None or gold_ref.joint_log_ratio is None:
        raise ValueError(
            "RASCAL/ROLR need joint log-ratios: mine with `theta_ref=` (mine_gold) and "
            "`mine_reference_gold`."
        )
    key = check_key(key)
    theta = jnp.concatenate([gold.theta, gold_ref.theta])
    x = jnp.concatenate([gold.x, gold_ref.x])
    log_r = jnp.concatenate([gold.joint_log_ratio, gold_ref.joint_log_ratio])
    score = jnp.concatenate([gold.joint_score, jnp.zeros_like(gold_ref.joint_score)])
    from_ref = jnp.concatenate(
        [jnp.zeros(gold.theta.shape[0], bool), jnp.ones(gold_ref.theta.shape[0], bool)]
    )
    k_model, k_fit = jax.random.split(key)
    model = build_ratio_estimator(k_model, theta, x, embedding)
    theta_scale = jax.lax.stop_gradient(model.theta_standardizer.std)

    def loss_fn(m, batch, k):
        th, xb, lr, tb, ref = batch
        lr_hat, grads = jax.vmap(jax.value_and_grad(lambda a, b: m(a, b)))(th, xb)
        score_err = jnp.sum(((grads - tb) * theta_scale) ** 2, axis=-1)
        score_term = jnp.sum(jnp.where(ref, 0.0, score_err)) / jnp.maximum(jnp.sum(~ref), 1)
        return rolr_loss(lr_hat, lr, ref) + score_weight * score_term

    model, _ = fit(
        k_fit, model, loss_fn, (theta, x, log_r, score, from_ref), learning_rate=learning_rate,
        batch_size=batch_size, max_epochs=max_epochs, patience=patience, progress=progress,
    )
    return LikelihoodPosterior(model, prior, tuple(x.shape[1:]), theta.shape[1],
                               sampler or MetropolisHastings())


def mine_reference_gold(
    key: PRNGKeyArray, simulator: Any, theta: Float[Array, "n d"], theta_ref: Array
) -> GoldData:
    """Simulations at ``theta_ref`` with joint log-ratios ``log p(x,z|theta_i) - log
    p(x,z|theta_ref)`` for each row's ``theta_i`` (the second half of RASCAL/ROLR data)."""
    _check_latent(simulator)
    key = check_key(key)
    theta = jnp.asarray(theta, dtype=float)
    ref = jnp.asarray(theta_ref, dtype=theta.dtype)

    @eqx.filter_jit
    def mine(sim, keys, theta):
        def one(k, t):
            x, z = sim.sample_joint(k, ref)
            return x, sim.joint_log_prob(t, x, z) - sim.joint_log_prob(ref, x, z)

        return jax.vmap(one)(keys, theta)

    x, log_r = mine(simulator, jax.random.split(key, theta.shape[0]), theta)
    return GoldData(theta, x, jnp.zeros_like(theta), log_r, ref)


class LocalScoreSummary(AbstractEmbedding):
    """SALLY's summary: a network ``t_hat(x)`` regressed on the joint score at ``theta_ref``.

    ``t_hat(x)`` estimates the score ``grad_theta log p(x | theta_ref)``, the locally sufficient
    statistic near ``theta_ref`` (Brehmer et al. 2018). Use it as the ``summary`` of ABC or as
    the ``embedding`` of NPE/NRE.
    """

    network: MLP
    x_standardizer: Standardizer
    score_scale: Array
    out_size: int = eqx.field(static=True)

    def __call__(self, x):
        return self.network(jnp.reshape(self.x_standardizer(x), (-1,))) * self.score_scale


def sally(
    key: PRNGKeyArray,
    gold: GoldData,
    *,
    width_size: int = 64,
    depth: int = 2,
    learning_rate: float = 1e-3,
    batch_size: int = 200,
    max_epochs: int = 300,
    patience: int = 20,
    progress: bool = False,
) -> LocalScoreSummary:
    """SALLY: learn the score at ``theta_ref`` by regressing the joint score, ``|t_hat(x) -
    t(x, z | theta_ref)|^2``; ``gold`` must be mined with every theta equal to theta_ref.

    Example:
        ```python
        ref = jnp.zeros(2)
        gold = jg.sbi.mine_gold(key, sim, 5000, theta=jnp.tile(ref, (5000, 1)))
        summary = jg.sbi.sally(key, gold)
        abc = jg.sbi.rejection_abc(key, sim, x_o, summary=summary)
        ```
    """
    key = check_key(key)
    x, t = gold.x, gold.joint_score
    x_std = Standardizer.from_data(x)
    scale = jnp.maximum(jnp.std(t, axis=0), 1e-6)
    in_size = int(jnp.size(x[0]))
    d = t.shape[1]
    k_model, k_fit = jax.random.split(key)
    model = LocalScoreSummary(
        network=MLP(in_size, d, width_size, depth, key=k_model), x_standardizer=x_std,
        score_scale=scale, out_size=d,
    )

    def loss_fn(m, batch, k):
        xb, tb = batch
        return jnp.mean(jnp.sum(((jax.vmap(m)(xb) - tb) / scale) ** 2, axis=-1))

    model, _ = fit(k_fit, model, loss_fn, (x, t), learning_rate=learning_rate,
                   batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                   progress=progress)
    return model
