"""Neural ratio estimation: the likelihood-to-evidence ratio learned by a classifier."""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ..nn import AbstractEmbedding, IdentityEmbedding, ResidualMLP, Standardizer
from ..train import History, fit
from .likelihood_posterior import AbstractLogLikelihood, LikelihoodPosterior
from .mcmc import AbstractSampler, MetropolisHastings
from .npe import prepare_training_data


class RatioEstimator(AbstractLogLikelihood):
    """A classifier whose logit is ``log r(x, theta) = log p(x | theta) - log p(x)``.

    ``theta`` and the embedding of ``x`` (both standardized) are concatenated and fed to a
    residual MLP. As an :class:`AbstractLogLikelihood`, the logit replaces the log-likelihood:
    ``p(theta | x) = p(theta) r(x, theta)``.
    """

    network: ResidualMLP
    embedding: AbstractEmbedding
    theta_standardizer: Standardizer
    x_standardizer: Standardizer

    def features(self, x: Array) -> Array:
        return self.embedding(self.x_standardizer(x))

    def logit_from_features(self, theta: Array, features: Array) -> Float[Array, ""]:
        h = jnp.concatenate([self.theta_standardizer(theta), features])
        return self.network(h)[0]

    def __call__(self, theta, x):
        return self.logit_from_features(theta, self.features(x))


class AbstractRatioLoss(eqx.Module):
    """A classification loss whose optimum gives the likelihood-to-evidence ratio."""

    @abc.abstractmethod
    def __call__(self, model: RatioEstimator, theta: Array, x: Array, key: PRNGKeyArray) -> Array:
        """The mean loss over a minibatch of joint pairs ``(theta_i, x_i)``."""


def _joint_and_marginal_logits(model, theta, x):
    features = jax.vmap(model.features)(x)
    joint = jax.vmap(model.logit_from_features)(theta, features)
    # Pairing each x with the next row's theta draws from p(theta) p(x): minibatches are shuffled.
    marginal = jax.vmap(model.logit_from_features)(jnp.roll(theta, 1, axis=0), features)
    return joint, marginal


class BinaryRatioLoss(AbstractRatioLoss):
    """Binary cross-entropy between joint pairs and shuffled (marginal) pairs.

    The Bayes-optimal logit is ``log p(x | theta) / p(x)`` (Hermans, Begy & Louppe 2020,
    "Likelihood-free MCMC with amortized approximate ratio estimators", ICML).
    """

    def __call__(self, model, theta, x, key):
        joint, marginal = _joint_and_marginal_logits(model, theta, x)
        return jnp.mean(
            optax.sigmoid_binary_cross_entropy(joint, 1.0)
            + optax.sigmoid_binary_cross_entropy(marginal, 0.0)
        )


class BalancedRatioLoss(AbstractRatioLoss):
    """The binary loss plus a balancing penalty that makes the classifier conservative.

    ``lambda (E_joint[sigma(d)] + E_marginal[sigma(d)] - 1)^2`` (Delaunoy et al. 2022,
    "Towards reliable simulation-based inference with balanced neural ratio estimation",
    NeurIPS); ``regularization`` is lambda (100 in the paper).
    """

    regularization: float = eqx.field(static=True, default=100.0)

    def __call__(self, model, theta, x, key):
        joint, marginal = _joint_and_marginal_logits(model, theta, x)
        bce = jnp.mean(
            optax.sigmoid_binary_cross_entropy(joint, 1.0)
            + optax.sigmoid_binary_cross_entropy(marginal, 0.0)
        )
        balance = jnp.mean(jax.nn.sigmoid(joint)) + jnp.mean(jax.nn.sigmoid(marginal)) - 1.0
        return bce + self.regularization * balance**2


class ContrastiveRatioLoss(AbstractRatioLoss):
    """Multiclass contrastive loss: pick the true theta among ``num_atoms`` candidates.

    For each ``x_i`` the candidates are its own ``theta_i`` and ``num_atoms - 1`` others from the
    minibatch; the loss is the cross-entropy of the softmax over their logits. The optimum is the
    ratio up to a function of ``x`` alone, which cancels in the posterior (Durkan, Murray &
    Papamakarios 2020, "On contrastive learning for likelihood-free inference", ICML).
    """

    num_atoms: int = eqx.field(static=True, default=10)

    def __call__(self, model, theta, x, key):
        n = theta.shape[0]
        k = min(self.num_atoms, n)
        features = jax.vmap(model.features)(x)
        # Candidate j for row i is theta[i + j]: j = 0 is the true one.
        atoms = jnp.stack([jnp.roll(theta, -j, axis=0) for j in range(k)], axis=1)
        logits = jax.vmap(
            lambda a, f: jax.vmap(lambda t: model.logit_from_features(t, f))(a)
        )(atoms, features)
        return -jnp.mean(jax.nn.log_softmax(logits, axis=1)[:, 0])


def build_ratio_estimator(
    key: PRNGKeyArray,
    theta: Array,
    x: Array,
    embedding: AbstractEmbedding | None,
    *,
    hidden_size: int = 64,
    num_blocks: int = 2,
    standardize: bool = True,
) -> RatioEstimator:
    """An untrained :class:`RatioEstimator` with standardization fitted to ``(theta, x)``."""
    x_shape = tuple(x.shape[1:])
    d = theta.shape[1]
    if embedding is None:
        embedding = IdentityEmbedding(x_shape)
    else:
        _check_embedding(embedding, x_shape, x.dtype)
    if standardize:
        t_std, x_std = Standardizer.from_data(theta), Standardizer.from_data(x)
    else:
        t_std = Standardizer(jnp.zeros(d), jnp.ones(d))
        x_std = Standardizer(jnp.zeros(x_shape), jnp.ones(x_shape))
    net = ResidualMLP(d + embedding.out_size, 1, hidden_size, num_blocks, key=key)
    return RatioEstimator(net, embedding, t_std, x_std)


def _check_embedding(embedding: AbstractEmbedding, x_shape, dtype) -> None:
    try:
        out = jax.eval_shape(embedding, jax.ShapeDtypeStruct(x_shape, dtype))
    except Exception as err:
        raise ValueError(
            f"The embedding network cannot take one simulation of shape {x_shape}: {err}"
        ) from err
    if out.shape != (embedding.out_size,):
        raise ValueError(
            f"The embedding network must return a vector of size {embedding.out_size}, "
            f"returned shape {out.shape}."
        )


def train_ratio_estimator(
    key: PRNGKeyArray,
    model: RatioEstimator,
    theta: Array,
    x: Array,
    loss: AbstractRatioLoss,
    **fit_kwargs,
) -> tuple[RatioEstimator, History]:
    """Fit ``model`` with ``loss`` on joint pairs ``(theta, x)`` via :func:`jaxgen.train.fit`."""

    def loss_fn(m, batch, k):
        return loss(m, batch[0], batch[1], k)

    return fit(key, model, loss_fn, (theta, x), **fit_kwargs)


def nre(
    key: PRNGKeyArray,
    theta: Float[Array, "n d"],
    x: Float[Array, "n ..."],
    *,
    prior: dist.Distribution,
    loss: AbstractRatioLoss | None = None,
    embedding: AbstractEmbedding | None = None,
    sampler: AbstractSampler | None = None,
    hidden_size: int = 64,
    num_blocks: int = 2,
    standardize: bool = True,
    learning_rate: float = 5e-4,
    batch_size: int = 200,
    max_epochs: int = 500,
    validation_fraction: float = 0.1,
    patience: int = 20,
    progress: bool = False,
    return_history: bool = False,
) -> LikelihoodPosterior | tuple[LikelihoodPosterior, History]:
    """Neural ratio estimation: learn ``r(x, theta) = p(x | theta) / p(x)`` with a classifier.

    The posterior is ``p(theta) r(x_o, theta)``, sampled by MCMC (default), or by importance or
    rejection sampling from the prior (``sampler=jg.sbi.ImportanceSampling()``). i.i.d.
    observations multiply their ratios.

    Args:
        key: PRNG key.
        theta, x: simulated pairs from the prior and simulator.
        prior: the prior of ``theta``.
        loss: :class:`BinaryRatioLoss` (default; Hermans et al. 2020),
            :class:`ContrastiveRatioLoss` (Durkan et al. 2020) or :class:`BalancedRatioLoss`
            (Delaunoy et al. 2022).
        embedding: a network applied to standardized ``x`` before the classifier, trained end
            to end (e.g. ``jg.nn.CNN1dEmbedding``, ``jg.nn.DeepSetEmbedding``).
        sampler: posterior sampling strategy (default :class:`MetropolisHastings`).
        hidden_size, num_blocks: the residual classifier's width and depth.
        standardize: z-score theta and x.
        learning_rate, batch_size, max_epochs, validation_fraction, patience, progress: passed
            to :func:`jaxgen.train.fit`.
        return_history: also return the training history.

    Returns:
        A :class:`~jaxgen.sbi.LikelihoodPosterior` whose ``log_likelihood`` is the
        :class:`RatioEstimator`.

    Example:
        ```python
        posterior = jg.sbi.nre(key, theta, x, prior=sim.prior,
                               loss=jg.sbi.ContrastiveRatioLoss(num_atoms=10))
        samples = posterior.sample(key, x_o, 10_000)
        ```
    """
    key = check_key(key)
    theta, x = prepare_training_data(theta, x, prior, context=" of the NRE training data")
    k_model, k_fit = jax.random.split(key)
    model = build_ratio_estimator(
        k_model, theta, x, embedding, hidden_size=hidden_size, num_blocks=num_blocks,
        standardize=standardize,
    )
    model, history = train_ratio_estimator(
        k_fit, model, theta, x, loss or BinaryRatioLoss(), learning_rate=learning_rate,
        batch_size=batch_size, max_epochs=max_epochs, validation_fraction=validation_fraction,
        patience=patience, progress=progress,
    )
    x_shape = tuple(x.shape[1:])
    posterior = LikelihoodPosterior(
        model, prior, x_shape, theta.shape[1], sampler or MetropolisHastings()
    )
    return (posterior, history) if return_history else posterior


__all__ = [
    "AbstractRatioLoss",
    "BalancedRatioLoss",
    "BinaryRatioLoss",
    "ContrastiveRatioLoss",
    "RatioEstimator",
    "build_ratio_estimator",
    "nre",
    "train_ratio_estimator",
]
