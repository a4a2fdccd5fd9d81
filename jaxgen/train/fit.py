"""The one training loop used by every model in jaxgen."""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray, PyTree

from .._checks import JaxgenWarning, check_key, check_same_length
from .._jit import jit_for_cpu


@dataclasses.dataclass(frozen=True)
class History:
    """What happened during :func:`fit`.

    Attributes:
        train_loss: mean training loss of each epoch (finite steps only).
        val_loss: validation loss after each epoch (``nan`` where there is no validation set).
        best_epoch: the epoch whose model was returned (0-based).
        num_epochs: epochs run.
        stopped_early: whether early stopping ended training before ``max_epochs``.
        num_nonfinite_steps: minibatch steps skipped because the loss or a gradient was NaN/inf.
        wall_time: seconds spent in training (including compilation).
    """

    train_loss: np.ndarray
    val_loss: np.ndarray
    best_epoch: int
    num_epochs: int
    stopped_early: bool
    num_nonfinite_steps: int
    wall_time: float


def _finite_tree(tree: PyTree) -> Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _take(data: PyTree, idx: Array) -> PyTree:
    return jax.tree_util.tree_map(lambda a: a[idx], data)


@jit_for_cpu(quick_compile=True)
def _split(key: PRNGKeyArray, data: PyTree, n_val: int) -> tuple[PyTree, PyTree]:
    # One compiled program instead of a permutation and a gather per array, eagerly.
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    perm = jax.random.permutation(key, n)
    return _take(data, perm[n_val:]), _take(data, perm[:n_val])


def fit(
    key: PRNGKeyArray,
    model: PyTree,
    loss_fn: Callable[[PyTree, PyTree, PRNGKeyArray], Array],
    data: PyTree,
    *,
    optimizer: optax.GradientTransformation | None = None,
    learning_rate: float = 1e-3,
    batch_size: int = 128,
    max_epochs: int = 200,
    validation_fraction: float = 0.1,
    validation_data: PyTree | None = None,
    patience: int = 20,
    min_delta: float = 0.0,
    clip_norm: float | None = 5.0,
    trainable: Any = eqx.is_inexact_array,
    progress: bool = False,
) -> tuple[PyTree, History]:
    """Train ``model`` by minibatch gradient descent on ``loss_fn``.

    Each step is a pure function under ``eqx.filter_jit``; an epoch is one ``lax.scan`` over
    shuffled minibatches, and the Python loop runs once per epoch (early stopping, progress bar).
    The model with the best validation loss is returned. Steps whose loss or gradient is not
    finite are skipped (the parameters stay as they were) and counted in the history.

    Args:
        key: PRNG key; the same key gives the same model, bit for bit.
        model: any pytree of arrays, usually an ``eqx.Module``.
        loss_fn: ``loss_fn(model, batch, key) -> scalar``: the mean loss over a minibatch, where
            ``batch`` has the structure of ``data`` with ``batch_size`` rows.
        data: a pytree of arrays (e.g. ``(theta, x)``) sharing their leading dimension.
        optimizer: an optax transformation; default Adam with ``learning_rate`` and gradient
            clipping at ``clip_norm``.
        batch_size: minibatch size (reduced to the training-set size if larger).
        max_epochs: maximum number of passes over the training set.
        validation_fraction: fraction of ``data`` held out for early stopping (ignored when
            ``validation_data`` is given; 0 uses the training loss instead).
        validation_data: an explicit validation set with the structure of ``data``.
        patience: epochs without improvement of the validation loss before stopping.
        min_delta: the improvement that counts.
        clip_norm: global gradient-norm clip for the default optimizer (None: no clipping).
        trainable: an ``eqx.partition`` filter selecting the trained leaves.
        progress: show a progress bar over epochs.

    Returns:
        ``(model, history)``: the trained model and a :class:`History`.

    Example:
        ```python
        def loss_fn(model, batch, key):
            x, y = batch
            return jnp.mean((jax.vmap(model)(x) - y) ** 2)

        model, history = jg.train.fit(key, model, loss_fn, (x, y), max_epochs=100)
        ```
    """
    key = check_key(key)
    if batch_size < 1 or max_epochs < 1:
        raise ValueError(f"batch_size and max_epochs must be >= 1, got {batch_size}, {max_epochs}.")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}.")
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves:
        raise ValueError("`data` holds no arrays; pass e.g. a tuple `(theta, x)` of arrays.")
    n = check_same_length(**{f"data[{i}]": leaf for i, leaf in enumerate(leaves)})
    data = jax.tree_util.tree_map(jnp.asarray, data)

    key, k_split, k_val = jax.random.split(key, 3)
    if validation_data is not None:
        check_same_length(**{f"validation_data[{i}]": v for i, v in enumerate(
            jax.tree_util.tree_leaves(validation_data))})
        train_data = data
        val_data = jax.tree_util.tree_map(jnp.asarray, validation_data)
    elif validation_fraction > 0 and n >= 2:
        n_val = min(max(1, int(round(n * validation_fraction))), n - 1)
        train_data, val_data = _split(k_split, data, n_val)
    else:
        train_data, val_data = data, None
    n_train = jax.tree_util.tree_leaves(train_data)[0].shape[0]
    batch_size = min(batch_size, n_train)
    num_batches = n_train // batch_size

    if optimizer is None:
        optimizer = default_optimizer(learning_rate, clip_norm)
    params, static = eqx.partition(model, trainable)
    opt_state = eqx.filter_jit(optimizer.init)(params)
    epoch_config = (loss_fn, optimizer, num_batches, batch_size)

    eval_batch = 0
    if val_data is not None:
        n_val = jax.tree_util.tree_leaves(val_data)[0].shape[0]
        eval_batch = min(max(batch_size, 1024), n_val)
        num_val_batches = -(-n_val // eval_batch)
        # The last chunk wraps around to the first rows so every chunk has one shape; the few
        # repeated rows change the validation loss by a negligible, constant amount.
        val_idx = (jnp.arange(num_val_batches * eval_batch) % n_val).reshape(
            num_val_batches, eval_batch
        )

        val_config = (loss_fn, num_val_batches)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_epochs, desc="training", unit="epoch", leave=False)

    start = time.perf_counter()
    train_hist, val_hist = [], []
    best_score, best_params, best_epoch = np.inf, params, 0
    num_nonfinite, stopped_early, epoch = 0, False, -1
    try:
        for epoch in range(max_epochs):
            key, k_epoch = jax.random.split(key)
            params, opt_state, train_loss, bad = _run_epoch(
                params, opt_state, static, train_data, k_epoch, epoch_config
            )
            val_loss = (
                _validation_loss(params, static, val_data, val_idx, k_val, val_config)
                if val_data is not None
                else jnp.nan
            )
            train_loss, val_loss, bad = float(train_loss), float(val_loss), int(bad)
            num_nonfinite += bad
            train_hist.append(train_loss)
            val_hist.append(val_loss)
            score = val_loss if val_data is not None else train_loss
            if np.isfinite(score) and score < best_score - min_delta:
                best_score, best_params, best_epoch = score, params, epoch
            if bar is not None:
                bar.update(1)
                bar.set_postfix(train=f"{train_loss:.4g}", val=f"{val_loss:.4g}")
            if epoch - best_epoch >= patience:
                stopped_early = True
                break
    finally:
        if bar is not None:
            bar.close()

    if num_nonfinite:
        warnings.warn(
            f"{num_nonfinite} training steps had a NaN/inf loss or gradient and were skipped. "
            f"Check the data for NaN/inf rows, or lower the learning rate.",
            JaxgenWarning,
            stacklevel=2,
        )
    history = History(
        train_loss=np.asarray(train_hist),
        val_loss=np.asarray(val_hist),
        best_epoch=best_epoch,
        num_epochs=epoch + 1,
        stopped_early=stopped_early,
        num_nonfinite_steps=num_nonfinite,
        wall_time=time.perf_counter() - start,
    )
    return eqx.combine(best_params, static), history


@functools.lru_cache(maxsize=64)
def default_optimizer(learning_rate: float, clip_norm: float | None) -> optax.GradientTransformation:
    """Adam with global-norm gradient clipping.

    Cached, so that repeated fits with the same settings share one optimizer object and hence
    one compiled training epoch.
    """
    adam = optax.adam(learning_rate)
    if clip_norm is None:
        return adam
    return optax.chain(optax.clip_by_global_norm(clip_norm), adam)


# The epoch and validation functions live at module level and take everything that shapes the
# computation as static arguments, so that fitting the same model structure on data of the same
# shape again (a new key, a second round, a test) reuses the compiled code.


@jit_for_cpu
def _run_epoch(params, opt_state, static, train_data, key, config):
    loss_fn, optimizer, num_batches, batch_size = config
    n_train = jax.tree_util.tree_leaves(train_data)[0].shape[0]

    def batch_loss(p, batch, k):
        return loss_fn(eqx.combine(p, static), batch, k)

    k_perm, k_steps = jax.random.split(key)
    idx = jax.random.permutation(k_perm, n_train)[: num_batches * batch_size]
    idx = idx.reshape(num_batches, batch_size)

    def step(carry, inputs):
        params, opt_state = carry
        batch_idx, k = inputs
        loss, grads = jax.value_and_grad(batch_loss)(params, _take(train_data, batch_idx), k)
        updates, new_state = optimizer.update(grads, opt_state, params)
        new_params = eqx.apply_updates(params, updates)
        ok = jnp.isfinite(loss) & _finite_tree(grads)

        def keep(new, old):
            return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)

        carry = (keep(new_params, params), keep(new_state, opt_state))
        return carry, (jnp.where(ok, loss, 0.0), ok)

    keys = jax.random.split(k_steps, num_batches)
    (params, opt_state), (losses, oks) = jax.lax.scan(step, (params, opt_state), (idx, keys))
    num_ok = jnp.sum(oks)
    mean_loss = jnp.where(num_ok > 0, jnp.sum(losses) / jnp.maximum(num_ok, 1), jnp.nan)
    return params, opt_state, mean_loss, num_batches - num_ok


@jit_for_cpu(quick_compile=True)
def _validation_loss(params, static, val_data, val_idx, key, config):
    loss_fn, num_val_batches = config

    def body(total, inputs):
        i, k = inputs
        return total + loss_fn(eqx.combine(params, static), _take(val_data, i), k), None

    keys = jax.random.split(key, num_val_batches)
    total, _ = jax.lax.scan(body, jnp.zeros(()), (val_idx, keys))
    return total / num_val_batches
