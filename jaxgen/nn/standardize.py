"""Feature standardization as a fixed (non-trainable) affine map."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class Standardizer(eqx.Module):
    """``z = (x - mean) / std`` with statistics frozen at construction.

    The statistics are wrapped in ``stop_gradient`` when used, so training never moves them.
    Constant features (std = 0) are left unscaled instead of dividing by zero.
    """

    mean: Float[Array, ...]
    std: Float[Array, ...]

    def __init__(self, mean: Array, std: Array):
        self.mean = jnp.asarray(mean, dtype=float)
        std = jnp.asarray(std, dtype=float)
        self.std = jnp.where(std > 1e-12 * (1.0 + jnp.abs(self.mean)), std, 1.0)

    @classmethod
    def from_data(cls, data: Float[Array, "n d"]) -> Standardizer:
        """Per-feature statistics of ``data`` (rows are examples; any trailing shape)."""
        data = jnp.asarray(data)
        return cls(jnp.mean(data, axis=0), jnp.std(data, axis=0))

    def __call__(self, x: Array) -> Array:
        mean, std = jax.lax.stop_gradient((self.mean, self.std))
        return (x - mean) / std

    def inverse(self, z: Array) -> Array:
        mean, std = jax.lax.stop_gradient((self.mean, self.std))
        return z * std + mean

    def log_abs_det(self) -> Float[Array, ""]:
        """log |d z / d x| of the forward map (summed over features)."""
        return -jnp.sum(jnp.log(jax.lax.stop_gradient(self.std)))
