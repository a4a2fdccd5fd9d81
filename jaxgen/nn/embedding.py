"""Embedding networks: learned summaries of the data ``x``, trained end to end with an estimator."""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .mlp import MLP, gelu


class AbstractEmbedding(eqx.Module):
    """Maps one example ``x`` to a feature vector of size ``out_size``."""

    out_size: eqx.AbstractVar[int]

    @abc.abstractmethod
    def __call__(self, x: Array) -> Float[Array, " out_size"]:
        """Embed one example."""


class IdentityEmbedding(AbstractEmbedding):
    """Flattens ``x``; no parameters."""

    out_size: int = eqx.field(static=True)

    def __init__(self, x_shape: tuple[int, ...]):
        self.out_size = int(jnp.prod(jnp.asarray(x_shape))) if x_shape else 1

    def __call__(self, x: Array) -> Float[Array, " out_size"]:
        return jnp.reshape(x, (-1,))


class MLPEmbedding(AbstractEmbedding):
    """An MLP on the flattened example."""

    mlp: MLP
    out_size: int = eqx.field(static=True)

    def __init__(
        self,
        x_shape: tuple[int, ...],
        out_size: int = 16,
        width_size: int = 64,
        depth: int = 2,
        *,
        key: PRNGKeyArray,
    ):
        in_size = int(jnp.prod(jnp.asarray(x_shape))) if x_shape else 1
        self.mlp = MLP(in_size, out_size, width_size, depth, key=key)
        self.out_size = out_size

    def __call__(self, x: Array) -> Float[Array, " out_size"]:
        return self.mlp(jnp.reshape(x, (-1,)))


class CNN1dEmbedding(AbstractEmbedding):
    """A 1-D convolutional network for time series, then an MLP head.

    ``x`` has shape ``(length,)`` or ``(channels, length)``. Each convolution block is a
    convolution with ``kernel_size``, a nonlinearity and max-pooling by 2.
    """

    convs: tuple[eqx.nn.Conv1d, ...]
    head: MLP
    in_channels: int = eqx.field(static=True)
    activation: Callable = eqx.field(static=True)
    out_size: int = eqx.field(static=True)

    def __init__(
        self,
        x_shape: tuple[int, ...],
        out_size: int = 16,
        channels: tuple[int, ...] = (8, 16),
        kernel_size: int = 5,
        head_width: int = 64,
        activation: Callable = gelu,
        *,
        key: PRNGKeyArray,
    ):
        if len(x_shape) not in (1, 2):
            raise ValueError(
                f"CNN1dEmbedding expects examples of shape (length,) or (channels, length), got "
                f"{x_shape}."
            )
        in_channels = 1 if len(x_shape) == 1 else x_shape[0]
        length = x_shape[-1]
        keys = jax.random.split(key, len(channels) + 1)
        convs, c_in = [], in_channels
        for c_out, k in zip(channels, keys[:-1]):
            convs.append(eqx.nn.Conv1d(c_in, c_out, kernel_size, padding="SAME", key=k))
            c_in = c_out
            length = max(length // 2, 1)
        self.convs = tuple(convs)
        self.head = MLP(c_in * length, out_size, head_width, 1, key=keys[-1])
        self.in_channels = in_channels
        self.activation = activation
        self.out_size = out_size

    def __call__(self, x: Array) -> Float[Array, " out_size"]:
        h = x.reshape(self.in_channels, -1)
        for conv in self.convs:
            h = self.activation(conv(h))
            if h.shape[-1] >= 2:
                n = h.shape[-1] // 2 * 2
                h = jnp.max(h[:, :n].reshape(h.shape[0], -1, 2), axis=-1)
        return self.head(h.reshape(-1))
