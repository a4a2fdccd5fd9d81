"""Design optimization: ``optimize_design`` and its strategies.

Strategies are small modules passed as ``method=``: :class:`GradientAscent` (stochastic gradient
ascent through the simulator, many restarts vmapped at once), :class:`BayesianOptimization`
(a Gaussian-process surrogate of the EIG, for simulators that are not differentiable) and
:class:`DiscreteSearch` (a finite set of candidate designs).
"""

from __future__ import annotations

import abc
import time
import warnings
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.stats import norm
from jaxtyping import Array, PRNGKeyArray

from .._checks import JaxgenWarning, check_key
from ..simulators import AbstractSimulator
from .base import AbstractEIGEstimator, check_positive_int
from .constraints import AbstractConstraint, Box, Unconstrained, declared_constraint
from .eig import check_design, default_estimator, fit_estimator


class DesignResult(eqx.Module):
    """What :func:`optimize_design` found.

    Attributes:
        design: the best design found.
        eig: its EIG estimate (a fresh estimate, not the optimization objective).
        eig_stderr: the standard error of ``eig``.
        history: the objective at every step of the best restart (gradient ascent), or the EIG
            of every evaluated design in evaluation order (Bayesian optimization, discrete
            search).
        candidate_designs: the final design of every restart (or every evaluated design).
        candidate_eigs, candidate_stderrs: their EIG estimates and standard errors.
        estimator: the estimator (trained, when it has learned parts).
        num_nonfinite_steps: gradient steps skipped because of NaN/inf.
        wall_time: seconds spent, compilation included.
    """

    design: Array
    eig: float
    eig_stderr: float
    history: np.ndarray
    candidate_designs: Array
    candidate_eigs: np.ndarray
    candidate_stderrs: np.ndarray
    estimator: AbstractEIGEstimator
    num_nonfinite_steps: int
    wall_time: float


class AbstractDesignMethod(eqx.Module):
    """A strategy for maximizing the EIG over designs."""

    @abc.abstractmethod
    def run(
        self,
        key: PRNGKeyArray,
        simulator: AbstractSimulator,
        design0: Array,
        estimator: AbstractEIGEstimator,
        constraint: AbstractConstraint,
        evaluator: AbstractEIGEstimator | None = None,
    ) -> DesignResult:
        """Optimize and return the result; ``evaluator`` (if given) makes the final estimates."""


def _final_estimates(key, estimators, simulator, designs, num_evaluations, stacked=True):
    """Fresh estimates at every candidate, ``num_evaluations`` keys each.

    ``estimators`` is one estimator per design (stacked along a leading axis) when ``stacked``,
    else one estimator used at every design.
    """

    def one(est, design, k):
        values, errors = jax.vmap(lambda kk: est.estimate_with_stderr(kk, simulator, design))(
            jax.random.split(k, num_evaluations)
        )
        return jnp.mean(values), jnp.sqrt(jnp.sum(errors**2)) / num_evaluations

    keys = jax.random.split(key, designs.shape[0])
    if stacked:
        return eqx.filter_vmap(one)(estimators, designs, keys)
    return jax.lax.map(lambda a: one(estimators, *a), (designs, keys))


def _not_differentiable(simulator, reason: str) -> Exception:
    return TypeError(
        f"Gradient-based design optimization needs the EIG to be differentiable in the design, "
        f"but for {type(simulator).__name__} {reason}. Use the Bayesian-optimization fallback, "
        f"`jg.boed.optimize_design(key, sim, design0, method=jg.boed.BayesianOptimization())`, "
        f"or, for outcomes that are discrete but have a likelihood, a score-function gradient: "
        f"`estimator=jg.boed.PriorContrastive(score_gradient=True)`."
    )


class GradientAscent(AbstractDesignMethod):
    """Stochastic gradient ascent on the EIG estimate with Adam, restarts vmapped at once.

    Each restart starts from ``design0`` jittered in the unconstrained space (restart 0 starts
    exactly at ``design0``). Learned estimators are first fitted at ``design0`` and then trained
    jointly with the design (Foster et al. 2020; Kleinegesse & Gutmann 2020). Steps whose
    objective or gradient is not finite are skipped and counted. At the end every restart's design
    gets a fresh EIG estimate from ``num_final_evaluations`` independent estimates and the best
    is returned.

    Args:
        num_steps: gradient steps per restart.
        learning_rate: Adam step size (in the unconstrained space).
        num_restarts: restarts run in parallel.
        init_scale: standard deviation of the restarts' jitter.
        num_final_evaluations: independent estimates averaged for the final EIG.
        num_pretrain_steps: steps fitting a learned estimator at ``design0`` before the joint
            ascent.
    """

    num_steps: int = eqx.field(static=True, default=150)
    learning_rate: float = eqx.field(static=True, default=0.05)
    num_restarts: int = eqx.field(static=True, default=4)
    init_scale: float = eqx.field(static=True, default=0.5)
    num_final_evaluations: int = eqx.field(static=True, default=1)
    num_pretrain_steps: int = eqx.field(static=True, default=300)

    def __check_init__(self):
        check_positive_int("num_steps", self.num_steps)
        check_positive_int("num_restarts", self.num_restarts)
        check_positive_int("num_final_evaluations", self.num_final_evaluations)
        check_positive_int("num_pretrain_steps", self.num_pretrain_steps, 0)

    def run(self, key, simulator, design0, estimator, constraint, evaluator=None):
        start = time.perf_counter()
        k_pre, k_init, k_steps, k_final = jax.random.split(key, 4)
        if estimator.is_learned or type(estimator).init is not AbstractEIGEstimator.init:
            estimator, _ = fit_estimator(
                k_pre, estimator, simulator, design0,
                num_steps=max(self.num_pretrain_steps, 1), learning_rate=1e-3,
            )
        u0 = constraint.to_unconstrained(design0)
        jitter = self.init_scale * jax.random.normal(k_init, (self.num_restarts,) + u0.shape)
        us = u0 + jitter.at[0].set(0.0)
        est_params, est_static = eqx.partition(estimator, eqx.is_inexact_array)
        est_params = jax.tree_util.tree_map(
            lambda a: jnp.broadcast_to(a, (self.num_restarts,) + a.shape), est_params
        )
        try:
            us, est_params, values, bad, moved, designs, eigs, errs = _ascent_program(
                self, simulator, constraint, evaluator, us, eqx.combine(est_params, est_static),
                k_steps, k_final,
            )
        except (TypeError, jax.errors.JAXTypeError) as err:
            if "grad" not in str(err).lower() and "differentiat" not in str(err).lower():
                raise
            raise _not_differentiable(simulator, f"taking the gradient failed ({err})") from err
        num_steps = self.num_steps
        if not bool(jnp.any(moved)):
            raise _not_differentiable(
                simulator,
                "the gradient of the EIG estimate with respect to the design was exactly zero at "
                "every step (the simulator's output does not depend smoothly on the design)",
            )
        num_bad = int(jnp.sum(bad))
        total = self.num_restarts * num_steps
        if num_bad == total:
            raise FloatingPointError(
                f"Every one of the {total} gradient steps had a NaN/inf objective or gradient. "
                f"Check the simulator at design0 (e.g. ODE solver failures), lower the learning "
                f"rate, or try `method=jg.boed.BayesianOptimization()`."
            )
        if num_bad:
            warnings.warn(
                f"{num_bad} of {total} gradient steps had a NaN/inf objective or gradient and "
                f"were skipped.", JaxgenWarning, stacklevel=3,
            )
        eigs, errs = np.asarray(eigs), np.asarray(errs)
        best = int(np.argmax(np.where(np.isfinite(eigs), eigs, -np.inf)))
        best_est = eqx.combine(
            jax.tree_util.tree_map(lambda a: a[best], est_params), est_static
        )
        return DesignResult(
            design=designs[best],
            eig=float(eigs[best]),
            eig_stderr=float(errs[best]),
            history=np.asarray(values[best]),
            candidate_designs=designs,
            candidate_eigs=eigs,
            candidate_stderrs=errs,
            estimator=best_est,
            num_nonfinite_steps=num_bad,
            wall_time=time.perf_counter() - start,
        )


@eqx.filter_jit
def _ascent_program(method, simulator, constraint, evaluator, us, estimators, k_steps, k_final):
    # One compiled program per (method, simulator, constraint, estimator structure): a second
    # call with new keys or a new starting design reuses it.
    est_params, est_static = eqx.partition(estimators, eqx.is_inexact_array)
    optimizer = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(method.learning_rate))

    def ascend(u, params, k):
        def loss(p, kk):
            uu, pp = p
            est = eqx.combine(pp, est_static)
            return -est.objective(kk, simulator, constraint.to_design(uu))

        def step(carry, kk):
            p, state = carry
            value, grads = jax.value_and_grad(loss)(p, kk)
            updates, new_state = optimizer.update(grads, state, p)
            new_p = optax.apply_updates(p, updates)
            ok = jnp.isfinite(value) & jnp.all(
                jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)])
            )
            keep = lambda a, b: jnp.where(ok, a, b)
            p = jax.tree_util.tree_map(keep, new_p, p)
            state = jax.tree_util.tree_map(keep, new_state, state)
            moved = jnp.any(jnp.where(ok, grads[0], 0.0) != 0)
            return (p, state), (-value, ~ok, moved)

        p0 = (u, params)
        (p, _), (values, bad, moved) = jax.lax.scan(
            step, (p0, optimizer.init(p0)), jax.random.split(k, method.num_steps)
        )
        return p, values, jnp.sum(bad), jnp.any(moved)

    (us, est_params), values, bad, moved = jax.vmap(ascend)(
        us, est_params, jax.random.split(k_steps, method.num_restarts)
    )
    designs = jax.vmap(constraint.to_design)(us)
    final = eqx.combine(est_params, est_static) if evaluator is None else evaluator
    eigs, errs = _final_estimates(
        k_final, final, simulator, designs, method.num_final_evaluations,
        stacked=evaluator is None,
    )
    return us, est_params, values, bad, moved, designs, eigs, errs


class DiscreteSearch(AbstractDesignMethod):
    """Evaluate the EIG at every design of a finite candidate set and take the best.

    Args:
        candidates: array ``(num_candidates, *design_shape)``.
        num_evaluations: independent estimates averaged per candidate.
    """

    candidates: Array
    num_evaluations: int = eqx.field(static=True, default=2)

    def __init__(self, candidates: Any, num_evaluations: int = 2):
        candidates = jnp.asarray(candidates)
        if candidates.ndim < 1 or candidates.shape[0] == 0:
            raise ValueError(
                f"`candidates` must stack at least one design along the leading axis, got shape "
                f"{candidates.shape}."
            )
        if not jnp.issubdtype(candidates.dtype, jnp.floating):
            candidates = candidates.astype(jnp.result_type(float))
        self.candidates = candidates
        self.num_evaluations = check_positive_int("num_evaluations", num_evaluations)

    def run(self, key, simulator, design0, estimator, constraint, evaluator=None):
        start = time.perf_counter()
        if evaluator is not None:
            estimator = evaluator
        if self.candidates.shape[1:] != design0.shape:
            raise ValueError(
                f"Candidate designs have shape {self.candidates.shape[1:]}, but design0 has "
                f"shape {design0.shape}; they must match."
            )
        k_fit, k_eval = jax.random.split(key)
        if type(estimator).init is not AbstractEIGEstimator.init:
            # A learned estimator is trained once per candidate (vmapped).
            def fitted(k, d):
                return fit_estimator(k, estimator, simulator, d, num_steps=300)[0]

            keys = jax.random.split(k_fit, self.candidates.shape[0])
            estimators = [fitted(k, d) for k, d in zip(keys, self.candidates)]
            estimators = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *estimators)
        else:
            params, static = eqx.partition(estimator, eqx.is_inexact_array)
            n = self.candidates.shape[0]
            estimators = eqx.combine(
                jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n,) + a.shape), params),
                static,
            )
        eigs, errs = eqx.filter_jit(_final_estimates)(
            k_eval, estimators, simulator, self.candidates, self.num_evaluations
        )
        eigs, errs = np.asarray(eigs), np.asarray(errs)
        best = int(np.argmax(np.where(np.isfinite(eigs), eigs, -np.inf)))
        params, static = eqx.partition(estimators, eqx.is_array)
        return DesignResult(
            design=self.candidates[best],
            eig=float(eigs[best]),
            eig_stderr=float(errs[best]),
            history=eigs,
            candidate_designs=self.candidates,
            candidate_eigs=eigs,
            candidate_stderrs=errs,
            estimator=eqx.combine(jax.tree_util.tree_map(lambda a: a[best], params), static),
            num_nonfinite_steps=0,
            wall_time=time.perf_counter() - start,
        )


def _gp_posterior(x_train, y_train, noise, x_test, lengthscale, amplitude):
    def kernel(a, b):
        sq = jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
        return amplitude**2 * jnp.exp(-0.5 * sq / lengthscale**2)

    k_xx = kernel(x_train, x_train) + jnp.diag(noise + 1e-6 * amplitude**2)
    chol = jnp.linalg.cholesky(k_xx)
    alpha = jax.scipy.linalg.cho_solve((chol, True), y_train)
    k_xs = kernel(x_train, x_test)
    mean = k_xs.T @ alpha
    v = jax.scipy.linalg.solve_triangular(chol, k_xs, lower=True)
    var = jnp.maximum(amplitude**2 - jnp.sum(v**2, axis=0), 1e-12)
    log_ml = -0.5 * y_train @ alpha - jnp.sum(jnp.log(jnp.diag(chol)))
    return mean, var, log_ml


class BayesianOptimization(AbstractDesignMethod):
    """Bayesian optimization of the EIG: for simulators that are not differentiable.

    A Gaussian process with a squared-exponential kernel models the (noisy) EIG estimates as a
    function of the unconstrained design; its lengthscale and amplitude maximize the marginal
    likelihood over a grid, and the estimates' standard errors are its noise. Each iteration
    evaluates the design that maximizes expected improvement among random candidates in a box of
    half-width ``radius`` around the unconstrained ``design0`` (Snoek et al. 2012, *Practical
    Bayesian Optimization of Machine Learning Algorithms*; for EIG: Kleinegesse & Gutmann 2019,
    *Efficient Bayesian Experimental Design for Implicit Models*, AISTATS). Only forward
    simulations are used, never gradients.

    Args:
        num_iterations: EIG evaluations after the initial ones.
        num_initial: random initial designs (``design0`` is always evaluated first).
        num_candidates: random candidates scored by the acquisition per iteration.
        radius: half-width of the search box in the unconstrained space.
    """

    num_iterations: int = eqx.field(static=True, default=25)
    num_initial: int = eqx.field(static=True, default=5)
    num_candidates: int = eqx.field(static=True, default=2048)
    radius: float = eqx.field(static=True, default=3.0)

    def __check_init__(self):
        check_positive_int("num_iterations", self.num_iterations, 0)
        check_positive_int("num_initial", self.num_initial, 0)
        check_positive_int("num_candidates", self.num_candidates)

    def run(self, key, simulator, design0, estimator, constraint, evaluator=None):
        start = time.perf_counter()
        if evaluator is not None:
            estimator = evaluator
        k_fit, k_init, k_loop = jax.random.split(key, 3)
        learned = type(estimator).init is not AbstractEIGEstimator.init
        u0 = constraint.to_unconstrained(design0)
        shape, dim = u0.shape, u0.size
        low, high = u0.ravel() - self.radius, u0.ravel() + self.radius

        @eqx.filter_jit
        def evaluate(k, u):
            design = constraint.to_design(u.reshape(shape))
            est = estimator
            if learned:
                k, k_train = jax.random.split(k)
                est = fit_estimator(k_train, estimator, simulator, design, num_steps=300)[0]
            return est.estimate_with_stderr(k, simulator, design)

        points = [u0.ravel()] + list(
            jax.random.uniform(k_init, (self.num_initial, dim), minval=low, maxval=high)
        )
        values, errors = [], []
        for i, u in enumerate(points):
            v, e = evaluate(jax.random.fold_in(k_fit, i), u)
            values.append(float(v))
            errors.append(float(e))

        lengthscales = jnp.geomspace(0.1, 3.0, 12) * self.radius

        @jax.jit
        def propose(k, xs, ys, errs):
            finite = jnp.isfinite(ys)
            y_mean = jnp.sum(jnp.where(finite, ys, 0.0)) / jnp.maximum(finite.sum(), 1)
            y_std = jnp.sqrt(
                jnp.sum(jnp.where(finite, ys - y_mean, 0.0) ** 2) / jnp.maximum(finite.sum(), 1)
            ) + 1e-6
            z = jnp.where(finite, (ys - y_mean) / y_std, -3.0)
            noise = jnp.where(finite, (errs / y_std) ** 2, 1.0)
            cand = jax.random.uniform(k, (self.num_candidates, dim), minval=low, maxval=high)
            fits = jax.vmap(lambda ls: _gp_posterior(xs, z, noise, cand, ls, 1.0))(lengthscales)
            best_ls = jnp.argmax(fits[2])
            mean, var = fits[0][best_ls], fits[1][best_ls]
            std = jnp.sqrt(var)
            best = jnp.max(z)
            gamma = (mean - best) / std
            expected_improvement = std * (gamma * norm.cdf(gamma) + norm.pdf(gamma))
            return cand[jnp.argmax(expected_improvement)]

        for i in range(self.num_iterations):
            xs = jnp.stack(points)
            u = propose(
                jax.random.fold_in(k_loop, i), xs, jnp.array(values), jnp.array(errors)
            )
            v, e = evaluate(jax.random.fold_in(k_fit, len(points)), u)
            points.append(u)
            values.append(float(v))
            errors.append(float(e))

        vals = np.array(values)
        best = int(np.argmax(np.where(np.isfinite(vals), vals, -np.inf)))
        designs = jax.vmap(lambda u: constraint.to_design(u.reshape(shape)))(jnp.stack(points))
        return DesignResult(
            design=designs[best],
            eig=float(vals[best]),
            eig_stderr=float(errors[best]),
            history=vals,
            candidate_designs=designs,
            candidate_eigs=vals,
            candidate_stderrs=np.array(errors),
            estimator=estimator,
            num_nonfinite_steps=int(np.sum(~np.isfinite(vals))),
            wall_time=time.perf_counter() - start,
        )


def default_constraint(simulator: AbstractSimulator, design0: Array) -> AbstractConstraint:
    """The simulator's own design bounds if it declares them, else the range spanned by design0.

    A simulator declares bounds with a ``design_bounds()`` method returning ``(low, high)``, or
    ``(low, high, log_scale)`` for coordinates that move on a log scale (see :class:`Box`).
    Without one, the design is kept inside ``[min(design0), max(design0)]`` (the region the
    user chose to look at), or left unconstrained when ``design0`` is a single value.
    """
    declared = declared_constraint(simulator)
    if declared is not None:
        return declared
    low, high = float(jnp.min(design0)), float(jnp.max(design0))
    if high > low:
        return Box(low, high)
    return Unconstrained()


def optimize_design(
    key: PRNGKeyArray,
    simulator: AbstractSimulator,
    design0: Any = None,
    *,
    estimator: AbstractEIGEstimator | None = None,
    constraint: AbstractConstraint | None = None,
    method: AbstractDesignMethod | None = None,
    evaluator: AbstractEIGEstimator | None = None,
) -> DesignResult:
    """Find the design that maximizes the expected information gain.

    By default: stochastic gradient ascent (Adam) on a PCE lower bound (InfoNCE for implicit
    simulators) with gradients taken through the simulator, four restarts vmapped at once.

    Args:
        key: PRNG key.
        simulator: a jaxgen simulator; its ``__call__`` takes the design as it is. A static
            batch design (N measurements chosen jointly) is one array with the experiments along
            its leading axis, e.g. 30 locations of shape ``(30, 2)``.
        design0: the starting design (``None``: the simulator's default design).
        estimator: the EIG estimator (see :func:`jaxgen.boed.eig` for the default).
        constraint: a :class:`~jaxgen.boed.Box`, :class:`~jaxgen.boed.OrderedTimes`,
            :class:`~jaxgen.boed.Simplex` or :class:`~jaxgen.boed.Unconstrained`; default
            :func:`default_constraint`. ``design0`` must satisfy it.
        method: :class:`GradientAscent` (default), :class:`BayesianOptimization` (not
            differentiable simulators) or :class:`DiscreteSearch` (finite candidate sets).
        evaluator: the estimator of the final EIG of each candidate design. Default: for
            simulators with a likelihood and no ``estimator`` given, the default of
            :func:`jaxgen.boed.eig` (a PCE with many contrastive samples, so the reported EIG is
            not capped at the ``log(L + 1)`` of the cheaper PCE used for the gradient steps);
            otherwise ``estimator`` itself.

    Returns:
        A :class:`DesignResult` with ``design``, ``eig``, ``eig_stderr`` and ``history``.

    Example:
        ```python
        sim = jg.simulators.DampedOscillator()
        best = jg.boed.optimize_design(key, sim, jnp.linspace(0.0, 5.0, 10))
        best.design, best.eig, best.eig_stderr, best.history
        ```
    """
    key = check_key(key)
    design0 = check_design(simulator, design0)
    if estimator is None:
        if evaluator is None and simulator.has_likelihood:
            evaluator = default_estimator(simulator)
        estimator = default_estimator(simulator, for_gradients=True)
    if not isinstance(estimator, AbstractEIGEstimator):
        raise TypeError(
            f"`estimator` must be a jaxgen EIG estimator, got {type(estimator).__name__}."
        )
    constraint = default_constraint(simulator, design0) if constraint is None else constraint
    if not isinstance(constraint, AbstractConstraint):
        raise TypeError(
            f"`constraint` must be a jaxgen design constraint (e.g. `jg.boed.Box(0.0, 5.0)`), "
            f"got {type(constraint).__name__}."
        )
    design0 = constraint.check(design0, "design0")
    method = GradientAscent() if method is None else method
    if not isinstance(method, AbstractDesignMethod):
        raise TypeError(
            f"`method` must be a design method such as `jg.boed.GradientAscent()`, got "
            f"{type(method).__name__}."
        )
    if evaluator is not None and not isinstance(evaluator, AbstractEIGEstimator):
        raise TypeError(
            f"`evaluator` must be a jaxgen EIG estimator, got {type(evaluator).__name__}."
        )
    return method.run(key, simulator, design0, estimator, constraint, evaluator)


__all__ = [
    "AbstractDesignMethod",
    "BayesianOptimization",
    "DesignResult",
    "DiscreteSearch",
    "GradientAscent",
    "default_constraint",
    "optimize_design",
]
