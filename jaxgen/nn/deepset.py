"""Permutation-invariant embedding for sets of i.i.d. observations."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .embedding import AbstractEmbedding
from .mlp import MLP


class DeepSetEmbedding(AbstractEmbedding):
    """``rho(mean_i phi(x_i))`` over the rows of ``x`` (Zaheer et al. 2017, "Deep sets").

    One example ``x`` is a set of shape ``(num_members, member_dim)`` (or ``(num_members,)``
    for scalar members); the output does not depend on the order of the members, and the mean
    pooling lets the same network take sets of any size.

    Args:
        member_dim: size of one member (1 for scalars).
        out_size: size of the embedding.
        width_size, depth: of both MLPs ``phi`` and ``rho``.
        latent_size: size of ``phi``'s output.
        key: PRNG key.

    Example:
        ```python
        emb = jg.nn.DeepSetEmbedding(member_dim=2, out_size=8, key=key)
        emb(jnp.ones((20, 2)))   # shape (8,)
        ```
    """

    phi: MLP
    rho: MLP
    member_dim: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)

    def __init__(
        self,
        member_dim: int,
        out_size: int = 16,
        width_size: int = 64,
        depth: int = 2,
        latent_size: int = 32,
        *,
        key: PRNGKeyArray,
    ):
        k1, k2 = jax.random.split(key)
        self.phi = MLP(member_dim, latent_size, width_size, depth, key=k1)
        self.rho = MLP(latent_size, out_size, width_size, depth, key=k2)
        self.member_dim = member_dim
        self.out_size = out_size

    def __call__(self, x: Float[Array, "num_members ..."]) -> Float[Array, " out_size"]:
        members = jnp.reshape(x, (x.shape[0], -1))
        if members.shape[1] != self.member_dim:
            raise ValueError(
                f"DeepSetEmbedding expects a set of shape (num_members, {self.member_dim}), got "
                f"{x.shape}."
            )
        return self.rho(jnp.mean(jax.vmap(self.phi)(members), axis=0))
