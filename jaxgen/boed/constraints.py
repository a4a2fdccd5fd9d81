"""Design constraints, handled by reparameterization: optimize ``u`` freely, use ``design(u)``."""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

# Designs on a constraint's edge map to finite unconstrained values by clipping this far inside.
_EDGE = 1e-6


class AbstractConstraint(eqx.Module):
    """A set of allowed designs with a smooth map from an unconstrained space onto it.

    ``to_design(u)`` maps any real array onto the set; ``to_unconstrained`` is its (right)
    inverse. Gradient ascent runs on ``u``, so every iterate is a valid design.
    """

    @abc.abstractmethod
    def to_design(self, u: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """The design for the unconstrained parameters ``u``."""

    @abc.abstractmethod
    def to_unconstrained(self, design: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
        """Unconstrained parameters of a valid ``design``."""

    @abc.abstractmethod
    def contains(self, design: Float[Array, "*shape"]) -> Array:
        """Whether ``design`` satisfies the constraint (a boolean scalar)."""

    def describe(self) -> str:
        return type(self).__name__

    def check(self, design: Any, name: str = "design") -> Float[Array, "*shape"]:
        """Return ``design`` as a float array; raise if it violates the constraint."""
        design = jnp.asarray(design)
        if not jnp.issubdtype(design.dtype, jnp.floating):
            design = design.astype(jnp.result_type(float))
        if not bool(jnp.all(jnp.isfinite(design))):
            raise ValueError(f"`{name}` contains NaN or inf: {design}.")
        if not bool(self.contains(design)):
            raise ValueError(
                f"`{name}` violates the design constraint {self.describe()}: got {design}. Pass "
                f"a design inside the constraint, or a different `constraint=`."
            )
        return design


class Unconstrained(AbstractConstraint):
    """Every real design is allowed (the identity map)."""

    def to_design(self, u):
        return u

    def to_unconstrained(self, design):
        return jnp.asarray(design, dtype=float)

    def contains(self, design):
        return jnp.array(True)


class Box(AbstractConstraint):
    """``low <= design <= high`` elementwise (``low``/``high`` broadcast against the design).

    ``design = low + (high - low) * sigmoid(u)``; coordinates marked ``log_scale`` (which need
    ``low > 0``) move on a log scale instead, ``design = exp(log low + log(high / low) *
    sigmoid(u))``, so that a step in ``u`` changes the design by a factor rather than an
    amount: the right geometry for delays, doses or energies that span decades.

    Example:
        ```python
        jg.boed.Box(40.0, 50.0)                      # a beam energy in [40, 50] GeV
        jg.boed.Box(jnp.array([-1, -1]), jnp.array([1, 1]))   # 2-D locations in a square
        jg.boed.Box(jnp.array([0.0, 1.0]), jnp.array([100.0, 2000.0]),
                    log_scale=jnp.array([False, True]))      # (reward, delay in days)
        ```
    """

    low: Float[Array, "*shape"]
    high: Float[Array, "*shape"]
    log_scale: Any

    def __init__(self, low: Any, high: Any, log_scale: Any = False):
        low, high = jnp.asarray(low, dtype=float), jnp.asarray(high, dtype=float)
        if not bool(jnp.all(high > low)):
            raise ValueError(f"A Box needs high > low everywhere, got low={low}, high={high}.")
        log_scale = np.broadcast_to(np.asarray(log_scale, dtype=bool),
                                    np.broadcast_shapes(low.shape, high.shape,
                                                        np.shape(log_scale)))
        if np.any(log_scale & ~np.asarray(jnp.broadcast_to(low, log_scale.shape) > 0)):
            raise ValueError(
                f"Log-scale coordinates of a Box need low > 0, got low={np.asarray(low)} with "
                f"log_scale={log_scale.tolist()}."
            )
        self.low, self.high = low, high
        self.log_scale = log_scale if log_scale.any() else None

    def describe(self):
        extra = "" if self.log_scale is None else f", log_scale={self.log_scale.tolist()}"
        return (f"Box(low={np.asarray(self.low).tolist()}, "
                f"high={np.asarray(self.high).tolist()}{extra})")

    def _ends(self):
        if self.log_scale is None:
            return self.low, self.high
        # safe logs: the linear coordinates' ends are not used through these
        safe = lambda v: jnp.log(jnp.where(self.log_scale, v, 1.0))
        return (jnp.where(self.log_scale, safe(self.low), self.low),
                jnp.where(self.log_scale, safe(self.high), self.high))

    def to_design(self, u):
        lo, hi = self._ends()
        v = lo + (hi - lo) * jax.nn.sigmoid(u)
        return v if self.log_scale is None else jnp.where(self.log_scale, jnp.exp(v), v)

    def to_unconstrained(self, design):
        lo, hi = self._ends()
        design = jnp.asarray(design, dtype=float)
        if self.log_scale is not None:
            design = jnp.where(self.log_scale, jnp.log(jnp.maximum(design, 1e-30)), design)
        frac = jnp.clip((design - lo) / (hi - lo), _EDGE, 1.0 - _EDGE)
        return jnp.log(frac) - jnp.log1p(-frac)

    def contains(self, design):
        tol = 1e-6 * (self.high - self.low)
        return jnp.all((design >= self.low - tol) & (design <= self.high + tol))


def declared_constraint(simulator: Any) -> Box | None:
    """The :class:`Box` a simulator declares with ``design_bounds()`` -- returning
    ``(low, high)`` or ``(low, high, log_scale)`` -- or ``None`` when it declares none."""
    bounds = getattr(simulator, "design_bounds", None)
    return Box(*bounds()) if callable(bounds) else None


class OrderedTimes(AbstractConstraint):
    """Increasing measurement times ``low <= t_1 <= ... <= t_n <= high`` (a 1-D design).

    The ``n + 1`` gaps (before the first time, between times, after the last) are a softmax of
    ``n + 1`` unconstrained numbers times ``high - low``; the times are their cumulative sums.
    """

    low: float = eqx.field(static=True)
    high: float = eqx.field(static=True)

    def __init__(self, low: float, high: float):
        if not high > low:
            raise ValueError(f"OrderedTimes needs high > low, got low={low}, high={high}.")
        self.low, self.high = float(low), float(high)

    def describe(self):
        return f"OrderedTimes(low={self.low}, high={self.high})"

    def to_design(self, u):
        gaps = jax.nn.softmax(u) * (self.high - self.low)
        return self.low + jnp.cumsum(gaps)[:-1]

    def to_unconstrained(self, design):
        t = jnp.asarray(design, dtype=float)
        if t.ndim != 1:
            raise ValueError(f"OrderedTimes designs are 1-D arrays of times, got {t.shape}.")
        edges = jnp.concatenate([jnp.array([self.low]), t, jnp.array([self.high])])
        gaps = jnp.maximum(jnp.diff(edges), _EDGE * (self.high - self.low))
        return jnp.log(gaps)

    def contains(self, design):
        t = jnp.asarray(design)
        tol = 1e-6 * (self.high - self.low)
        return (
            (t.ndim == 1)
            & jnp.all(t >= self.low - tol)
            & jnp.all(t <= self.high + tol)
            & jnp.all(jnp.diff(t) >= -tol)
        )


class Simplex(AbstractConstraint):
    """Non-negative allocations that add up to a budget: ``design >= 0``, ``sum = total``.

    ``design = total * softmax(u)`` (over all elements).
    """

    total: float = eqx.field(static=True)

    def __init__(self, total: float = 1.0):
        if not total > 0:
            raise ValueError(f"Simplex needs a positive total, got {total}.")
        self.total = float(total)

    def describe(self):
        return f"Simplex(total={self.total})"

    def to_design(self, u):
        return self.total * jax.nn.softmax(u.ravel()).reshape(u.shape)

    def to_unconstrained(self, design):
        frac = jnp.asarray(design, dtype=float) / self.total
        return jnp.log(jnp.maximum(frac, _EDGE))

    def contains(self, design):
        design = jnp.asarray(design)
        return jnp.all(design >= -1e-6 * self.total) & (
            jnp.abs(jnp.sum(design) - self.total) <= 1e-4 * self.total
        )
