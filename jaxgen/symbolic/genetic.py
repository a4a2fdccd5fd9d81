"""Genetic operators on host-side prefix trees: random trees, mutations, crossover, folding.

The operators follow the mutation menu of PySR / SymbolicRegression.jl (Cranmer 2023,
arXiv:2305.01582): change a constant or an operator, swap operands, add, insert or delete a
node, replace a subtree, start afresh, crossover, and simplification (here constant folding).
They run on the host with a NumPy generator; trees are a few dozen nodes, so each call costs
microseconds, and the population is evaluated in JAX in one call afterwards.
"""

from __future__ import annotations

import numpy as np

from .operators import CONST, FIRST_OP, VAR, OperatorSet
from .tree import Tree, subtree_end


class Grammar:
    """What random nodes can be: the variables, the operators, how often constants appear."""

    def __init__(self, operators: OperatorSet, num_vars: int, const_prob: float = 0.2):
        self.operators = operators
        self.num_vars = num_vars
        self.const_prob = const_prob
        self.arity = operators.arity_table()
        codes = np.arange(FIRST_OP, operators.num_codes)
        self.unary = codes[self.arity[codes] == 1]
        self.binary = codes[self.arity[codes] == 2]
        self.ops = codes

    def leaf(self, rng: np.random.Generator) -> tuple[int, float]:
        if rng.random() < self.const_prob:
            return (CONST, float(rng.normal()))
        return (VAR, int(rng.integers(self.num_vars)))

    def op(self, rng: np.random.Generator, arity: int | None = None) -> int:
        pool = self.ops if arity is None else (self.unary if arity == 1 else self.binary)
        return int(pool[rng.integers(len(pool))])

    def random_tree(self, rng: np.random.Generator, size: int) -> Tree:
        """A random tree with about ``size`` nodes (grown by repeatedly appending nodes)."""
        tree: Tree = (self.leaf(rng),)
        while len(tree) < size:
            grown = append_node(rng, tree, self)
            if len(grown) > size + 1:
                break
            tree = grown
        return tree


def _leaf_positions(tree: Tree, arity) -> list[int]:
    return [i for i, (c, _) in enumerate(tree) if arity[c] == 0]


def mutate_constant(rng, tree: Tree, g: Grammar, temperature: float = 1.0) -> Tree:
    pos = [i for i, (c, _) in enumerate(tree) if c == CONST]
    if not pos:
        return tree
    i = pos[rng.integers(len(pos))]
    v = tree[i][1]
    factor = np.exp(rng.normal() * 0.5 * temperature)
    v = v * factor if rng.random() < 0.9 else -v
    return tree[:i] + ((CONST, float(v)),) + tree[i + 1 :]


def mutate_operator(rng, tree: Tree, g: Grammar) -> Tree:
    pos = [i for i, (c, _) in enumerate(tree) if g.arity[c] > 0]
    if not pos:
        return tree
    i = pos[rng.integers(len(pos))]
    return tree[:i] + ((g.op(rng, int(g.arity[tree[i][0]])), 0.0),) + tree[i + 1 :]


def mutate_leaf(rng, tree: Tree, g: Grammar) -> Tree:
    pos = _leaf_positions(tree, g.arity)
    i = pos[rng.integers(len(pos))]
    return tree[:i] + (g.leaf(rng),) + tree[i + 1 :]


def swap_operands(rng, tree: Tree, g: Grammar) -> Tree:
    pos = [i for i, (c, _) in enumerate(tree) if g.arity[c] == 2]
    if not pos:
        return tree
    i = pos[rng.integers(len(pos))]
    a_end = subtree_end(tree, i + 1, g.arity)
    b_end = subtree_end(tree, a_end, g.arity)
    return tree[: i + 1] + tree[a_end:b_end] + tree[i + 1 : a_end] + tree[b_end:]


def append_node(rng, tree: Tree, g: Grammar) -> Tree:
    """Replace a leaf by a new operator whose operands are that leaf and random leaves."""
    pos = _leaf_positions(tree, g.arity)
    i = pos[rng.integers(len(pos))]
    c = g.op(rng)
    if g.arity[c] == 1:
        new = ((c, 0.0), tree[i])
    elif rng.random() < 0.5:
        new = ((c, 0.0), tree[i], g.leaf(rng))
    else:
        new = ((c, 0.0), g.leaf(rng), tree[i])
    return tree[:i] + new + tree[i + 1 :]


def insert_node(rng, tree: Tree, g: Grammar) -> Tree:
    """Put a new operator above a random subtree."""
    i = int(rng.integers(len(tree)))
    end = subtree_end(tree, i, g.arity)
    sub = tree[i:end]
    c = g.op(rng)
    if g.arity[c] == 1:
        new = ((c, 0.0),) + sub
    elif rng.random() < 0.5:
        new = ((c, 0.0),) + sub + (g.leaf(rng),)
    else:
        new = ((c, 0.0), g.leaf(rng)) + sub
    return tree[:i] + new + tree[end:]


def delete_node(rng, tree: Tree, g: Grammar) -> Tree:
    """Replace an operator by one of its operands."""
    pos = [i for i, (c, _) in enumerate(tree) if g.arity[c] > 0]
    if not pos:
        return tree
    i = pos[rng.integers(len(pos))]
    end = subtree_end(tree, i, g.arity)
    a_end = subtree_end(tree, i + 1, g.arity)
    keep = tree[i + 1 : a_end]
    if g.arity[tree[i][0]] == 2 and rng.random() < 0.5:
        keep = tree[a_end:end]
    return tree[:i] + keep + tree[end:]


def replace_subtree(rng, tree: Tree, g: Grammar) -> Tree:
    i = int(rng.integers(len(tree)))
    end = subtree_end(tree, i, g.arity)
    return tree[:i] + g.random_tree(rng, int(rng.integers(1, 6))) + tree[end:]


def crossover(rng, a: Tree, b: Tree, g: Grammar) -> Tree:
    """Replace a random subtree of ``a`` by a random subtree of ``b``."""
    i = int(rng.integers(len(a)))
    j = int(rng.integers(len(b)))
    return a[:i] + b[j : subtree_end(b, j, g.arity)] + a[subtree_end(a, i, g.arity) :]


def fold_constants(tree: Tree, g: Grammar) -> Tree:
    """Replace every variable-free subtree by its value (kept when it is not finite)."""
    tree = simplify_identities(_cancel_identical(tree, g), g)
    if all(c != CONST for c, _ in tree):
        return tree  # every leaf is a variable: nothing to fold
    out: list[tuple[int, float]] = []
    i = 0
    while i < len(tree):
        c, _v = tree[i]
        if g.arity[c] == 0:
            out.append(tree[i])
            i += 1
            continue
        end = subtree_end(tree, i, g.arity)
        sub = tree[i:end]
        if all(cc != VAR for cc, _ in sub):
            val = _value(sub, g)
            if np.isfinite(val):
                out.append((CONST, float(val)))
                i = end
                continue
        out.append(tree[i])
        i += 1
    return tuple(out)


def simplify_identities(tree: Tree, g: Grammar) -> Tree:
    """Drop neutral elements and double negations: ``x + 0``, ``0 + x``, ``x - 0``, ``x * 1``,
    ``1 * x``, ``x / 1``, ``neg(neg(x))``; ``(-1) * x`` becomes ``neg(x)`` when available."""
    names = {o.name: FIRST_OP + i for i, o in enumerate(g.operators)}
    add, sub, mul, div, neg = (names.get(k) for k in ("+", "-", "*", "/", "neg"))

    def rec(i: int) -> tuple[Tree, int]:
        c, v = tree[i]
        a = int(g.arity[c])
        if a == 0:
            return (tree[i],), i + 1
        if a == 1:
            x, j = rec(i + 1)
            if c == neg and x[0][0] == neg:
                return x[1:], j
            return ((c, v),) + x, j
        x, j = rec(i + 1)
        z, k = rec(j)

        def is_const(t, val):
            return len(t) == 1 and t[0][0] == CONST and t[0][1] == val

        if c == add and is_const(x, 0.0):
            return z, k
        if c in (add, sub) and is_const(z, 0.0):
            return x, k
        if c == mul and is_const(x, 1.0):
            return z, k
        if c in (mul, div) and is_const(z, 1.0):
            return x, k
        if c == mul and neg is not None and is_const(x, -1.0):
            return ((neg, 0.0),) + z, k
        if c == mul and neg is not None and is_const(z, -1.0):
            return ((neg, 0.0),) + x, k
        return ((c, v),) + x + z, k

    return rec(0)[0]


def _cancel_identical(tree: Tree, g: Grammar) -> Tree:
    """``e - e -> 0`` and ``e / e -> 1`` for identical operand subtrees (outermost first)."""
    names = {o.name: FIRST_OP + i for i, o in enumerate(g.operators)}
    sub, div = names.get("-"), names.get("/")
    if sub is None and div is None:
        return tree
    i = 0
    out = tree
    while i < len(out):
        c = out[i][0]
        if c in (sub, div):
            a_end = subtree_end(out, i + 1, g.arity)
            end = subtree_end(out, a_end, g.arity)
            if out[i + 1 : a_end] == out[a_end:end]:
                out = out[:i] + ((CONST, 0.0 if c == sub else 1.0),) + out[end:]
        i += 1
    return out


_NUMPY = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "pow": np.power,
    "neg": np.negative, "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "sin": np.sin,
    "cos": np.cos, "tanh": np.tanh, "abs": np.abs, "square": np.square,
    "cube": lambda a: a * a * a, "inv": np.reciprocal,
}


def _value(tree: Tree, g: Grammar) -> float:
    """Value of a variable-free tree (NumPy, float64)."""
    pos = 0

    def rec():
        nonlocal pos
        c, v = tree[pos]
        pos += 1
        if c == CONST:
            return np.float64(v)
        op = g.operators[c - FIRST_OP]
        fn = _NUMPY.get(op.name, op.fn)
        args = [rec() for _ in range(int(g.arity[c]))]
        return np.asarray(fn(*args), np.float64)

    with np.errstate(all="ignore"):
        try:
            return float(rec())
        except (TypeError, ValueError, OverflowError):
            return float("nan")


# Relative frequencies of the mutations (after PySR's defaults, with more weight on growth
# early on being provided by `append_node`).
MUTATIONS = (
    (mutate_constant, 0.3),
    (mutate_operator, 0.5),
    (mutate_leaf, 0.5),
    (swap_operands, 0.1),
    (append_node, 0.8),
    (insert_node, 0.3),
    (delete_node, 0.6),
    (replace_subtree, 0.2),
)


def mutate(rng, tree: Tree, g: Grammar, weights: np.ndarray) -> Tree:
    k = int(rng.choice(len(MUTATIONS), p=weights))
    return MUTATIONS[k][0](rng, tree, g)
