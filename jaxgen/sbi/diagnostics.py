"""Diagnostics for any posterior: TARP coverage, posterior predictive checks, a
misspecification test, and one report that runs them all (with SBC and C2ST) and plots them.

Like :mod:`jaxgen.sbi.calibration`, each check returns a frozen result with its verdict.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray
from scipy import stats

from .._checks import JaxgenWarning, check_key
from ..simulators import simulate
from .c2st import c2st
from .calibration import SBCResult, _check_pairs, _posterior_samples, sbc


def _quiet_samples(key, posterior, xs, num):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JaxgenWarning)
        return _posterior_samples(key, posterior, xs, num)


@dataclasses.dataclass(frozen=True)
class TARPResult:
    """Expected coverage by random points (TARP).

    Attributes:
        levels: credibility levels.
        coverage: expected coverage probability at each level.
        area_difference: ``integral |coverage - level|`` (0 for a calibrated posterior).
        ks_pvalue: Kolmogorov-Smirnov p-value of the per-test fractions against U(0, 1).
        calibrated: ``ks_pvalue > alpha``.
    """

    levels: np.ndarray
    coverage: np.ndarray
    area_difference: float
    ks_pvalue: float
    calibrated: bool


def tarp(
    key: PRNGKeyArray,
    posterior: Any,
    theta: Float[Array, "n d"],
    x: Float[Array, "n ..."],
    num_posterior_samples: int = 200,
    alpha: float = 0.05,
) -> TARPResult:
    """Tests of Accuracy with Random Points (Lemos et al. 2023, ICML).

    For each held-out pair, a reference point is drawn uniformly in the box spanned by the test
    parameters; the statistic is the fraction of posterior samples closer to the reference than
    the true parameter. For a correct posterior it is Uniform(0, 1), and its CDF is the expected
    coverage of balls around random points: necessary *and* sufficient over reference
    distributions, and it needs samples only (no density).
    """
    key = check_key(key)
    theta, x = _check_pairs(theta, x)
    k_samples, k_ref, k_jitter = jax.random.split(key, 3)
    samples = _quiet_samples(k_samples, posterior, x, num_posterior_samples)
    lo, hi = jnp.min(theta, 0), jnp.max(theta, 0)
    scale = jnp.where(hi > lo, hi - lo, 1.0)
    ref = lo + scale * jax.random.uniform(k_ref, theta.shape)
    d_samples = jnp.linalg.norm((samples - ref[:, None]) / scale, axis=-1)
    d_true = jnp.linalg.norm((theta - ref) / scale, axis=-1)
    # The count is discrete; U(0, 1) jitter over L + 1 makes it exactly uniform under
    # calibration, as for SBC ranks, so the continuous KS test applies.
    count = jnp.sum(d_samples < d_true[:, None], axis=1)
    jitter = jax.random.uniform(k_jitter, count.shape)
    f = np.asarray((count + jitter) / (num_posterior_samples + 1))
    levels = np.linspace(0, 1, 51)
    coverage = np.array([np.mean(f < a) for a in levels])
    area = float(np.trapezoid(np.abs(coverage - levels), levels))
    p = float(stats.kstest(f, "uniform").pvalue)
    return TARPResult(levels, coverage, area, p, p > alpha)


@dataclasses.dataclass(frozen=True)
class PredictiveCheck:
    """Posterior predictive check at one observation.

    Attributes:
        x_predictive: simulations at posterior samples, ``(num, ...)``.
        p_values: per feature of ``x``, ``2 min(P(x_pred < x_o), P(x_pred > x_o))``.
        distance_quantile: quantile of ``|x_o - median|`` among the predictive draws' own
            distances to the median (near 1: ``x_o`` looks unlike the predictive draws).
        consistent: no feature's p-value below ``alpha / num_features`` and
            ``distance_quantile < 1 - alpha``.
    """

    x_predictive: np.ndarray
    p_values: np.ndarray
    distance_quantile: float
    consistent: bool


def posterior_predictive_check(
    key: PRNGKeyArray,
    posterior: Any,
    simulator: Any,
    x_o: Array,
    num_samples: int = 500,
    alpha: float = 0.05,
) -> PredictiveCheck:
    """Simulate from posterior samples and compare with ``x_o`` (Gelman, Meng & Stern 1996)."""
    key = check_key(key)
    k_post, k_sim = jax.random.split(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JaxgenWarning)
        theta = posterior.sample(k_post, x_o, num_samples)
        _, xp = simulate(k_sim, simulator, theta=theta, invalid="drop")
    xp = np.asarray(xp).reshape(xp.shape[0], -1)
    xo = np.asarray(x_o).reshape(-1)
    below = np.mean(xp < xo, axis=0)
    above = np.mean(xp > xo, axis=0)
    p = np.minimum(1.0, 2 * np.minimum(below, above) + 1.0 / xp.shape[0])
    med = np.median(xp, axis=0)
    scale = np.median(np.abs(xp - med), axis=0) * 1.4826
    scale = np.where(scale > 0, scale, 1.0)
    d_pred = np.linalg.norm((xp - med) / scale, axis=1)
    d_obs = np.linalg.norm((xo - med) / scale)
    q = float(np.mean(d_pred < d_obs))
    ok = bool(np.all(p > alpha / p.size) and q < 1 - alpha)
    return PredictiveCheck(xp.reshape((-1, *np.shape(x_o))), p, q, ok)


@dataclasses.dataclass(frozen=True)
class MisspecificationTest:
    """Is ``x_o`` typical of the simulations? An MMD-based test.

    Attributes:
        statistic: MMD^2 between ``{x_o}`` and the reference simulations.
        null_statistics: the same statistic for held-out simulations in place of ``x_o``.
        p_value: fraction of null statistics at least as large (with the +1 correction).
        misspecified: ``p_value < alpha``.
    """

    statistic: float
    null_statistics: np.ndarray
    p_value: float
    misspecified: bool


def _mmd_to_set(points, reference, bandwidth):
    # MMD^2({p}, R) with a Gaussian kernel; k(p, p) = 1 and the R-R term is shared by all p.
    def k(a, b):
        return jnp.exp(-jnp.sum((a - b) ** 2, -1) / (2 * bandwidth**2))

    kr = jax.vmap(lambda p: jnp.mean(k(p, reference)))(points)
    krr = jnp.mean(jax.vmap(lambda r: jnp.mean(k(r, reference)))(reference))
    return 1.0 - 2.0 * kr + krr


def misspecification_test(
    key: PRNGKeyArray,
    x: Float[Array, "n ..."],
    x_o: Array,
    *,
    summary: Any = None,
    num_reference: int = 1000,
    num_null: int = 500,
    alpha: float = 0.05,
) -> MisspecificationTest:
    """How far ``x_o`` lies from the simulations: a kernel two-sample (MMD) test of the single
    observation against the simulated set, calibrated by permutation with held-out simulations
    (Gretton et al. 2012; for SBI, Schmitt et al. 2023 and Anau Montel et al.'s MMD checks).

    Args:
        key: PRNG key.
        x: simulations (e.g. the training set), shape ``(n, ...)``.
        x_o: the observation, shape ``x.shape[1:]``.
        summary: compare ``summary(x)`` instead of the raw data (e.g. a trained embedding).
        num_reference, num_null: simulations used as reference set and as null draws.
        alpha: test level.
    """
    key = check_key(key)
    x = jnp.asarray(x, dtype=float)
    x_o = jnp.asarray(x_o, dtype=float)
    if x_o.shape != x.shape[1:]:
        raise ValueError(
            f"`x_o` must have the shape of one simulation {x.shape[1:]}, got {x_o.shape}."
        )
    if summary is not None:
        s = jax.vmap(summary)(x)
        s_o = summary(x_o)
    else:
        s, s_o = x.reshape(x.shape[0], -1), x_o.reshape(-1)
    n_ref = min(num_reference, s.shape[0] // 2)
    n_null = min(num_null, s.shape[0] - n_ref)
    if n_ref < 10 or n_null < 10:
        raise ValueError(f"The test needs at least 20 simulations, got {s.shape[0]}.")
    perm = jax.random.permutation(key, s.shape[0])
    ref, null = s[perm[:n_ref]], s[perm[n_ref : n_ref + n_null]]
    med = jnp.median(ref, 0)
    scale = jnp.median(jnp.abs(ref - med), 0) * 1.4826
    scale = jnp.where(scale > 0, scale, 1.0)
    ref, null, s_o = (ref - med) / scale, (null - med) / scale, (s_o - med) / scale
    dists = jnp.linalg.norm(ref[: min(200, n_ref), None] - ref[None, : min(200, n_ref)], axis=-1)
    bandwidth = jnp.median(dists[dists > 0])
    stat = float(_mmd_to_set(s_o[None], ref, bandwidth)[0])
    null_stats = np.asarray(_mmd_to_set(null, ref, bandwidth))
    p = float((1 + np.sum(null_stats >= stat)) / (1 + null_stats.size))
    return MisspecificationTest(stat, null_stats, p, p < alpha)


@dataclasses.dataclass(frozen=True)
class DiagnosticsReport:
    """Everything :func:`report` checked. ``figure`` is a matplotlib figure (or None)."""

    sbc: SBCResult | None
    tarp: TARPResult | None
    predictive: PredictiveCheck | None
    misspecification: MisspecificationTest | None
    c2st: float | None
    figure: Any = None

    def summary(self) -> str:
        """One line per check, with its verdict."""
        lines = []
        if self.sbc is not None:
            lines.append(
                f"SBC: {'calibrated' if self.sbc.calibrated else 'NOT calibrated'} "
                f"(min KS p = {np.min(self.sbc.ks_pvalues):.3g})"
            )
        if self.tarp is not None:
            lines.append(
                f"TARP: {'calibrated' if self.tarp.calibrated else 'NOT calibrated'} "
                f"(area {self.tarp.area_difference:.3f}, KS p = {self.tarp.ks_pvalue:.3g})"
            )
        if self.predictive is not None:
            lines.append(
                f"Posterior predictive: {'consistent' if self.predictive.consistent else 'x_o is atypical'} "
                f"(min p = {np.min(self.predictive.p_values):.3g}, distance quantile "
                f"{self.predictive.distance_quantile:.2f})"
            )
        if self.misspecification is not None:
            m = self.misspecification
            lines.append(
                f"Misspecification (MMD): {'MISSPECIFIED' if m.misspecified else 'no evidence'} "
                f"(p = {m.p_value:.3g})"
            )
        if self.c2st is not None:
            lines.append(f"C2ST against reference: {self.c2st:.3f} (0.5 is ideal)")
        return "\n".join(lines)


def report(
    key: PRNGKeyArray,
    posterior: Any,
    simulator: Any,
    x_o: Array,
    *,
    num_tests: int = 100,
    num_posterior_samples: int = 100,
    x_train: Array | None = None,
    reference_samples: Array | None = None,
    plot: bool = True,
) -> DiagnosticsReport:
    """Run SBC, TARP, a posterior predictive check, the misspecification test and (with
    reference samples) C2ST, and plot them in one figure.

    Args:
        key: PRNG key.
        posterior: any posterior (``sample``, ``log_prob``).
        simulator: the simulator (held-out tests are drawn from its prior).
        x_o: the observation of interest.
        num_tests: held-out simulations for SBC and TARP.
        num_posterior_samples: posterior samples per test.
        x_train: simulations for the misspecification test (default: fresh ones).
        reference_samples: samples of the true posterior at ``x_o``, for C2ST.
        plot: draw the figure.

    Example:
        ```python
        rep = jg.sbi.report(key, posterior, sim, x_o)
        print(rep.summary()); rep.figure.savefig("diagnostics.png")
        ```
    """
    key = check_key(key)
    k_tests, k_sbc, k_tarp, k_ppc, k_mis, k_train, k_c2st = jax.random.split(key, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JaxgenWarning)
        theta_t, x_t = simulate(k_tests, simulator, num_tests, invalid="drop")
        sbc_result = sbc(k_sbc, posterior, theta_t, x_t, num_posterior_samples)
    tarp_result = tarp(k_tarp, posterior, theta_t, x_t, num_posterior_samples)
    ppc = posterior_predictive_check(k_ppc, posterior, simulator, x_o)
    if x_train is None:
        _, x_train = simulate(k_train, simulator, 1500, invalid="drop")
    mis = misspecification_test(k_mis, x_train, x_o)
    c2st_value = None
    if reference_samples is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", JaxgenWarning)
            samples = posterior.sample(k_c2st, x_o, int(np.shape(reference_samples)[0]))
        c2st_value = c2st(samples, reference_samples)
    figure = _plot(sbc_result, tarp_result, ppc, mis, x_o) if plot else None
    return DiagnosticsReport(sbc_result, tarp_result, ppc, mis, c2st_value, figure)


def _plot(sbc_result, tarp_result, ppc, mis, x_o):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.5))
    ranks = sbc_result.ranks
    for j in range(ranks.shape[1]):
        axes[0].hist(ranks[:, j], bins=10, histtype="step", label=f"theta[{j}]")
    axes[0].set_title("SBC ranks (flat if calibrated)")
    axes[0].legend(fontsize=7)
    axes[1].plot(tarp_result.levels, tarp_result.coverage, label="TARP")
    axes[1].plot([0, 1], [0, 1], "k--", lw=0.8)
    axes[1].set(title="Expected coverage (TARP)", xlabel="credibility", ylabel="coverage")
    xp = ppc.x_predictive.reshape(ppc.x_predictive.shape[0], -1)
    axes[2].plot(xp[:50].T, color="C0", alpha=0.15)
    axes[2].plot(np.median(xp, 0), color="C0", label="predictive median")
    axes[2].plot(np.asarray(x_o).reshape(-1), color="k", lw=1.5, label="x_o")
    axes[2].set_title("Posterior predictive (x_o in black)")
    axes[3].hist(mis.null_statistics, bins=30, color="0.6", label="null")
    axes[3].axvline(mis.statistic, color="C3", label="x_o")
    axes[3].set_title(f"Misspecification MMD (p = {mis.p_value:.2g})")
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    return fig

