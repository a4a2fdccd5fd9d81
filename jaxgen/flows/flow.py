"""Normalizing flows: a standard normal pushed through a scanned stack of bijections."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._checks import check_key
from .autoregressive import MaskedAutoregressive
from .base import AbstractConditionalDensity
from .bijection import AbstractBijection
from .coupling import Coupling
from .transformers import AbstractTransformer, Affine, RationalQuadraticSpline


class Flow(AbstractConditionalDensity):
    """A normalizing flow ``x = T(z; condition)`` with ``z ~ N(0, I_dim)``.

    ``T`` applies ``num_layers`` bijections of one structure, each followed by a fixed
    permutation of the dimensions. The layers are stored stacked (every array has a leading
    ``num_layers`` axis, built with ``eqx.filter_vmap``) and applied with ``lax.scan``, so the
    compiled program does not grow with depth. The builders reverse the dimensions after every
    layer (a fixed permutation, stored as an array so any permutation fits the same scan); there
    is no learned linear (LU) mixing layer. Build flows with :func:`coupling_flow` or
    :func:`masked_autoregressive_flow` rather than by hand.

    Fields:
        layers: the stacked bijections (base-to-data direction is their ``transform``).
        permutations: ``(num_layers, dim)`` int array; layer ``l``'s output is ``h[perm[l]]``.
        inverse_permutations: the inverse permutations, same shape.
        dim, cond_dim, num_layers: static sizes.

    Example:
        ```python
        flow = jg.flows.coupling_flow(key, dim=2)
        z = jnp.zeros(2)
        x = flow.transform(z)            # base -> data, one example
        flow.inverse(x)                  # data -> base
        flow.log_prob(jnp.ones((5, 2)))  # (5,)
        ```
    """

    layers: AbstractBijection
    permutations: Int[Array, "num_layers dim"]
    inverse_permutations: Int[Array, "num_layers dim"]
    dim: int = eqx.field(static=True)
    cond_dim: int | None = eqx.field(static=True)
    num_layers: int = eqx.field(static=True)

    def __init__(
        self,
        layers: AbstractBijection,
        permutations: Int[Array, "num_layers dim"],
    ):
        """Wrap stacked ``layers`` (leading axis = layer) and per-layer ``permutations``."""
        permutations = jnp.asarray(permutations, dtype=jnp.int32)
        if permutations.ndim != 2 or permutations.shape[1] != layers.dim:
            raise ValueError(
                f"`permutations` must have shape (num_layers, {layers.dim}), got "
                f"{permutations.shape}."
            )
        self.layers = layers
        self.permutations = permutations
        self.inverse_permutations = jnp.argsort(permutations, axis=1).astype(jnp.int32)
        self.dim = layers.dim
        self.cond_dim = layers.cond_dim
        self.num_layers = int(permutations.shape[0])

    def layer(self, index: int) -> AbstractBijection:
        """The ``index``-th bijection as an ordinary (unstacked) module, without permutation."""
        if not -self.num_layers <= index < self.num_layers:
            raise IndexError(f"Layer index {index} out of range for {self.num_layers} layers.")
        params, static = eqx.partition(self.layers, eqx.is_array)
        params = jax.tree.map(lambda a: a[index], params)
        return eqx.combine(params, static)

    def transform_and_log_det(
        self, z: Float[Array, " dim"], condition: Float[Array, " cond_dim"] | None = None
    ) -> tuple[Float[Array, " dim"], Float[Array, ""]]:
        """Base to data for one example: ``x = T(z)`` and ``log|det dT/dz|``."""
        params, static = eqx.partition(self.layers, eqx.is_array)

        def step(h, xs):
            layer_params, perm = xs
            layer = eqx.combine(layer_params, static)
            h, log_det = layer.transform_and_log_det(h, condition)
            return h[perm], log_det

        x, log_dets = lax.scan(step, jnp.asarray(z), (params, self.permutations))
        return x, jnp.sum(log_dets)

    def inverse_and_log_det(
        self, x: Float[Array, " dim"], condition: Float[Array, " cond_dim"] | None = None
    ) -> tuple[Float[Array, " dim"], Float[Array, ""]]:
        """Data to base for one example: ``z = T^{-1}(x)`` and ``log|det dT^{-1}/dx|``."""
        params, static = eqx.partition(self.layers, eqx.is_array)

        def step(h, xs):
            layer_params, inverse_perm = xs
            layer = eqx.combine(layer_params, static)
            h, log_det = layer.inverse_and_log_det(h[inverse_perm], condition)
            return h, log_det

        z, log_dets = lax.scan(
            step, jnp.asarray(x), (params, self.inverse_permutations), reverse=True
        )
        return z, jnp.sum(log_dets)

    def transform(
        self, z: Float[Array, " dim"], condition: Float[Array, " cond_dim"] | None = None
    ) -> Float[Array, " dim"]:
        """Base to data for one example."""
        return self.transform_and_log_det(z, condition)[0]

    def inverse(
        self, x: Float[Array, " dim"], condition: Float[Array, " cond_dim"] | None = None
    ) -> Float[Array, " dim"]:
        """Data to base for one example."""
        return self.inverse_and_log_det(x, condition)[0]

    def _base_log_prob(self, z: Array) -> Array:
        return -0.5 * jnp.sum(z**2) - 0.5 * self.dim * jnp.log(2.0 * jnp.pi)

    def _log_prob(self, x, condition):
        z, log_det = self.inverse_and_log_det(x, condition)
        return self._base_log_prob(z) + log_det

    def _sample_and_log_prob(self, key, condition):
        z = jax.random.normal(key, (self.dim,))
        x, log_det = self.transform_and_log_det(z, condition)
        return x, self._base_log_prob(z) - log_det


# -- builders ---------------------------------------------------------------------------------


def _check_sizes(dim, cond_dim, num_layers, hidden_size, num_hidden):
    def positive_int(name, value, minimum):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}.")

    positive_int("dim", dim, 1)
    if cond_dim is not None and (
        not isinstance(cond_dim, int) or isinstance(cond_dim, bool) or cond_dim < 1
    ):
        raise ValueError(
            f"`cond_dim` must be None (unconditional) or an int >= 1, got {cond_dim!r}."
        )
    positive_int("num_layers", num_layers, 1)
    positive_int("hidden_size", hidden_size, 1)
    positive_int("num_hidden", num_hidden, 0)


def _stacked_flow(
    key: PRNGKeyArray,
    dim: int,
    num_layers: int,
    make_layer: Callable[[PRNGKeyArray], AbstractBijection],
) -> Flow:
    keys = jax.random.split(key, num_layers)
    layers = eqx.filter_vmap(make_layer)(keys)
    # Reversing after every layer lets each dimension condition the others in turn (coupling) and
    # alternates the autoregressive order (MAF), as in the original papers.
    reverse = jnp.arange(dim - 1, -1, -1, dtype=jnp.int32)
    permutations = jnp.tile(reverse, (num_layers, 1))
    return Flow(layers, permutations)


def coupling_flow(
    key: PRNGKeyArray,
    dim: int,
    *,
    cond_dim: int | None = None,
    transformer: AbstractTransformer | None = None,
    num_layers: int = 5,
    hidden_size: int = 50,
    num_hidden: int = 2,
) -> Flow:
    """A coupling flow: RealNVP with ``Affine()``, a neural spline flow with a spline (default).

    Each layer leaves ``dim // 2`` dimensions unchanged and transforms the rest with parameters
    from an MLP of the unchanged half and the condition; the dimensions are reversed between
    layers. Layers start at the identity. References: Dinh et al. 2017, "Density estimation using
    Real NVP"; Durkan et al. 2019, "Neural Spline Flows".

    Args:
        key: PRNG key for the initial weights.
        dim: dimension of the modelled variable (``1`` works: the condition or learned
            constants parameterise the transform).
        cond_dim: dimension of the condition, or ``None`` for an unconditional flow.
        transformer: elementwise map; default ``RationalQuadraticSpline()``.
        num_layers: number of coupling layers.
        hidden_size: width of the conditioner MLPs.
        num_hidden: hidden layers per conditioner.

    Returns:
        A :class:`Flow`.

    Example:
        ```python
        flow = jg.flows.coupling_flow(jax.random.key(0), dim=3, cond_dim=2)
        flow.sample(jax.random.key(1), jnp.zeros(2), num_samples=10).shape  # (10, 3)
        ```
    """
    key = check_key(key)
    _check_sizes(dim, cond_dim, num_layers, hidden_size, num_hidden)
    transformer = RationalQuadraticSpline() if transformer is None else transformer

    def make_layer(k):
        return Coupling(
            k, transformer, dim, cond_dim=cond_dim, hidden_size=hidden_size,
            num_hidden=num_hidden,
        )

    return _stacked_flow(key, dim, num_layers, make_layer)


def masked_autoregressive_flow(
    key: PRNGKeyArray,
    dim: int,
    *,
    cond_dim: int | None = None,
    transformer: AbstractTransformer | None = None,
    num_layers: int = 5,
    hidden_size: int = 50,
    num_hidden: int = 2,
) -> Flow:
    """A masked autoregressive flow (MAF; with a spline, an autoregressive neural spline flow).

    Each layer is a :class:`MaskedAutoregressive` bijection with a MADE conditioner; the order
    of the dimensions is reversed between layers. ``log_prob`` costs one network pass per
    layer; sampling costs ``dim`` sequential passes per layer. Layers start at the identity.
    Reference: Papamakarios, Pavlakou & Murray 2017, "Masked Autoregressive Flow for Density
    Estimation"; Germain et al. 2015, "MADE".

    Args:
        key: PRNG key for the initial weights.
        dim: dimension of the modelled variable (``1`` works).
        cond_dim: dimension of the condition, or ``None`` for an unconditional flow.
        transformer: elementwise map; default ``Affine()``.
        num_layers: number of autoregressive layers.
        hidden_size: width of the MADE hidden layers.
        num_hidden: hidden layers per MADE.

    Returns:
        A :class:`Flow`.

    Example:
        ```python
        flow = jg.flows.masked_autoregressive_flow(jax.random.key(0), dim=2, cond_dim=1)
        flow.log_prob(jnp.zeros((4, 2)), jnp.ones(1)).shape  # (4,)
        ```
    """
    key = check_key(key)
    _check_sizes(dim, cond_dim, num_layers, hidden_size, num_hidden)
    transformer = Affine() if transformer is None else transformer

    def make_layer(k):
        return MaskedAutoregressive(
            k, transformer, dim, cond_dim=cond_dim, hidden_size=hidden_size,
            num_hidden=num_hidden,
        )

    return _stacked_flow(key, dim, num_layers, make_layer)


def real_nvp(
    key: PRNGKeyArray,
    dim: int,
    *,
    cond_dim: int | None = None,
    num_layers: int = 5,
    hidden_size: int = 50,
    num_hidden: int = 2,
) -> Flow:
    """RealNVP: :func:`coupling_flow` with ``Affine()`` transformers (Dinh et al. 2017)."""
    return coupling_flow(
        key, dim, cond_dim=cond_dim, transformer=Affine(), num_layers=num_layers,
        hidden_size=hidden_size, num_hidden=num_hidden,
    )


def maf(
    key: PRNGKeyArray,
    dim: int,
    *,
    cond_dim: int | None = None,
    transformer: AbstractTransformer | None = None,
    num_layers: int = 5,
    hidden_size: int = 50,
    num_hidden: int = 2,
) -> Flow:
    """MAF: the same as :func:`masked_autoregressive_flow` (Papamakarios et al. 2017)."""
    return masked_autoregressive_flow(
        key, dim, cond_dim=cond_dim, transformer=transformer, num_layers=num_layers,
        hidden_size=hidden_size, num_hidden=num_hidden,
    )


def neural_spline_flow(
    key: PRNGKeyArray,
    dim: int,
    *,
    autoregressive: bool = False,
    cond_dim: int | None = None,
    num_bins: int = 8,
    interval: float = 5.0,
    num_layers: int = 5,
    hidden_size: int = 50,
    num_hidden: int = 2,
) -> Flow:
    """Neural spline flow (Durkan et al. 2019): rational-quadratic splines in coupling layers,
    or in masked autoregressive layers when ``autoregressive=True``.

    Args:
        key: PRNG key for the initial weights.
        dim: dimension of the modelled variable.
        autoregressive: use MADE layers (fast density, ``dim`` passes to sample) instead of
            coupling layers (both directions one pass).
        cond_dim: dimension of the condition, or ``None``.
        num_bins: spline bins per dimension.
        interval: the splines act on ``[-interval, interval]`` and are the identity outside.
        num_layers, hidden_size, num_hidden: depth and conditioner size.

    Returns:
        A :class:`Flow`.
    """
    build = masked_autoregressive_flow if autoregressive else coupling_flow
    return build(
        key, dim, cond_dim=cond_dim,
        transformer=RationalQuadraticSpline(num_bins=num_bins, interval=interval),
        num_layers=num_layers, hidden_size=hidden_size, num_hidden=num_hidden,
    )
