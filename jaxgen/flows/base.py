"""The conditional-density contract shared by flows, mixture density nets and diffusion models."""

from __future__ import annotations

import abc
import math
import operator

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._checks import check_key


class AbstractConditionalDensity(eqx.Module):
    """A (conditional) density ``p(x | condition)`` over vectors ``x`` of length ``dim``.

    Subclasses implement two single-example methods, ``_log_prob(x, condition)`` and
    ``_sample_and_log_prob(key, condition)``, and declare the static fields ``dim`` and
    ``cond_dim`` (``None`` for an unconditional density). They may also override
    ``_sample(key, condition)`` when sampling is much cheaper than sampling with the log density.
    The batched public methods below are written once here: they check shapes, broadcast the
    condition against the batch and ``vmap`` the single-example methods. They are compiled with
    ``eqx.filter_jit`` (one compilation per input shape), so eager calls are fast and calls
    inside a user's ``jit`` are inlined. Shape errors are raised while tracing.

    Shapes:
        - ``log_prob(x, condition)``: ``x`` is ``(*batch, dim)``; ``condition`` is
          ``(*batch, cond_dim)`` or anything that broadcasts against ``x``'s batch shape (e.g. a
          single ``(cond_dim,)``). Returns ``(*batch,)``.
        - ``sample(key, condition, num_samples)``: with ``condition`` ``None`` or ``(cond_dim,)``
          returns ``(num_samples, dim)``, or ``(dim,)`` when ``num_samples`` is ``None``; with a
          batch of conditions ``(*cbatch, cond_dim)`` returns ``(num_samples, *cbatch, dim)``, or
          ``(*cbatch, dim)`` when ``num_samples`` is ``None``.

    Example:
        ```python
        flow = jg.flows.coupling_flow(key, dim=2, cond_dim=3)
        samples = flow.sample(key, condition, num_samples=100)   # (100, 2)
        log_p = flow.log_prob(samples, condition)                # (100,)
        ```
    """

    dim: eqx.AbstractVar[int]
    cond_dim: eqx.AbstractVar[int | None]

    @abc.abstractmethod
    def _log_prob(
        self, x: Float[Array, " dim"], condition: Float[Array, " cond_dim"] | None
    ) -> Float[Array, ""]:
        """log p(x | condition) for one example."""

    @abc.abstractmethod
    def _sample_and_log_prob(
        self, key: PRNGKeyArray, condition: Float[Array, " cond_dim"] | None
    ) -> tuple[Float[Array, " dim"], Float[Array, ""]]:
        """One sample and its log density."""

    def _sample(
        self, key: PRNGKeyArray, condition: Float[Array, " cond_dim"] | None
    ) -> Float[Array, " dim"]:
        """One sample; override when the log density is costly to get along with it."""
        return self._sample_and_log_prob(key, condition)[0]

    # -- batched public API -------------------------------------------------------------------

    @eqx.filter_jit
    def log_prob(
        self,
        x: Float[ArrayLike, "*batch dim"],
        condition: Float[ArrayLike, "*batch cond_dim"] | None = None,
    ) -> Float[Array, "*batch"]:
        """Log density of ``x`` (shape ``(*batch, dim)``) given ``condition``.

        Args:
            x: points, shape ``(*batch, dim)``.
            condition: ``None`` for an unconditional density; otherwise shape
                ``(*batch, cond_dim)`` or any shape whose leading axes broadcast against
                ``x``'s batch shape, e.g. ``(cond_dim,)``.

        Returns:
            The log densities, shape ``(*batch,)`` (the broadcast batch shape).
        """
        x = jnp.asarray(x)
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(
                f"`x` must have shape (*batch, {self.dim}) for this {type(self).__name__} "
                f"(dim={self.dim}), got shape {x.shape}. A single example is a vector of length "
                f"{self.dim}; a batch stacks examples along the leading axes."
            )
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.float32)
        condition = self._check_condition(condition)
        if condition is None:
            batch = x.shape[:-1]
            flat_x = x.reshape(-1, self.dim)
            log_p = jax.vmap(lambda xi: self._log_prob(xi, None))(flat_x)
            return log_p.reshape(batch)
        try:
            batch = jnp.broadcast_shapes(x.shape[:-1], condition.shape[:-1])
        except ValueError:
            raise ValueError(
                f"The batch shapes of `x` {x.shape} and `condition` {condition.shape} do not "
                f"broadcast: expected x (*batch, {self.dim}) with condition (*batch, "
                f"{self.cond_dim}) or a single condition ({self.cond_dim},)."
            ) from None
        flat_x = jnp.broadcast_to(x, batch + (self.dim,)).reshape(-1, self.dim)
        flat_c = jnp.broadcast_to(condition, batch + (self.cond_dim,)).reshape(-1, self.cond_dim)
        log_p = jax.vmap(self._log_prob)(flat_x, flat_c)
        return log_p.reshape(batch)

    def sample(
        self,
        key: PRNGKeyArray,
        condition: Float[ArrayLike, "*cbatch cond_dim"] | None = None,
        num_samples: int | None = None,
    ) -> Float[Array, "*shape"]:
        """Draw samples.

        Args:
            key: a typed PRNG key (``jax.random.key``).
            condition: ``None`` (unconditional), one condition ``(cond_dim,)`` or a batch
                ``(*cbatch, cond_dim)``.
            num_samples: number of samples per condition; ``None`` draws one without a
                sample axis.

        Returns:
            Samples of shape ``(num_samples, *cbatch, dim)``; the leading axis is dropped when
            ``num_samples`` is ``None``.
        """
        return self._batched_sample(key, condition, _as_num_samples(num_samples), False)

    def sample_and_log_prob(
        self,
        key: PRNGKeyArray,
        condition: Float[ArrayLike, "*cbatch cond_dim"] | None = None,
        num_samples: int | None = None,
    ) -> tuple[Float[Array, "*shape"], Float[Array, "*shape"]]:
        """Draw samples together with their log densities.

        Same shape convention as :meth:`sample`; the log densities have the sample shape
        without the trailing ``dim`` axis.
        """
        return self._batched_sample(key, condition, _as_num_samples(num_samples), True)

    @eqx.filter_jit
    def _batched_sample(self, key, condition, num_samples: int | None, with_log_prob: bool):
        # `num_samples` and `with_log_prob` arrive as Python values, hence static under jit.
        key = check_key(key)
        condition = self._check_condition(condition)
        cbatch = () if condition is None else condition.shape[:-1]
        out_shape = (() if num_samples is None else (num_samples,)) + cbatch
        total = math.prod(out_shape)
        keys = jax.random.split(key, total)
        if condition is None:
            flat_c = None
        else:
            flat_c = jnp.broadcast_to(condition, out_shape + (self.cond_dim,))
            flat_c = flat_c.reshape(total, self.cond_dim)
        if with_log_prob:
            flat, log_p = jax.vmap(self._sample_and_log_prob)(keys, flat_c)
            return flat.reshape(out_shape + (self.dim,)), log_p.reshape(out_shape)
        flat = jax.vmap(self._sample)(keys, flat_c)
        return flat.reshape(out_shape + (self.dim,))

    # -- helpers ------------------------------------------------------------------------------

    def _check_condition(self, condition: ArrayLike | None) -> Array | None:
        name = type(self).__name__
        if self.cond_dim is None:
            if condition is not None:
                raise ValueError(
                    f"This {name} is unconditional (cond_dim=None) but a condition of shape "
                    f"{jnp.shape(condition)} was passed. Pass `condition=None`, or build the "
                    f"model with `cond_dim=...` to make it conditional."
                )
            return None
        if condition is None:
            raise ValueError(
                f"This {name} is conditional (cond_dim={self.cond_dim}) and needs a condition "
                f"of shape (*batch, {self.cond_dim}), got None."
            )
        condition = jnp.asarray(condition)
        if condition.ndim == 0 or condition.shape[-1] != self.cond_dim:
            raise ValueError(
                f"`condition` must have shape (*batch, {self.cond_dim}) (cond_dim="
                f"{self.cond_dim}), got shape {condition.shape}."
            )
        if not jnp.issubdtype(condition.dtype, jnp.floating):
            condition = condition.astype(jnp.float32)
        return condition


def _as_num_samples(num_samples) -> int | None:
    """A positive Python int (NumPy integers accepted) or None; anything else is an error."""
    if num_samples is None:
        return None
    try:
        value = None if isinstance(num_samples, bool) else operator.index(num_samples)
    except TypeError:
        value = None
    if value is None or value < 1:
        raise ValueError(
            f"`num_samples` must be a positive int or None, got {num_samples!r}. It sets an "
            f"array shape, so it cannot be a traced value."
        )
    return value
