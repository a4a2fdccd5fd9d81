"""The symbolic-regression search: islands of expressions evolved under a time budget.

The algorithm follows PySR / SymbolicRegression.jl (Cranmer 2023, arXiv:2305.01582), with the
population-level work moved into JAX:

* several islands (populations) evolve side by side and exchange expressions (migration, from
  the hall of fame) every few iterations;
* parents are chosen by tournament on a fitness that adds a parsimony term and PySR's adaptive
  parsimony (a penalty growing with how crowded an expression's complexity currently is) to the
  log-loss;
* each offspring replaces the oldest member of its island (age-regularized evolution, Real et
  al. 2019), so no expression dominates forever;
* offspring come from mutations and crossover (see :mod:`jaxgen.symbolic.genetic`), have their
  constant subtrees folded, and all offspring of all islands are evaluated, and their constants
  fitted by Levenberg-Marquardt, in one jitted call;
* a hall of fame keeps the best expression at every complexity; the result is its Pareto front.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .constants import levenberg_marquardt, population_loss
from .expression import Expression
from .genetic import MUTATIONS, Grammar, crossover, fold_constants, mutate
from .operators import CONST, VAR, OperatorSet
from .selection import ParetoEntry, pareto_front, select
from .tree import Tree, complexity, encode, num_constants


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Knobs of the evolutionary search (defaults after PySR's, scaled to a CPU budget).

    Attributes:
        max_size: largest number of nodes in an expression.
        num_constants: constant slots per expression.
        num_islands: number of populations evolving side by side.
        island_size: expressions per island.
        offspring_per_island: new expressions per island per iteration (all islands' offspring
            are evaluated in one call).
        tournament_size: expressions drawn per tournament.
        crossover_prob: probability that an offspring comes from crossover.
        parsimony: fitness penalty per unit complexity (on the log-loss scale).
        adaptive_parsimony: scale of PySR's frequency-based penalty (0 turns it off).
        migration_interval: iterations between migrations from the hall of fame.
        migration_count: expressions each island receives at a migration.
        lm_steps: Levenberg-Marquardt steps per iteration for new offspring.
        lm_fraction: share of each iteration's offspring (those with constants, drawn at
            random) whose constants are fitted; the rest keep their parents' constants.
        max_rows_const: rows used to fit constants (a fixed random subset when there are more);
            losses always use every row.
        init_size: largest size of the random initial expressions.
        annealing_alpha: scale of the simulated-annealing acceptance of children worse than
            their parents (larger accepts more).
    """

    max_size: int = 30
    num_constants: int = 4
    num_islands: int = 6
    island_size: int = 60
    offspring_per_island: int = 48
    tournament_size: int = 12
    crossover_prob: float = 0.1
    parsimony: float = 0.01
    adaptive_parsimony: float = 20.0
    migration_interval: int = 5
    migration_count: int = 4
    lm_steps: int = 5
    lm_fraction: float = 0.35
    annealing_alpha: float = 1.0
    max_rows_const: int = 128
    init_size: int = 6


@dataclasses.dataclass(frozen=True)
class SymbolicFit:
    """What :func:`fit` found.

    Attributes:
        best: the expression chosen by ``selection`` from the Pareto front.
        pareto: the best expression at every complexity that beats all simpler ones.
        selection: the rule that chose ``best``.
        num_evals: expressions evaluated on the data.
        num_iterations: search iterations.
        wall_time: seconds spent (including compilation).
        stopped: why the search ended: ``"exact"``, ``"time_budget"``, ``"max_evals"``,
            ``"max_iterations"``, ``"interrupted"``, or ``"pysr"`` for the PySR backend.
        history: lowest loss after each iteration.
        variable_names: names of the input columns.
    """

    best: Expression
    pareto: tuple[ParetoEntry, ...]
    selection: str
    num_evals: int
    num_iterations: int
    wall_time: float
    stopped: str
    history: np.ndarray
    variable_names: tuple[str, ...]

    def select(self, rule: str = "best") -> Expression:
        """The expression another selection rule picks (``best``, ``accuracy``, ``score``)."""
        return select(self.pareto, rule).expression

    def predict(self, X) -> jax.Array:
        """Values of ``best`` on the rows of ``X``."""
        return self.best.to_jax()(jnp.asarray(X, jnp.float32))

    def __str__(self) -> str:
        rows = [f"{'complexity':>10}  {'loss':>12}  {'score':>8}  expression"]
        for e in self.pareto:
            mark = " <" if e.expression is self.best else ""
            rows.append(
                f"{e.complexity:>10}  {e.loss:>12.4g}  {e.score:>8.3g}  {e.expression}{mark}"
            )
        return "\n".join(rows)


class _Island:
    """Members of one population: trees, losses, complexities, birth iterations."""

    def __init__(self, trees, losses, comps, born):
        self.trees = list(trees)
        self.losses = np.asarray(losses, np.float64)
        self.comps = np.asarray(comps, np.int64)
        self.born = np.asarray(born, np.int64)


def run_search(
    rng: np.random.Generator,
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    operators: OperatorSet,
    variable_names: tuple[str, ...],
    config: SearchConfig,
    *,
    time_budget: float | None,
    max_evals: int | None,
    max_iterations: int | None,
    exact_tol: float,
    penalty_fn=None,
    progress: bool = False,
    seeds: Sequence[Tree] = (),
) -> tuple[list[tuple[Tree, float, int]], dict]:
    """Evolve expressions; return the hall of fame as ``(tree, loss, complexity)`` and stats.

    ``penalty_fn(tree) -> float`` adds to an expression's log-loss fitness (used for units).
    """
    start = time.perf_counter()
    g = Grammar(operators, X.shape[1])
    arity = operators.arity_table()
    ctable = operators.complexity_table()
    cfg = config
    capacity = 1 << int(np.ceil(np.log2(cfg.max_size + 1)))
    B = cfg.num_islands * cfg.offspring_per_island + 1  # the last slot is always padding
    lm_batch = max(1, round(cfg.lm_fraction * B))
    # scale of the losses; a (nearly) constant target is measured against its mean square
    var_y = float(np.average((y - np.average(y, weights=w)) ** 2, weights=w))
    var_y = max(var_y, 1e-6 * float(np.average(y**2, weights=w)), 1e-30)
    mut_w = np.array([wt for _, wt in MUTATIONS], np.float64)
    mut_w /= mut_w.sum()

    # Pad rows (weight 0) and columns (never referenced) to round sizes so that problems of
    # similar size share compiled evaluators.
    Xp, yp, wp = _pad_data(X, y, w)
    Xj, yj, wj = (jnp.asarray(a, jnp.float32) for a in (Xp, yp, wp))
    if len(y) > cfg.max_rows_const:
        rows = np.sort(rng.choice(len(y), cfg.max_rows_const, replace=False))
        Xc, yc, wc = Xj[rows], yj[rows], wj[rows]
    else:
        Xc, yc, wc = (jnp.asarray(a, jnp.float32) for a in _pad_data(X, y, w, cfg.max_rows_const))

    def valid(t: Tree) -> bool:
        return len(t) <= cfg.max_size and num_constants(t) <= cfg.num_constants

    def evaluate(trees: list[Tree]) -> tuple[list[Tree], np.ndarray]:
        """Fit constants and compute losses of a batch (padded to ``B`` to keep shapes)."""
        n = len(trees)
        padded = list(trees) + [((CONST, 0.0),)] * (B - n)
        order: list[list[int]] = []
        code, arg, reg, child, consts = encode(
            padded, capacity, cfg.num_constants, arity, slot_positions=order
        )
        arrays = [jnp.asarray(a) for a in (code, arg, reg, child)]
        consts = jnp.asarray(consts)
        with_c = np.array([bool(o) for o in order[:n]])
        if with_c.any() and cfg.lm_steps:
            # Levenberg-Marquardt on a fixed-size random subset of the offspring that have
            # constants (PySR likewise optimizes a random fraction); the others keep the
            # constants inherited from their parents.
            cand = np.nonzero(with_c)[0]
            pick = rng.permutation(cand)[:lm_batch]
            idx = np.concatenate([pick, np.full(lm_batch - len(pick), B - 1)])
            sub = [a[idx] for a in arrays]
            c_sub, _ = levenberg_marquardt(*sub, consts[idx], Xc, yc, wc, operators, cfg.lm_steps)
            c = consts.at[pick].set(c_sub[: len(pick)])
        else:
            c = consts
        kmax = int(with_c.any())
        loss = np.asarray(population_loss(*arrays, c, Xj, yj, wj, operators), np.float64)
        c = np.asarray(c)
        out = []
        for i, t in enumerate(trees):
            if kmax and order[i]:
                nodes = list(t)
                for slot, pos in enumerate(order[i]):
                    nodes[pos] = (CONST, float(c[i, slot]))
                t = tuple(nodes)
            out.append(t)
        return out, loss[:n]

    def fitness(losses, comps, freq, trees):
        f = np.log(np.maximum(losses / var_y, 1e-30)) + cfg.parsimony * comps
        f = f + cfg.adaptive_parsimony * freq[np.minimum(comps, len(freq) - 1)]
        if penalty_fn is not None:
            f = f + np.array([penalty_fn(t) for t in trees])
        return np.where(np.isfinite(f), f, np.inf)

    hall: dict[int, tuple[Tree, float]] = {}
    history = []
    num_evals = 0

    def record(trees, losses, comps):
        for t, loss_, c in zip(trees, losses, comps):
            if not np.isfinite(loss_):
                continue
            if penalty_fn is not None and penalty_fn(t) > 0:
                continue
            if c not in hall or loss_ < hall[c][1]:
                hall[c] = (t, float(loss_))

    # initial islands: every expression of up to three nodes (so the building blocks are
    # there from the start), then random ones
    init: list[Tree] = list(seeds) + [t for t in _small_trees(g) if valid(t)]
    init = [init[i] for i in rng.permutation(len(init))][: cfg.num_islands * cfg.island_size // 2]
    while len(init) < cfg.num_islands * cfg.island_size:
        t = fold_constants(g.random_tree(rng, int(rng.integers(1, cfg.init_size + 1))), g)
        if valid(t):
            init.append(t)
    init = init[: cfg.num_islands * cfg.island_size]
    trees_all, loss_all = [], []
    for s in range(0, len(init), B - 1):
        chunk = init[s : s + B - 1]
        tr, lo = evaluate(chunk)
        trees_all += tr
        loss_all.append(lo)
    loss_all = np.concatenate(loss_all)
    num_evals += len(init)
    comps_all = np.array([complexity(t, ctable) for t in trees_all])
    record(trees_all, loss_all, comps_all)
    islands = []
    for i in range(cfg.num_islands):
        sl = slice(i * cfg.island_size, (i + 1) * cfg.island_size)
        born = rng.permutation(cfg.island_size)  # staggered ages
        islands.append(_Island(trees_all[sl], loss_all[sl], comps_all[sl], born - cfg.island_size))

    freq = np.ones(cfg.max_size * 4 + 2)
    freq /= freq.sum()
    stopped = "max_iterations"
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=None if time_budget is None else float(time_budget), unit="s")
    it = 0

    def _progress_fraction() -> float:
        """Remaining share of the budget (1 at the start, 0 at the end)."""
        fracs = []
        if time_budget is not None:
            fracs.append(1 - (time.perf_counter() - start) / time_budget)
        if max_evals is not None:
            fracs.append(1 - num_evals / max_evals)
        if max_iterations is not None:
            fracs.append(1 - it / max_iterations)
        return float(np.clip(min(fracs), 0.0, 1.0)) if fracs else 1.0

    try:
        while True:
            if hall and min(v[1] for v in hall.values()) <= exact_tol * var_y:
                stopped = "exact"
                break
            elapsed = time.perf_counter() - start
            if time_budget is not None and elapsed >= time_budget:
                stopped = "time_budget"
                break
            if max_evals is not None and num_evals >= max_evals:
                stopped = "max_evals"
                break
            if max_iterations is not None and it >= max_iterations:
                stopped = "max_iterations"
                break

            offspring: list[Tree] = []
            owner: list[int] = []
            parents: list[int] = []
            parent_fit: list[float] = []
            for i, isl in enumerate(islands):
                fit_i = fitness(isl.losses, isl.comps, freq, isl.trees)
                for _ in range(cfg.offspring_per_island):
                    child = None
                    a = 0
                    for _attempt in range(4):
                        a = _tournament(rng, fit_i, cfg.tournament_size)
                        if rng.random() < cfg.crossover_prob:
                            b = _tournament(rng, fit_i, cfg.tournament_size)
                            cand = crossover(rng, isl.trees[a], isl.trees[b], g)
                        else:
                            cand = mutate(rng, isl.trees[a], g, mut_w)
                        cand = fold_constants(cand, g)
                        if valid(cand):
                            child = cand
                            break
                    if child is None:
                        child = g.random_tree(rng, int(rng.integers(1, cfg.init_size + 1)))
                    offspring.append(child)
                    owner.append(i)
                    parents.append(a)
                    parent_fit.append(fit_i[a])
            new_trees, new_loss = evaluate(offspring)
            num_evals += len(offspring)
            new_comps = np.array([complexity(t, ctable) for t in new_trees])
            record(new_trees, new_loss, new_comps)
            # adaptive parsimony: running frequency of complexities among offspring
            counts = np.bincount(np.minimum(new_comps, len(freq) - 1), minlength=len(freq))
            freq = 0.9 * freq + 0.1 * counts / counts.sum()
            owner_arr = np.array(owner)
            # Simulated-annealing acceptance (as in PySR): a child worse than its parent by
            # delta (log-loss units) survives with probability exp(-delta / (alpha * T)); the
            # temperature T falls from 1 to 0 over the budget. A rejected child is replaced by
            # a copy of its parent, so the island does not fill up with failed mutants.
            child_fit = fitness(new_loss, new_comps, freq, new_trees)
            temp = max(_progress_fraction(), 1e-3)
            delta = child_fit - np.asarray(parent_fit)
            with np.errstate(over="ignore", invalid="ignore"):
                keep = (delta <= 0) | (
                    rng.random(len(delta)) < np.exp(-delta / (cfg.annealing_alpha * temp))
                )
            for i, isl in enumerate(islands):
                for j in np.nonzero(owner_arr == i)[0]:
                    old = int(np.argmin(isl.born))
                    if keep[j]:
                        t_new, l_new, c_new = new_trees[j], new_loss[j], new_comps[j]
                    else:
                        p = parents[j]
                        t_new, l_new, c_new = isl.trees[p], isl.losses[p], isl.comps[p]
                    isl.trees[old] = t_new
                    isl.losses[old] = l_new
                    isl.comps[old] = c_new
                    isl.born[old] = it * cfg.offspring_per_island + j
            it += 1
            if it % cfg.migration_interval == 0 and hall:
                keys = list(hall)
                for isl in islands:
                    for _ in range(cfg.migration_count):
                        t, lo = hall[keys[rng.integers(len(keys))]]
                        slot = int(rng.integers(len(isl.trees)))
                        isl.trees[slot] = t
                        isl.losses[slot] = lo
                        isl.comps[slot] = complexity(t, ctable)
            best_loss = min(v[1] for v in hall.values()) if hall else np.inf
            history.append(best_loss)
            if bar is not None:
                bar.n = round(time.perf_counter() - start, 1)
                bar.set_postfix(loss=f"{best_loss:.3g}", evals=num_evals, refresh=False)
                bar.refresh()
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        if bar is not None:
            bar.close()

    hof = [(t, lo, c) for c, (t, lo) in hall.items()]
    stats = {
        "num_evals": num_evals,
        "num_iterations": it,
        "wall_time": time.perf_counter() - start,
        "stopped": stopped,
        "history": np.asarray(history),
    }
    return hof, stats


def _small_trees(g: Grammar) -> list[Tree]:
    """All trees of one to three nodes over the variables (constants left to the search)."""
    leaves = [(VAR, i) for i in range(g.num_vars)]
    out: list[Tree] = [(leaf,) for leaf in leaves]
    for u in g.unary:
        out += [((int(u), 0.0), leaf) for leaf in leaves]
        out += [((int(u), 0.0), (int(u2), 0.0), leaf) for u2 in g.unary for leaf in leaves]
    for b in g.binary:
        out += [((int(b), 0.0), x, z) for x in leaves for z in leaves]
    return out


def _pad_data(X, y, w, rows_to: int | None = None):
    n, d = X.shape
    n_to = rows_to if rows_to is not None else -(-n // 128) * 128
    d_to = -(-d // 4) * 4
    Xp = np.zeros((n_to, d_to))
    Xp[:n, :d] = X
    Xp[n:, :d] = X[0]  # finite values for the zero-weight rows
    yp = np.full(n_to, y[0])
    yp[:n] = y
    wp = np.zeros(n_to)
    wp[:n] = w
    return Xp, yp, wp


def _tournament(rng: np.random.Generator, fitness: np.ndarray, size: int) -> int:
    idx = rng.integers(len(fitness), size=size)
    return int(idx[np.argmin(fitness[idx])])


def hall_to_front(
    hof, operators, names, capacity, num_slots, baseline_loss=None
) -> tuple[ParetoEntry, ...]:
    """Encode hall-of-fame trees as expressions and keep their Pareto front."""
    cands = []
    for t, loss, c in hof:
        e = Expression.from_tree(t, operators, names, capacity, num_slots)
        cands.append((e, loss, c))
    return pareto_front(cands, baseline_loss)
