"""Masked autoregressive layer (MADE conditioner)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from ._networks import MaskedMLP, made_masks
from .bijection import AbstractBijection
from .transformers import AbstractTransformer


class MaskedAutoregressive(AbstractBijection):
    """Autoregressive layer whose density direction is one network pass.

    Let ``tau`` be the transformer and ``theta_i(x[:i], condition)`` the outputs of a MADE
    network (Germain et al. 2015). The data-to-base direction (``inverse``) is
    ``z_i = tau(x_i; theta_i(x[:i]))`` for all ``i`` at once, so densities are fast, as in MAF
    (Papamakarios, Pavlakou & Murray 2017, "Masked Autoregressive Flow for Density
    Estimation"). The base-to-data direction (``transform``, used for sampling) needs ``dim``
    sequential network passes; they run in a ``lax.fori_loop``: each pass recomputes
    ``x = tau^{-1}(z; theta(x))``, and after pass ``i`` the first ``i`` entries are exact.

    Args:
        key: PRNG key for the network's initial weights.
        transformer: the elementwise map (``Affine()`` for MAF, a spline for an
            autoregressive neural spline flow).
        dim: length of the vectors transformed.
        cond_dim: length of the condition vector, or ``None``.
        hidden_size: width of the hidden layers.
        num_hidden: number of hidden layers.
    """

    transformer: AbstractTransformer
    made: MaskedMLP
    dim: int = eqx.field(static=True)
    cond_dim: int | None = eqx.field(static=True)

    def __init__(
        self,
        key: PRNGKeyArray,
        transformer: AbstractTransformer,
        dim: int,
        *,
        cond_dim: int | None = None,
        hidden_size: int = 50,
        num_hidden: int = 2,
    ):
        self.transformer = transformer
        self.dim = dim
        self.cond_dim = cond_dim
        n_cond = cond_dim or 0
        masks = made_masks(dim, n_cond, hidden_size, num_hidden, transformer.num_params)
        self.made = MaskedMLP(
            key, dim + n_cond, dim * transformer.num_params, hidden_size, num_hidden, masks
        )

    def _params(self, x: Array, cond: Array) -> Array:
        out = self.made(jnp.concatenate([x, cond]))
        return out.reshape(self.dim, self.transformer.num_params)

    def transform_and_log_det(
        self, x: Float[Array, " dim"], condition: Float[Array, " cond_dim"] | None = None
    ) -> tuple[Float[Array, " dim"], Float[Array, ""]]:
        z = self._check_vector(x, "x")
        cond = self._condition_vector(condition)
        inverse_tau = jax.vmap(self.transformer.inverse_and_log_det)

        def one_pass(_, carry):
            out, _log_det = carry
            out, log_det = inverse_tau(z, self._params(out, cond))
            return out, log_det

        init = (jnp.zeros_like(z), jnp.zeros_like(z))
        out, log_det = lax.fori_loop(0, self.dim, one_pass, init)
        return out, jnp.sum(log_det)

    def inverse_and_log_det(
        self, y: Float[Array, " dim"], condition: Float[Array, " cond_dim"] | None = None
    ) -> tuple[Float[Array, " dim"], Float[Array, ""]]:
        y = self._check_vector(y, "y")
        cond = self._condition_vector(condition)
        z, log_det = jax.vmap(self.transformer.transform_and_log_det)(y, self._params(y, cond))
        return z, jnp.sum(log_det)
