"""Plots: pair (corner) plots of samples, expected-coverage curves, SBC rank histograms.

Every function returns the matplotlib figure and, with ``path``, also saves it. matplotlib is
imported lazily with a non-interactive backend when no display is configured.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    if not os.environ.get("DISPLAY") and matplotlib.get_backend().lower() not in ("agg", "pdf"):
        if "inline" not in matplotlib.get_backend().lower():
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def pairplot(
    samples: Any,
    *,
    truth: Any = None,
    labels: Sequence[str] | None = None,
    reference: Any = None,
    bins: int = 40,
    path: str | None = None,
    title: str | None = None,
):
    """Corner plot: 1-D histograms on the diagonal, 2-D histograms below it.

    Args:
        samples: ``(n, d)`` samples.
        truth: optional ``(d,)`` true parameters, drawn as lines.
        labels: names of the ``d`` parameters.
        reference: optional second sample (e.g. a reference posterior) drawn as contours/lines.
        bins: histogram bins.
        path: where to save the figure.
    """
    plt = _pyplot()
    samples = np.asarray(samples)
    if samples.ndim != 2:
        raise ValueError(f"`samples` must have shape (n, d), got {samples.shape}.")
    d = samples.shape[1]
    labels = list(labels) if labels is not None else [f"theta[{i}]" for i in range(d)]
    if len(labels) != d:
        raise ValueError(f"Expected {d} labels, got {len(labels)}.")
    ref = None if reference is None else np.asarray(reference)
    fig, axes = plt.subplots(d, d, figsize=(2.4 * d, 2.4 * d), squeeze=False)
    lo = np.percentile(samples, 0.5, axis=0)
    hi = np.percentile(samples, 99.5, axis=0)
    if truth is not None:
        truth = np.asarray(truth)
        lo, hi = np.minimum(lo, truth), np.maximum(hi, truth)
    pad = 0.05 * (hi - lo + 1e-12)
    lo, hi = lo - pad, hi + pad
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                ax.hist(samples[:, i], bins=bins, range=(lo[i], hi[i]), density=True,
                        color="C0", alpha=0.7)
                if ref is not None:
                    ax.hist(ref[:, i], bins=bins, range=(lo[i], hi[i]), density=True,
                            histtype="step", color="k")
                if truth is not None:
                    ax.axvline(truth[i], color="C3")
                ax.set_yticks([])
            else:
                ax.hist2d(samples[:, j], samples[:, i], bins=bins,
                          range=[[lo[j], hi[j]], [lo[i], hi[i]]], cmap="Blues")
                if ref is not None:
                    h, xe, ye = np.histogram2d(ref[:, j], ref[:, i], bins=bins // 2,
                                               range=[[lo[j], hi[j]], [lo[i], hi[i]]])
                    ax.contour(0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1]), h.T,
                               levels=3, colors="k", linewidths=0.7)
                if truth is not None:
                    ax.plot(truth[j], truth[i], "o", color="C3", ms=4)
            if i == d - 1:
                ax.set_xlabel(labels[j])
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def coverage(result: Any, *, path: str | None = None, title: str = "Expected coverage"):
    """Plot an expected-coverage curve (a :class:`jaxgen.sbi.CoverageResult`) with a 2-sigma band."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    lv, cv, se = result.levels, result.coverage, result.standard_error
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    ax.fill_between(lv, cv - 2 * se, cv + 2 * se, color="C0", alpha=0.25)
    ax.plot(lv, cv, "C0", label="estimate")
    ax.set_xlabel("credibility level")
    ax.set_ylabel("empirical coverage")
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return _save(fig, path)


def sbc_ranks(result: Any, *, labels: Sequence[str] | None = None, path: str | None = None):
    """Histograms of SBC ranks (a :class:`jaxgen.sbi.SBCResult`) with the uniform 99% band."""
    from scipy import stats

    plt = _pyplot()
    ranks = np.asarray(result.ranks)
    n, d = ranks.shape
    bins = int(np.clip(n // 20, 2, 20))
    fig, axes = plt.subplots(1, d, figsize=(2.6 * d, 2.4), squeeze=False)
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1.0 / bins)
    for j in range(d):
        ax = axes[0, j]
        ax.axhspan(lo, hi, color="0.85")
        ax.hist(ranks[:, j], bins=bins, range=(0, result.num_posterior_samples + 1), color="C0")
        ax.set_title(labels[j] if labels else f"theta[{j}]")
        ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, path)
