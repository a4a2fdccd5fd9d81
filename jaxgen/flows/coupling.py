"""Coupling layer: half the dimensions parameterise a transform of the other half."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._networks import MaskedMLP
from .bijection import AbstractBijection
from .transformers import AbstractTransformer


class Coupling(AbstractBijection):
    """``y[:k] = x[:k]``, ``y[k:] = tau(x[k:]; net(x[:k], condition))`` with ``k = dim // 2``.

    Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP"; with a spline
    transformer, Durkan et al. 2019, "Neural Spline Flows". For ``dim == 1`` nothing is left
    unchanged: the single dimension is transformed with parameters computed from the condition
    alone (or learned constants when unconditional). Both directions cost one network pass.

    Args:
        key: PRNG key for the conditioner's initial weights.
        transformer: the elementwise map (e.g. ``Affine()`` or ``RationalQuadraticSpline()``).
        dim: length of the vectors transformed.
        cond_dim: length of the condition vector, or ``None``.
        hidden_size: width of the conditioner's hidden layers.
        num_hidden: number of hidden layers.
    """

    transformer: AbstractTransformer
    conditioner: MaskedMLP
    dim: int = eqx.field(static=True)
    cond_dim: int | None = eqx.field(static=True)
    num_untransformed: int = eqx.field(static=True)

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
        self.num_untransformed = dim // 2
        in_size = self.num_untransformed + (cond_dim or 0)
        out_size = (dim - self.num_untransformed) * transformer.num_params
        self.conditioner = MaskedMLP(key, in_size, out_size, hidden_size, num_hidden)

    def _params(self, x_fixed: Array, condition: Array | None) -> Array:
        inputs = jnp.concatenate([x_fixed, self._condition_vector(condition)])
        num_transformed = self.dim - self.num_untransformed
        return self.conditioner(inputs).reshape(num_transformed, self.transformer.num_params)

    def transform_and_log_det(
        self, x: Float[Array, " dim"], condition: Float[Array, " cond_dim"] | None = None
    ) -> tuple[Float[Array, " dim"], Float[Array, ""]]:
        x = self._check_vector(x, "x")
        k = self.num_untransformed
        params = self._params(x[:k], condition)
        y, log_det = jax.vmap(self.transformer.transform_and_log_det)(x[k:], params)
        return jnp.concatenate([x[:k], y]), jnp.sum(log_det)

    def inverse_and_log_det(
        self, y: Float[Array, " dim"], condition: Float[Array, " cond_dim"] | None = None
    ) -> tuple[Float[Array, " dim"], Float[Array, ""]]:
        y = self._check_vector(y, "y")
        k = self.num_untransformed
        params = self._params(y[:k], condition)
        x, log_det = jax.vmap(self.transformer.inverse_and_log_det)(y[k:], params)
        return jnp.concatenate([y[:k], x]), jnp.sum(log_det)
