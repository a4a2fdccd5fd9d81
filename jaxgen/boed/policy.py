"""Amortized sequential design: a Deep-Adaptive-Design policy network, its training and evaluation."""

from __future__ import annotations

import math
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import check_key
from ..nn import MLP, Standardizer
from ..simulators import AbstractSimulator
from .base import (
    check_likelihood,
    check_positive_int,
    chunked_logsumexp,
    decaying_adam,
    inner_chunking,
    one_experiment_design,
)
from .constraints import AbstractConstraint, Unconstrained, declared_constraint
from .contrastive import _score_surrogate


class DesignPolicy(eqx.Module):
    """A permutation-invariant policy: history of (design, outcome) pairs -> next design.

    Each past experiment is encoded by an MLP, the encodings are summed (so the order of the
    history does not matter, as for exchangeable experiments), and an emitter MLP maps the sum
    to unconstrained design parameters, which the constraint maps onto allowed designs (Foster
    et al. 2021, *Deep Adaptive Design: Amortizing Sequential Bayesian Experimental Design*,
    ICML). Deploying it is one forward pass.

    Fields:
        encoder, emitter: the two MLPs.
        design_scaler, x_scaler: fixed standardizations of a design (in the constraint's
            unconstrained coordinates) and of an outcome.
        constraint: maps the emitter's output to a valid design.
        design_shape, x_shape: shapes of ONE experiment's design and outcome.
    """

    encoder: MLP
    emitter: MLP
    design_scaler: Standardizer
    x_scaler: Standardizer
    constraint: AbstractConstraint
    design_shape: tuple[int, ...] = eqx.field(static=True)
    x_shape: tuple[int, ...] = eqx.field(static=True)

    def encode(
        self, designs: Float[Array, " n *design"], outcomes: Float[Array, " n *x"]
    ) -> Float[Array, "n encoding"]:
        """Encodings of ``n`` past experiments (summed, they summarize a history)."""
        num = designs.shape[0]
        # Past designs enter in the constraint's unconstrained coordinates: a delay on a log
        # scale is then seen by its logarithm, as the emitter produced it.
        u = jax.vmap(self.constraint.to_unconstrained)(designs)
        features = jnp.concatenate(
            [
                self.design_scaler(u.reshape(num, -1)),
                self.x_scaler(outcomes.reshape(num, -1)),
            ],
            axis=1,
        )
        return jax.vmap(self.encoder)(features)

    def emit(self, summary: Float[Array, " encoding"]) -> Float[Array, "*design"]:
        """The next design from the summed encodings of the history."""
        u = self.emitter(summary)
        u0 = self.constraint.to_unconstrained(jnp.zeros(self.design_shape))
        return self.constraint.to_design(u.reshape(u0.shape))

    def __call__(
        self,
        designs: Float[Array, " T *design"],
        outcomes: Float[Array, " T *x"],
        mask: Float[Array, " T"],
    ) -> Float[Array, "*design"]:
        """The next design given the experiments ``designs[t], outcomes[t]`` with ``mask[t] = 1``."""
        encoded = self.encode(designs, outcomes) * mask[:, None]
        return self.emit(jnp.sum(encoded, axis=0))

    def rollout(
        self,
        key: PRNGKeyArray,
        simulator: AbstractSimulator,
        theta: Float[Array, " d"],
        num_experiments: int,
        *,
        detach_outcomes: bool = False,
    ) -> tuple[Float[Array, " T *design"], Float[Array, " T *x"]]:
        """Run ``num_experiments`` experiments at ``theta``, each designed from the history.

        The summed encoding of the history is carried from step to step, so an episode of
        ``T`` experiments costs ``T`` encoder calls, not ``T^2``.
        """
        dtype = jnp.result_type(float)

        def step(summary, k):
            design = self.emit(summary)
            x = simulator(k, theta, design).astype(dtype)
            if detach_outcomes:
                x = jax.lax.stop_gradient(x)
            summary = summary + self.encode(design[None], x[None])[0]
            return summary, (design, x)

        summary0 = jnp.zeros(self.emitter.layers[0].in_features, dtype)
        keys = jax.random.split(key, num_experiments)
        _, (designs, outcomes) = jax.lax.scan(step, summary0, keys)
        return designs, outcomes


def history_log_likelihood(simulator, theta, designs, outcomes) -> Float[Array, ""]:
    """``sum_t log p(x_t | theta, d_t)`` over a history of experiments."""
    return jnp.sum(
        jax.vmap(lambda d, x: simulator.log_likelihood(theta, x, d))(designs, outcomes)
    )


def make_policy(
    key: PRNGKeyArray,
    simulator: AbstractSimulator,
    design0: Any,
    *,
    constraint: AbstractConstraint | None = None,
    width_size: int = 128,
    encoding_size: int = 32,
) -> DesignPolicy:
    """An untrained :class:`DesignPolicy` for experiments shaped like ``design0``."""
    design0 = jnp.asarray(design0, float)
    if constraint is None:
        declared = declared_constraint(simulator)
        constraint = Unconstrained() if declared is None else declared
    k_pilot, k_theta, k_enc, k_emit = jax.random.split(key, 4)
    u0 = constraint.to_unconstrained(design0)
    pilot_u = u0 + jax.random.normal(k_pilot, (256,) + u0.shape)
    pilot_designs = jax.vmap(constraint.to_design)(pilot_u)
    theta = simulator.prior.sample(k_theta, (256,))
    pilot_x = jax.vmap(lambda k, t, d: simulator(k, t, d))(
        jax.random.split(k_pilot, 256), theta, pilot_designs
    )
    x_shape = tuple(pilot_x.shape[1:])
    design_scaler = Standardizer.from_data(pilot_u.reshape(256, -1))
    x_scaler = Standardizer.from_data(pilot_x.reshape(256, -1).astype(float))
    in_size = design0.size + math.prod(x_shape)
    encoder = MLP(in_size, encoding_size, width_size, 2, key=k_enc)
    emitter = MLP(encoding_size, u0.size, width_size, 2, key=k_emit)
    return DesignPolicy(
        encoder, emitter, design_scaler, x_scaler, constraint, tuple(design0.shape), x_shape
    )


# train_policy runs (and compares, for rollbacks) blocks of this many steps.
_BLOCK_STEPS = 250
# evaluate_policy runs this many episodes at once before contrasting their histories.
_EPISODE_BATCH = 1024


def trainable_parts(policy: DesignPolicy) -> tuple[Any, Any, Any]:
    """``(trainable, fixed, static)`` parts of a policy, recombined by ``eqx.combine``: the
    fixed standardizations and constraint bounds are arrays too, but training never moves them."""
    params, static = eqx.partition(policy, eqx.is_inexact_array)
    spec = jax.tree_util.tree_map(lambda _: True, params)
    spec = eqx.tree_at(
        lambda p: (p.design_scaler, p.x_scaler, p.constraint), spec, replace=(False,) * 3
    )
    trainable, fixed = eqx.partition(params, spec)
    return trainable, fixed, static


def _block_mean(values: np.ndarray) -> float:
    """Mean objective of one block; ``-inf`` when no step of it was finite."""
    return float(np.nanmean(values)) if np.isfinite(values).any() else -np.inf


class PolicyTraining(eqx.Module):
    """History of :func:`train_policy`: the sPCE objective per step, the wall time, and the
    steps after which training was rolled back to its best block (see ``rollback_drop``)."""

    objective: np.ndarray
    wall_time: float
    rollbacks: tuple[int, ...] = ()

    def block_means(self) -> list[float]:
        """Mean objective of each block of 250 steps: the values rollbacks compare."""
        obj = np.asarray(self.objective, float)
        return [_block_mean(obj[i:i + _BLOCK_STEPS]) for i in range(0, len(obj), _BLOCK_STEPS)]


def _spce_terms(policy, simulator, num_experiments, num_outer, num_inner, score):
    """Per-outer-sample sPCE terms (and NMC terms) of the policy, with chunked contrasts."""
    _, chunk = inner_chunking(num_outer, num_inner, 2**18)

    def one(k, theta0=None):
        theta0, designs, outcomes, k_in = _episode(
            policy, simulator, num_experiments, k, theta0, detach_outcomes=score
        )
        return _history_bounds(simulator, theta0, designs, outcomes, k_in, num_inner, chunk)

    return one


def _episode(policy, simulator, num_experiments, k, theta0=None, *, detach_outcomes=False):
    """One episode of ``policy`` at ``theta0`` (drawn from the prior if not given), and the
    key its contrastive samples are drawn with."""
    k_theta, k_roll, k_in = jax.random.split(k, 3)
    if theta0 is None:
        theta0 = simulator.prior.sample(k_theta)
    designs, outcomes = policy.rollout(
        k_roll, simulator, theta0, num_experiments, detach_outcomes=detach_outcomes
    )
    return theta0, designs, outcomes, k_in


def _history_bounds(simulator, theta0, designs, outcomes, k_in, num_inner, chunk):
    """The sPCE and sNMC terms of one history, contrasted with ``num_inner`` prior samples."""
    log_lik0 = history_log_likelihood(simulator, theta0, designs, outcomes)
    lse = chunked_logsumexp(
        k_in,
        lambda kk, n: simulator.prior.sample(kk, (n,)),
        jax.vmap(lambda t: history_log_likelihood(simulator, t, designs, outcomes)),
        num_inner,
        chunk,
    )
    lower = log_lik0 - (jnp.logaddexp(log_lik0, lse) - math.log(num_inner + 1))
    upper = log_lik0 - (lse - math.log(num_inner))
    return lower, upper, log_lik0


def train_policy(
    key: PRNGKeyArray,
    simulator: AbstractSimulator,
    num_experiments: int,
    *,
    design0: Any = None,
    constraint: AbstractConstraint | None = None,
    num_steps: int = 5000,
    num_outer: int = 128,
    num_inner: int = 1024,
    learning_rate: float = 1e-3,
    final_learning_rate: float | None = None,
    score_gradient: bool = False,
    rollouts_per_theta: int = 1,
    average_fraction: float = 0.1,
    rollback_drop: float | None = 0.25,
    policy: DesignPolicy | None = None,
) -> tuple[DesignPolicy, PolicyTraining]:
    """Train a Deep-Adaptive-Design policy by ascending the sPCE bound on the total EIG.

    The objective is ``E[ log p(h_T | theta_0) - log 1/(L+1) sum_l p(h_T | theta_l) ]`` where the
    history ``h_T`` is generated by running the policy for ``num_experiments`` steps at
    ``theta_0 ~ p(theta)`` (Foster et al. 2021, ICML). Gradients flow through the simulator
    (reparameterized outcomes) or, with ``score_gradient=True``, through the score function of
    the history's likelihood (discrete outcomes such as counts or choices).

    Args:
        key: PRNG key.
        simulator: a simulator with ``log_likelihood``; called with the design of ONE experiment.
        num_experiments: ``T``, experiments per episode.
        design0: a design of one experiment (shape and scale; default: the first experiment of
            the simulator's default design).
        constraint: constraint of one experiment's design (default: the simulator's
            ``design_bounds()`` as a box, else unconstrained).
        num_steps: optimizer steps; num_outer: episodes per step; num_inner: contrastive
            samples per episode. With score-function gradients an episode costs far more
            than a contrastive sample (the policy runs ``T`` times per episode), and one
            step's gradient is mostly noise: on the hyperbolic-discounting model (``T = 20``)
            the mean of 100 independent 128-episode gradients is not distinguishable from
            zero. A short run gains from more episodes together with a larger step size
            (3,000 steps: 512 episodes at 3e-4 reach 4.49 nats, 128 or 512 at 1e-4 reach
            4.21-4.22), but a long one does not: over 20,000 steps 512 episodes at 1e-4 reach
            4.81 nats and 128 reach 4.80, and 3e-4 for that long is unstable (4.39 after 8
            rollbacks on one seed, 3.21 on another; in a fall of this kind examined at
            128 episodes the designs had moved to rewards near the upper bound, where the
            constraint's sigmoid is flat).
        learning_rate: Adam step size at the start.
        final_learning_rate: the step size decays along a cosine to this value at the last
            step (default ``learning_rate / 20``; pass ``learning_rate`` for a constant one).
            Score-function gradients are noisy: a large step size finds good designs fast
            and then wanders away from them, a decaying one settles.
        score_gradient: use the score-function gradient (non-differentiable outcomes).
        rollouts_per_theta: with the score-function gradient, episodes share each drawn
            ``theta_0`` in groups of this size, and each episode's baseline is the mean
            objective of the OTHER episodes at the same ``theta_0``. The baseline may depend on
            ``theta_0`` (drawn before any outcome), so the gradient stays unbiased, and it
            removes the large part of the variance that comes from how informative the
            experiments are for that ``theta_0``; but with few episodes per group the baseline
            itself is noisy, so it pays only when outcomes vary mostly with ``theta_0``.
            The default, 1, uses one leave-one-out baseline over all episodes. (``num_outer``
            is rounded down to a multiple.)
        average_fraction: return an exponential moving average of the iterates whose time
            constant is this fraction of ``num_steps`` (bias-corrected, so short runs average
            what they have), instead of the last iterate; 0 returns the last iterate.
            Score-function gradients are noisy enough that the policy keeps wandering at a
            constant step size -- the training objective moves by tenths of a nat within a few
            hundred steps -- and the last iterate may sit in a trough; the average does not.
        rollback_drop: training runs in blocks of 250 steps; when a block's mean objective
            falls this many nats below the best block's, the parameters, their average and the
            optimizer state go back to where they were after the best block and training goes
            on with fresh random numbers (the step-size schedule rewinds with the optimizer
            state). Score-function training can fall into a state it does not leave -- e.g.
            designs pushed to where the constraint's sigmoid saturates and the gradient
            vanishes -- and this undoes it. The block mean averages ``250 * num_outer``
            episodes, so its sampling error (~0.005 nats at 128 episodes) is far below the
            default. ``None`` disables it. The steps at which it fired are in
            ``training.rollbacks``.
        policy: continue training this policy instead of a new one, e.g. one distilled from
            a :class:`GridDesigner` by :func:`imitate_policy`. Measured on hyperbolic
            discounting (``T = 20``) from such a policy (5.06 nats): 3,000 steps at 1e-4 fell
            to 4.63, 2,000 steps at 1e-5 kept it (5.04); the score-function gradient's noise
            moves a good policy away faster than it improves it.

    Returns:
        ``(policy, training)``; deploy with ``policy(designs, outcomes, mask)``.

    Example:
        ```python
        sim = jg.simulators.DeathProcess()
        policy, log = jg.boed.train_policy(key, sim, 4, score_gradient=True)
        result = jg.boed.evaluate_policy(key, sim, policy, 4)
        ```
    """
    key = check_key(key)
    check_likelihood(simulator, "train_policy (sPCE)")
    check_positive_int("num_experiments", num_experiments)
    check_positive_int("num_steps", num_steps)
    if not 0.0 <= average_fraction <= 1.0:
        raise ValueError(
            f"`average_fraction` must be in [0, 1] (0 returns the last iterate), got "
            f"{average_fraction!r}."
        )
    if rollback_drop is not None and not rollback_drop > 0:
        raise ValueError(
            f"`rollback_drop` must be a positive number of nats, or None to disable "
            f"rollbacks; got {rollback_drop!r}."
        )
    design0 = one_experiment_design(simulator, design0)
    k_init, k_train = jax.random.split(key)
    if policy is None:
        policy = make_policy(k_init, simulator, design0, constraint=constraint)
    train_params, fixed_params, static = trainable_parts(policy)
    optimizer = decaying_adam(learning_rate, final_learning_rate, num_steps)
    # EMA decay per step; with average_fraction = 0 the "average" is the last iterate.
    decay = 0.0 if average_fraction == 0 else 1.0 - 1.0 / max(average_fraction * num_steps, 1.0)

    check_positive_int("rollouts_per_theta", rollouts_per_theta)
    group = min(rollouts_per_theta, num_outer) if score_gradient else 1
    num_groups = max(num_outer // group, 1)

    def loss(p, k):
        pol = eqx.combine(p, fixed_params, static)
        one = _spce_terms(pol, simulator, num_experiments, num_outer, num_inner, score_gradient)
        if group == 1:
            lower, _, log_lik0 = jax.vmap(one)(jax.random.split(k, num_outer))
            if score_gradient:
                lower = _score_surrogate(lower, log_lik0)
            return -jnp.mean(lower)
        k_theta, k_roll = jax.random.split(k)
        thetas = simulator.prior.sample(k_theta, (num_groups,))

        def episodes(theta0, kk):
            return jax.vmap(lambda k2: one(k2, theta0))(jax.random.split(kk, group))

        lower, _, log_lik0 = jax.vmap(episodes)(thetas, jax.random.split(k_roll, num_groups))
        # Leave-one-out baseline within each group of episodes sharing theta_0.
        lower = jax.vmap(_score_surrogate)(lower, log_lik0)
        return -jnp.mean(lower)

    block = min(num_steps, _BLOCK_STEPS)

    @eqx.filter_jit
    def run_block(p, state, avg, k):
        def step(carry, kk):
            p, state, avg = carry
            value, grads = jax.value_and_grad(loss)(p, kk)
            updates, new_state = optimizer.update(grads, state, p)
            ok = jnp.isfinite(value) & jnp.all(
                jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)])
            )
            new_p = eqx.apply_updates(p, updates)
            keep = lambda a, b: jnp.where(ok, a, b)
            p = jax.tree_util.tree_map(keep, new_p, p)
            # Bias-corrected EMA: avg = (sum of decayed iterates, sum of their weights).
            total, weight = avg
            total = jax.tree_util.tree_map(lambda a, b: decay * a + b, total, p)
            avg = (total, decay * weight + 1.0)
            return (p, jax.tree_util.tree_map(keep, new_state, state), avg), -value

        (p, state, avg), values = jax.lax.scan(
            step, (p, state, avg), jax.random.split(k, block)
        )
        return p, state, avg, values

    start = time.perf_counter()
    state = optimizer.init(train_params)
    avg = (jax.tree_util.tree_map(jnp.zeros_like, train_params), jnp.zeros(()))
    history = []
    rollbacks = []
    best_mean, best = -np.inf, None
    num_blocks = -(-num_steps // block)
    for i in range(num_blocks):
        train_params, state, avg, values = run_block(
            train_params, state, avg, jax.random.fold_in(k_train, i)
        )
        history.append(np.asarray(values))
        mean = _block_mean(history[-1])
        if mean > best_mean:
            best_mean, best = mean, (train_params, state, avg)
        elif rollback_drop is not None and mean < best_mean - rollback_drop:
            # Back to the best block (after the last block, that is what is returned).
            train_params, state, avg = best
            rollbacks.append((i + 1) * block)
    total, weight = avg
    averaged = jax.tree_util.tree_map(lambda a: a / weight, total)
    policy = eqx.combine(averaged, fixed_params, static)
    objective = np.concatenate(history)[:num_steps] if history else np.zeros(0)
    return policy, PolicyTraining(objective, time.perf_counter() - start, tuple(rollbacks))


class PolicyEvaluation(eqx.Module):
    """Bounds on the total EIG of a policy, from :func:`evaluate_policy`.

    Attributes:
        lower, lower_stderr: the sPCE lower bound and its standard error.
        upper, upper_stderr: the sNMC upper bound and its standard error.
        num_inner: contrastive samples used (both bounds converge to the truth as it grows).
        seconds_per_design: wall time of one deployed design decision (compiled policy).
    """

    lower: float
    lower_stderr: float
    upper: float
    upper_stderr: float
    num_inner: int
    seconds_per_design: float


def evaluate_policy(
    key: PRNGKeyArray,
    simulator: AbstractSimulator,
    policy: Any,
    num_experiments: int,
    *,
    num_outer: int = 2048,
    num_inner: int = 100_000,
) -> PolicyEvaluation:
    """sPCE lower and sNMC upper bounds on the total EIG of ``policy`` over ``T`` experiments.

    ``policy`` is a :class:`DesignPolicy` or anything with its interface (``rollout`` and
    ``policy(designs, outcomes, mask)``), e.g. a :class:`GridDesigner`.

    ``num_outer`` episodes are run at ``theta_0 ~ p(theta)``; each history is contrasted with
    ``num_inner`` prior samples, evaluated in chunks so that 10^5 and more fit in memory
    (Foster et al. 2021 use ``L = 10^5``). Also measures the time of one design decision.

    Returns:
        A :class:`PolicyEvaluation`.
    """
    key = check_key(key)
    check_likelihood(simulator, "evaluate_policy")
    k_eval, k_time = jax.random.split(key)
    outer_batch, chunk = inner_chunking(num_outer, num_inner, 2**18)

    @jax.jit
    def run(k):
        keys = jax.random.split(k, num_outer)
        # All episodes first, in large batches (a designer that scans a big table per
        # decision, like GridDesigner, then multiplies matrices instead of vectors), then the
        # contrastive sums in the memory-bounded batches.
        episodes = jax.lax.map(
            lambda kk: _episode(policy, simulator, num_experiments, kk),
            keys,
            batch_size=min(num_outer, _EPISODE_BATCH),
        )
        return jax.lax.map(
            lambda e: _history_bounds(simulator, *e, num_inner, chunk),
            episodes,
            batch_size=max(1, min(outer_batch, num_outer)),
        )

    lower, upper, _ = run(k_eval)
    lower, upper = np.asarray(lower), np.asarray(upper)
    n = lower.shape[0]

    designs = jnp.zeros((num_experiments,) + policy.design_shape)
    outcomes = jnp.zeros((num_experiments,) + policy.x_shape)
    mask = jnp.ones(num_experiments)
    decide = eqx.filter_jit(lambda p, d, x, m: p(d, x, m))
    jax.block_until_ready(decide(policy, designs, outcomes, mask))
    repeats = 100
    start = time.perf_counter()
    for _ in range(repeats):
        out = decide(policy, designs, outcomes, mask)
    jax.block_until_ready(out)
    per_design = (time.perf_counter() - start) / repeats
    del k_time
    return PolicyEvaluation(
        lower=float(lower.mean()),
        lower_stderr=float(lower.std(ddof=1) / math.sqrt(n)),
        upper=float(upper.mean()),
        upper_stderr=float(upper.std(ddof=1) / math.sqrt(n)),
        num_inner=num_inner,
        seconds_per_design=per_design,
    )
