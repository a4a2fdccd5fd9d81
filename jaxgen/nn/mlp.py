"""Multilayer perceptrons."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray


def gelu(x: Array) -> Array:
    """GELU as a plain function (a jitted callable stored on a module makes equinox warn)."""
    return jax.nn.gelu(x)


class MLP(eqx.Module):
    """A fully connected network ``in_size -> [width_size] * depth -> out_size``.

    Args:
        in_size: input dimension.
        out_size: output dimension.
        width_size: hidden width.
        depth: number of hidden layers.
        activation: elementwise nonlinearity between layers.
        key: PRNG key for the initial weights.

    Example:
        ```python
        net = jg.nn.MLP(3, 1, width_size=32, depth=2, key=jax.random.key(0))
        y = net(jnp.ones(3))   # shape (1,)
        ```
    """

    layers: tuple[eqx.nn.Linear, ...]
    activation: Callable = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        width_size: int = 64,
        depth: int = 2,
        activation: Callable = gelu,
        *,
        key: PRNGKeyArray,
    ):
        sizes = [in_size] + [width_size] * depth + [out_size]
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(
            eqx.nn.Linear(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys)
        )
        self.activation = activation

    def __call__(self, x: Float[Array, " in_size"]) -> Float[Array, " out_size"]:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


class _ResidualBlock(eqx.Module):
    norm: eqx.nn.LayerNorm
    linear1: eqx.nn.Linear
    linear2: eqx.nn.Linear
    activation: Callable = eqx.field(static=True)

    def __call__(self, h: Array) -> Array:
        return h + self.linear2(self.activation(self.linear1(self.norm(h))))


class ResidualMLP(eqx.Module):
    """A residual MLP: an input projection, ``depth`` pre-norm residual blocks, an output projection.

    The blocks share one structure, so they are stacked with ``eqx.filter_vmap`` and applied with
    ``lax.scan``: compile time does not grow with depth.
    """

    input: eqx.nn.Linear
    blocks: _ResidualBlock
    output: eqx.nn.Linear

    def __init__(
        self,
        in_size: int,
        out_size: int,
        width_size: int = 64,
        depth: int = 2,
        activation: Callable = gelu,
        *,
        key: PRNGKeyArray,
    ):
        k_in, k_blocks, k_out = jax.random.split(key, 3)
        self.input = eqx.nn.Linear(in_size, width_size, key=k_in)

        @eqx.filter_vmap
        def make_block(k):
            k1, k2 = jax.random.split(k)
            lin2 = eqx.nn.Linear(width_size, width_size, key=k2)
            # Start each block near the identity map.
            lin2 = eqx.tree_at(lambda m: m.weight, lin2, lin2.weight * 0.1)
            return _ResidualBlock(
                eqx.nn.LayerNorm(width_size),
                eqx.nn.Linear(width_size, width_size, key=k1),
                lin2,
                activation,
            )

        self.blocks = make_block(jax.random.split(k_blocks, depth))
        self.output = eqx.nn.Linear(width_size, out_size, key=k_out)

    def __call__(self, x: Float[Array, " in_size"]) -> Float[Array, " out_size"]:
        params, static = eqx.partition(self.blocks, eqx.is_array)

        def step(h, p):
            return eqx.combine(p, static)(h), None

        h, _ = jax.lax.scan(step, self.input(x), params)
        return self.output(h)


def zero_last_layer(mlp: MLP, scale: float = 0.0) -> MLP:
    """Scale the last layer of an :class:`MLP` (0 makes the network output start at zero)."""
    last = mlp.layers[-1]
    last = eqx.tree_at(lambda m: (m.weight, m.bias), last, (last.weight * scale, last.bias * scale))
    return eqx.tree_at(lambda m: m.layers[-1], mlp, last)


