"""Classifier two-sample test."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import as_2d, check_key


def _init_mlp(key, sizes):
    params = []
    for k, (a, b) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        # Glorot-uniform, as scikit-learn's MLPClassifier initialises its weights.
        lim = jnp.sqrt(6.0 / (a + b))
        params.append((jax.random.uniform(k, (a, b), minval=-lim, maxval=lim), jnp.zeros(b)))
    return params


def _logits(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return (x @ w + b)[..., 0]


def c2st(
    samples_a: Float[Array, "n d"],
    samples_b: Float[Array, "m d"],
    *,
    key: PRNGKeyArray | None = None,
    num_folds: int = 5,
    hidden_factor: int = 10,
    num_epochs: int = 100,
    batch_size: int = 200,
    learning_rate: float = 1e-3,
    max_samples: int | None = 10_000,
) -> float:
    """Classifier two-sample test accuracy: 0.5 when the samples are indistinguishable, 1.0 when
    they are perfectly separated.

    Follows the protocol of the SBI benchmark (Lueckmann et al. 2021, after Lopez-Paz & Oquab
    2017): inputs z-scored with the statistics of ``samples_a``; an MLP classifier with two ReLU
    hidden layers of ``hidden_factor * d`` units trained with Adam; the accuracy averaged over
    ``num_folds`` stratified cross-validation folds. The folds are trained in parallel (vmap).

    Args:
        samples_a, samples_b: the two samples, shape ``(n, d)`` and ``(m, d)``. The larger is
            subsampled so both have the same size (balanced classes).
        key: PRNG key for folds, initialisation and minibatches (default ``jax.random.key(0)``:
            the test statistic is a deterministic function of its inputs, as in the benchmark).
        num_folds, hidden_factor, num_epochs, batch_size, learning_rate: classifier settings.
        max_samples: use at most this many samples from each side.

    Returns:
        The mean held-out accuracy over the folds.

    Example:
        ```python
        jg.sbi.c2st(posterior_samples, reference_samples)   # ~0.5 for a good posterior
        ```
    """
    a = as_2d(samples_a, "samples_a")
    b = as_2d(samples_b, "samples_b", dim=a.shape[1], what=" (same dimension as samples_a)")
    if not (bool(jnp.all(jnp.isfinite(a))) and bool(jnp.all(jnp.isfinite(b)))):
        raise ValueError("c2st: the samples contain NaN or inf.")
    key = check_key(key) if key is not None else jax.random.key(0)
    k_sub, k_perm, k_init, k_train = jax.random.split(key, 4)
    n = min(a.shape[0], b.shape[0], max_samples or 10**12)
    ka, kb = jax.random.split(k_sub)
    if a.shape[0] > n:
        a = a[jax.random.choice(ka, a.shape[0], (n,), replace=False)]
    if b.shape[0] > n:
        b = b[jax.random.choice(kb, b.shape[0], (n,), replace=False)]
    mean, std = jnp.mean(a, 0), jnp.std(a, 0)
    std = jnp.where(std > 0, std, 1.0)
    a, b = (a - mean) / std, (b - mean) / std
    d = a.shape[1]

    # Stratified folds: each fold holds n // num_folds rows of each class.
    fold = n // num_folds
    if fold < 2:
        raise ValueError(f"c2st needs at least {2 * num_folds} samples per side, got {n}.")
    pa = jax.random.permutation(k_perm, n)[: fold * num_folds].reshape(num_folds, fold)
    pb = jax.random.permutation(jax.random.fold_in(k_perm, 1), n)[: fold * num_folds].reshape(
        num_folds, fold
    )
    xa, xb = a[pa], b[pb]  # (folds, fold, d)
    x_all = jnp.concatenate([xa, xb], axis=1)  # (folds, 2*fold, d)
    y_all = jnp.concatenate([jnp.zeros((num_folds, fold)), jnp.ones((num_folds, fold))], 1)
    sizes = (d, hidden_factor * d, hidden_factor * d, 1)
    accuracy = _c2st_folds(
        k_init, k_train, x_all, y_all, num_folds, sizes, learning_rate, num_epochs, batch_size
    )
    return float(np.mean(np.asarray(accuracy)))


@functools.partial(jax.jit, static_argnums=(4, 5, 6, 7, 8))
def _c2st_folds(
    k_init, k_train, x_all, y_all, num_folds, sizes, learning_rate, num_epochs, batch_size
):
    opt = optax.adam(learning_rate)
    m = x_all.shape[1]
    n_train = (num_folds - 1) * m
    batch = min(batch_size, n_train)
    steps = n_train // batch

    def one_fold(k_i, k_t, test_index):
        train_folds = jnp.roll(jnp.arange(num_folds), -test_index)[1:]
        x_tr = x_all[train_folds].reshape(n_train, -1)
        y_tr = y_all[train_folds].reshape(n_train)
        params = _init_mlp(k_i, sizes)
        state = opt.init(params)

        def loss(p, xb, yb):
            return jnp.mean(optax.sigmoid_binary_cross_entropy(_logits(p, xb), yb))

        def epoch(carry, k):
            def step(carry, idx):
                p, s = carry
                g = jax.grad(loss)(p, x_tr[idx], y_tr[idx])
                u, s = opt.update(g, s, p)
                return (optax.apply_updates(p, u), s), None

            idx = jax.random.permutation(k, n_train)[: steps * batch].reshape(steps, batch)
            carry, _ = jax.lax.scan(step, carry, idx)
            return carry, None

        (params, _), _ = jax.lax.scan(epoch, (params, state), jax.random.split(k_t, num_epochs))
        pred = _logits(params, x_all[test_index]) > 0
        return jnp.mean(pred == (y_all[test_index] > 0.5))

    return jax.vmap(one_fold)(
        jax.random.split(k_init, num_folds),
        jax.random.split(k_train, num_folds),
        jnp.arange(num_folds),
    )
