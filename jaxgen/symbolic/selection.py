"""The Pareto front of a search and the rules that pick one expression from it."""

from __future__ import annotations

import dataclasses

import numpy as np

from .expression import Expression

SELECTION_RULES = ("best", "accuracy", "score")


@dataclasses.dataclass(frozen=True)
class ParetoEntry:
    """One point of the accuracy-complexity front.

    Attributes:
        expression: the expression.
        loss: weighted mean squared error on the data.
        complexity: sum of node complexities.
        score: drop in log-loss per unit complexity from the previous (simpler) point of the
            front, as in PySR (0 for the simplest point).
    """

    expression: Expression
    loss: float
    complexity: int
    score: float


def pareto_front(
    candidates: list[tuple[Expression, float, int]], baseline_loss: float | None = None
) -> tuple[ParetoEntry, ...]:
    """Keep, by increasing complexity, the expressions that are more accurate than every
    simpler one; attach PySR's score ``-d log(loss) / d complexity``.

    ``baseline_loss`` (e.g. the variance of ``y``: the loss of predicting the mean, at
    complexity 0) scores the simplest entry too, so that a one-node law can be chosen."""
    best: dict[int, tuple[Expression, float]] = {}
    for e, loss, c in candidates:
        if np.isfinite(loss) and (c not in best or loss < best[c][1]):
            best[c] = (e, float(loss))
    front: list[ParetoEntry] = []
    prev_loss, prev_c = baseline_loss, 0
    for c in sorted(best):
        e, loss = best[c]
        if prev_loss is not None and loss >= prev_loss:
            continue
        if prev_loss is None:
            score = 0.0
        else:
            # floor the losses so exact fits (loss 0) give a large finite score
            lo = max(loss, 1e-30)
            score = (np.log(max(prev_loss, 1e-30)) - np.log(lo)) / (c - prev_c)
        front.append(ParetoEntry(e, loss, c, float(score)))
        prev_loss, prev_c = loss, c
    return tuple(front)


def select(front: tuple[ParetoEntry, ...], rule: str = "best") -> ParetoEntry:
    """Pick one entry of the front.

    Rules (PySR's ``model_selection``):

    * ``"best"``: the highest score among the entries whose loss is within 1.5 times the lowest
      loss: the largest drop in log-loss per unit complexity among near-best fits.
    * ``"accuracy"``: the lowest loss.
    * ``"score"``: the highest score overall.
    """
    if not front:
        raise ValueError("The Pareto front is empty: no expression had a finite loss.")
    if rule == "accuracy":
        return min(front, key=lambda e: e.loss)
    if rule == "score":
        return max(front, key=lambda e: e.score)
    if rule == "best":
        lowest = min(e.loss for e in front)
        near = [e for e in front if e.loss <= 1.5 * lowest + 1e-30]
        return max(near, key=lambda e: (e.score, -e.complexity))
    raise ValueError(f"Unknown selection rule {rule!r}; choose one of {SELECTION_RULES}.")
