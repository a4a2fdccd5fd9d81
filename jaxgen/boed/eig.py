"""The convenience entry point ``eig`` and the training of learned estimators."""

from __future__ import annotations

import math
import warnings
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import JaxgenWarning, check_key
from ..simulators import AbstractSimulator
from .base import AbstractEIGEstimator, decaying_adam
from .constraints import AbstractConstraint
from .contrastive import PriorContrastive
from .variational import InfoNCE


def default_estimator(
    simulator: AbstractSimulator, *, for_gradients: bool = False
) -> AbstractEIGEstimator:
    """PCE for simulators with a tractable likelihood, InfoNCE for implicit ones.

    The PCE for estimation uses 256 outer and 16384 contrastive samples (it cannot exceed
    ``log(16385) = 9.7`` nats); the one for gradient steps uses 64 and 128, which is far cheaper
    and whose gradient still points towards more informative designs when the bound saturates.
    """
    if not isinstance(simulator, AbstractSimulator):
        raise TypeError(
            f"`simulator` must be a jaxgen simulator (subclass of "
            f"`jg.simulators.AbstractSimulator`), got {type(simulator).__name__}."
        )
    if not simulator.has_likelihood:
        return InfoNCE()
    if for_gradients:
        return PriorContrastive(num_outer=64, num_inner=128)
    return PriorContrastive(num_outer=256, num_inner=16384)


def check_design(simulator: AbstractSimulator, design: Any) -> Any:
    """Resolve ``design=None`` to the simulator's default; check it is numeric and finite."""
    if design is None:
        design = simulator.default_design()
        if design is None:
            raise ValueError(
                f"{type(simulator).__name__} has no default design; pass `design=...`."
            )
    design = jnp.asarray(design)
    if not jnp.issubdtype(design.dtype, jnp.floating):
        design = design.astype(jnp.result_type(float))
    return design


def fit_estimator(
    key: PRNGKeyArray,
    estimator: AbstractEIGEstimator,
    simulator: AbstractSimulator,
    design: Any,
    *,
    num_steps: int = 1000,
    learning_rate: float = 1e-3,
    final_learning_rate: float | None = None,
) -> tuple[AbstractEIGEstimator, np.ndarray]:
    """Train an estimator's learned parts (critic, proposal, posterior) at a fixed design.

    Builds them first (:meth:`AbstractEIGEstimator.init`) and then ascends
    :meth:`AbstractEIGEstimator.objective` with Adam for ``num_steps`` steps, in one
    ``lax.scan``; steps with a non-finite objective or gradient are skipped. Estimators without
    learned parts come back unchanged.

    Args:
        key: PRNG key.
        estimator: any EIG estimator.
        simulator: the simulator.
        design: the fixed design.
        num_steps: optimizer steps.
        learning_rate: Adam step size at the start; it decays along a cosine to
            ``final_learning_rate`` (default ``learning_rate / 20``) at the last step, so the
            critic settles instead of wandering with the noise of the objective.

    Returns:
        ``(estimator, objective_history)`` with the objective of every step.

    Example:
        ```python
        est, hist = jg.boed.fit_estimator(key, jg.boed.InfoNCE(), sim, design)
        eig, stderr = est.estimate_with_stderr(key2, sim, design)
        ```
    """
    key = check_key(key)
    k_init, k_fit = jax.random.split(key)
    estimator = estimator.init(k_init, simulator, design)
    if not estimator.is_learned:
        return estimator, np.zeros(0)
    params, static = eqx.partition(estimator, eqx.is_inexact_array)
    optimizer = decaying_adam(learning_rate, final_learning_rate, num_steps)

    @eqx.filter_jit
    def run(params, design, key):
        def loss(p, k):
            return -eqx.combine(p, static).objective(k, simulator, design)

        def step(carry, k):
            p, state = carry
            value, grads = jax.value_and_grad(loss)(p, k)
            updates, new_state = optimizer.update(grads, state, p)
            new_p = eqx.apply_updates(p, updates)
            leaves = jax.tree_util.tree_leaves(grads)
            ok = jnp.isfinite(value) & jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in leaves]))
            p = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new_p, p)
            state = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new_state, state)
            return (p, state), -value

        (params, _), values = jax.lax.scan(
            step, (params, optimizer.init(params)), jax.random.split(key, num_steps)
        )
        return params, values

    params, values = run(params, design, k_fit)
    return eqx.combine(params, static), np.asarray(values)


def eig(
    key: PRNGKeyArray,
    simulator: AbstractSimulator,
    design: Any = None,
    *,
    estimator: AbstractEIGEstimator | None = None,
    constraint: AbstractConstraint | None = None,
    num_steps: int = 1000,
    learning_rate: float = 1e-3,
    return_stderr: bool = False,
) -> Float[Array, ""] | tuple[Float[Array, ""], Float[Array, ""]]:
    """Estimate the expected information gain ``EIG(d) = I(theta; x | d)`` at one design.

    The default estimator is prior contrastive estimation (a lower bound) for simulators that
    implement ``log_likelihood``, and InfoNCE with a learned critic for implicit simulators.
    For estimators without learned parts the result is differentiable in ``design``
    (``jax.grad`` works through the simulator); learned estimators are first trained at
    ``design`` with :func:`fit_estimator`.

    Args:
        key: PRNG key.
        simulator: a jaxgen simulator.
        design: the design passed to the simulator (``None``: its default design). A static
            batch of experiments is one array with the experiments along the leading axis.
        estimator: an :class:`AbstractEIGEstimator`; see above for the default.
        constraint: if given, ``design`` must satisfy it.
        num_steps, learning_rate: training of learned estimators.
        return_stderr: also return the Monte Carlo standard error.

    Returns:
        The EIG estimate in nats (and its standard error).

    Example:
        ```python
        sim = jg.simulators.DampedOscillator()
        value = jg.boed.eig(key, sim, jnp.linspace(0.0, 5.0, 10))
        grad = jax.grad(lambda d: jg.boed.eig(key, sim, d))(jnp.linspace(0.0, 5.0, 10))
        ```
    """
    key = check_key(key)
    estimator = default_estimator(simulator) if estimator is None else estimator
    if not isinstance(estimator, AbstractEIGEstimator):
        raise TypeError(
            f"`estimator` must be a jaxgen EIG estimator (e.g. `jg.boed.PriorContrastive()`), "
            f"got {type(estimator).__name__}."
        )
    if not isinstance(design, jax.core.Tracer):
        design = check_design(simulator, design)
        if constraint is not None:
            design = constraint.check(design)
    k_fit, k_est = jax.random.split(key)
    if estimator.is_learned or _needs_init(estimator):
        estimator, _ = fit_estimator(
            k_fit, estimator, simulator, jax.lax.stop_gradient(design),
            num_steps=num_steps, learning_rate=learning_rate,
        )
    value, stderr = estimator.estimate_with_stderr(k_est, simulator, design)
    if isinstance(estimator, PriorContrastive) and not isinstance(value, jax.core.Tracer):
        cap = math.log(estimator.num_inner + 1)
        if float(value) > cap - 0.5:
            warnings.warn(
                f"The PCE estimate {float(value):.3f} is close to its ceiling log(L + 1) = "
                f"{cap:.3f} (L = num_inner = {estimator.num_inner}): the true EIG may be larger. "
                f"Increase `num_inner` (large values run in chunks) or use "
                f"`jg.boed.AdaptiveContrastive()`.", JaxgenWarning, stacklevel=2,
            )
    return (value, stderr) if return_stderr else value


def _needs_init(estimator: AbstractEIGEstimator) -> bool:
    # Learned estimators start with their networks set to None until `init` builds them.
    return type(estimator).init is not AbstractEIGEstimator.init
