"""Hyperbolic temporal discounting: which choice between money now and money later to offer."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import erf
from jax.scipy.stats import norm
from jaxtyping import Array, Float, PRNGKeyArray
from numpyro.distributions import constraints

from .._checks import check_key
from ._utils import check_theta
from .base import AbstractSimulator


class _LogKAlphaPrior(dist.Distribution):
    """``log k ~ N(-4.25, 1.5)`` and ``alpha ~ HalfNormal(2)``, as one flat vector."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real_vector

    def __init__(self):
        super().__init__(batch_shape=(), event_shape=(2,))

    def sample(self, key, sample_shape=()):
        k1, k2 = jax.random.split(key)
        log_k = -4.25 + 1.5 * jax.random.normal(k1, sample_shape)
        alpha = 2.0 * jnp.abs(jax.random.normal(k2, sample_shape))
        return jnp.stack([log_k, alpha], axis=-1)

    def log_prob(self, value):
        log_k, alpha = value[..., 0], value[..., 1]
        lp = dist.Normal(-4.25, 1.5).log_prob(log_k)
        lp_alpha = dist.HalfNormal(2.0).log_prob(jnp.abs(alpha))
        return jnp.where(alpha >= 0, lp + lp_alpha, -jnp.inf)

    @property
    def mean(self):
        return jnp.array([-4.25, 2.0 * jnp.sqrt(2.0 / jnp.pi)])


class HyperbolicDiscounting(AbstractSimulator):
    """A participant chooses between ``R`` now and 100 after ``D`` days.

    Model (Mazur 1987; Vincent 2016; as in Foster et al. 2021, *Deep Adaptive Design*, ICML)::

        log k ~ N(-4.25, 1.5),  alpha ~ HalfNormal(2)
        V_now = R,   V_later = 100 / (1 + k D)
        P(x = 1) = eps + (1 - 2 eps) (1 + erf((V_now - V_later) / alpha)) / 2,   eps = 0.01

    The choice link ``(1 + erf(z)) / 2 = Phi(sqrt(2) z)`` is the one of Foster et al.'s
    reference implementation, behind the published EIG figures; with ``link="probit"`` the link
    is ``Phi(z)`` instead (answers noisier by a factor sqrt(2), so less informative).

    The design of one question is ``(R, D)``, shape ``(2,)``; ``T`` questions are an array of
    shape ``(T, 2)`` and ``x`` has one binary answer per question. Answers are discrete:
    use the score-function estimator (``PriorContrastive(score_gradient=True)``) for design
    gradients. Published value with ``T = 20``: DAD 5.021 nats (sPCE lower bound).
    """

    epsilon: float = eqx.field(static=True)
    link: str = eqx.field(static=True)
    prior: dist.Distribution

    def __init__(self, epsilon: float = 0.01, link: str = "erf"):
        if not 0 <= epsilon < 0.5:
            raise ValueError(f"`epsilon` must be in [0, 0.5), got {epsilon!r}.")
        if link not in ("erf", "probit"):
            raise ValueError(f"`link` must be 'erf' or 'probit', got {link!r}.")
        self.epsilon = float(epsilon)
        self.link = link
        self.prior = _LogKAlphaPrior()

    def default_design(self) -> Float[Array, "1 2"]:
        return jnp.array([[50.0, 30.0]])

    def design_bounds(self) -> tuple[Array, Array, Array]:
        """``0 <= R <= 100`` and ``0.1 <= D <= 2000`` days, the delay on a log scale.

        Informative delays span decades (``1 / k`` ranges from days to years under the prior),
        so design optimizers move the delay by factors, as Foster et al. (2021) do.
        """
        return jnp.array([0.0, 0.1]), jnp.array([100.0, 2000.0]), jnp.array([False, True])

    def _prob(self, theta, design):
        theta = check_theta(theta, 2, "HyperbolicDiscounting")
        design = jnp.asarray(self.default_design() if design is None else design, float)
        if design.shape[-1] != 2:
            raise ValueError(
                f"A HyperbolicDiscounting design is (R, D) per question, shape (2,) or (T, 2), "
                f"got shape {design.shape}."
            )
        reward, delay = design[..., 0], design[..., 1]
        later = 100.0 / (1.0 + jnp.exp(theta[0]) * delay)
        alpha = jnp.maximum(theta[1], 1e-6)
        z = (reward - later) / alpha
        choice = 0.5 * (1.0 + erf(z)) if self.link == "erf" else norm.cdf(z)
        return self.epsilon + (1.0 - 2.0 * self.epsilon) * choice

    def __call__(
        self, key: PRNGKeyArray, theta: Float[Array, " 2"], design: Float[Array, "*shape 2"] = None
    ) -> Float[Array, "*shape"]:
        check_key(key)
        p = jax.lax.stop_gradient(self._prob(theta, design))
        return jax.random.bernoulli(key, p).astype(p.dtype)

    def log_likelihood(
        self, theta: Float[Array, " 2"], x: Float[Array, "*shape"], design: Float[Array, "*shape 2"] = None
    ) -> Float[Array, ""]:
        p = jnp.clip(self._prob(theta, design), 1e-7, 1.0 - 1e-7)
        x = jnp.asarray(x)
        return jnp.sum(x * jnp.log(p) + (1.0 - x) * jnp.log1p(-p))
