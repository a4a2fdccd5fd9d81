"""Conditioner networks: a dense or masked (MADE) multilayer perceptron."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray


class MaskedMLP(eqx.Module):
    """An MLP whose weight matrices may be multiplied by fixed 0/1 masks.

    Masks are boolean arrays, so optimisers that filter on inexact arrays never update them.
    The last layer starts at exactly zero so the transformer parameters start at zero, i.e. the
    flow layer starts at the identity. Zero input features are allowed (a layer with nothing to
    condition on then learns a constant through its biases).
    """

    weights: tuple[Float[Array, "out in"], ...]
    biases: tuple[Float[Array, " out"], ...]
    masks: tuple[Bool[Array, "out in"], ...] | None
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        key: PRNGKeyArray,
        in_size: int,
        out_size: int,
        hidden_size: int,
        num_hidden: int,
        masks: tuple[np.ndarray, ...] | None = None,
        activation: Callable[[Array], Array] = jax.nn.silu,
    ):
        sizes = [in_size] + [hidden_size] * num_hidden + [out_size]
        keys = jax.random.split(key, 2 * (len(sizes) - 1))
        weights, biases = [], []
        for j, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            last = j == len(sizes) - 2
            if last:
                weights.append(jnp.zeros((n_out, n_in)))
                biases.append(jnp.zeros((n_out,)))
                continue
            # Uniform init scaled by fan-in; with no inputs the bias alone sets the activations.
            lim = 1.0 / np.sqrt(max(n_in, 1))
            weights.append(jax.random.uniform(keys[2 * j], (n_out, n_in), minval=-lim, maxval=lim))
            biases.append(jax.random.uniform(keys[2 * j + 1], (n_out,), minval=-1.0, maxval=1.0))
        self.weights = tuple(weights)
        self.biases = tuple(biases)
        if masks is not None:
            if len(masks) != len(weights) or any(
                m.shape != w.shape for m, w in zip(masks, weights)
            ):
                raise ValueError("Each mask must match the shape of its weight matrix.")
            masks = tuple(jnp.asarray(m, dtype=bool) for m in masks)
        self.masks = masks
        self.activation = activation

    def __call__(self, x: Float[Array, " in"]) -> Float[Array, " out"]:
        n = len(self.weights)
        for j in range(n):
            w = self.weights[j]
            if self.masks is not None:
                w = jnp.where(self.masks[j], w, 0.0)
            x = w @ x + self.biases[j]
            if j < n - 1:
                x = self.activation(x)
        return x


def made_masks(
    dim: int, cond_dim: int, hidden_size: int, num_hidden: int, params_per_dim: int
) -> tuple[np.ndarray, ...]:
    """MADE masks (Germain et al. 2015) for inputs ``[x (dim), condition (cond_dim)]``.

    Output block ``i`` (``params_per_dim`` rows) depends only on ``x[:i]`` and the condition.
    Inputs ``x[i]`` get degree ``i + 1``, condition inputs degree 0; hidden units get degrees
    cycling over ``0 .. dim - 1`` and see inputs of degree ``<=`` their own; output ``i`` sees
    hidden units of degree ``<= i``. Degree-0 hidden units see only the condition, which is what
    lets the first dimension (and a 1-D flow) depend on the condition.
    """
    in_deg = np.concatenate([np.arange(1, dim + 1), np.zeros(cond_dim, dtype=int)])
    hidden_deg = np.arange(hidden_size) % dim
    out_deg = np.repeat(np.arange(dim), params_per_dim)
    masks = []
    prev = in_deg
    for _ in range(num_hidden):
        masks.append(hidden_deg[:, None] >= prev[None, :])
        prev = hidden_deg
    # Output i (0-based) may only see degrees <= i, i.e. x[:i] and the condition.
    masks.append(out_deg[:, None] >= prev[None, :])
    return tuple(masks)
