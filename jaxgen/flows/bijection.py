"""The bijection contract: an invertible map of one vector with its log-Jacobian determinant."""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


class AbstractBijection(eqx.Module):
    """An invertible, differentiable map ``y = f(x; condition)`` of one vector of length ``dim``.

    Subclasses implement ``transform_and_log_det`` and ``inverse_and_log_det`` for ONE example
    (batch with ``jax.vmap``). In a :class:`~jaxgen.flows.Flow` the forward direction maps the
    base (latent) space to the data space.
    """

    dim: eqx.AbstractVar[int]
    cond_dim: eqx.AbstractVar[int | None]

    @abc.abstractmethod
    def transform_and_log_det(
        self, x: Float[Array, " dim"], condition: Float[Array, " cond_dim"] | None = None
    ) -> tuple[Float[Array, " dim"], Float[Array, ""]]:
        """Return ``y = f(x)`` and ``log|det df/dx|``."""

    @abc.abstractmethod
    def inverse_and_log_det(
        self, y: Float[Array, " dim"], condition: Float[Array, " cond_dim"] | None = None
    ) -> tuple[Float[Array, " dim"], Float[Array, ""]]:
        """Return ``x = f^{-1}(y)`` and ``log|det df^{-1}/dy|``."""

    def transform(
        self, x: Float[Array, " dim"], condition: Float[Array, " cond_dim"] | None = None
    ) -> Float[Array, " dim"]:
        """``f(x)`` for one example."""
        return self.transform_and_log_det(x, condition)[0]

    def inverse(
        self, y: Float[Array, " dim"], condition: Float[Array, " cond_dim"] | None = None
    ) -> Float[Array, " dim"]:
        """``f^{-1}(y)`` for one example."""
        return self.inverse_and_log_det(y, condition)[0]

    def _condition_vector(self, condition: Array | None) -> Array:
        """The condition as a flat vector (empty when unconditional), checked at trace time."""
        name = type(self).__name__
        if self.cond_dim is None:
            if condition is not None:
                raise ValueError(
                    f"This {name} is unconditional (cond_dim=None) but got a condition of shape "
                    f"{jnp.shape(condition)}. Pass `condition=None`."
                )
            return jnp.zeros((0,))
        if condition is None:
            raise ValueError(
                f"This {name} needs a condition of shape ({self.cond_dim},), got None."
            )
        condition = jnp.asarray(condition)
        if condition.shape != (self.cond_dim,):
            raise ValueError(
                f"{name} works on one example: `condition` must have shape ({self.cond_dim},), "
                f"got {condition.shape}. Use `jax.vmap` (or the batched Flow methods) for batches."
            )
        return condition

    def _check_vector(self, x: Array, name: str) -> Array:
        x = jnp.asarray(x)
        if x.shape != (self.dim,):
            raise ValueError(
                f"{type(self).__name__} works on one example: `{name}` must have shape "
                f"({self.dim},), got {x.shape}. Use `jax.vmap` (or the batched Flow methods) for "
                f"batches."
            )
        return x
