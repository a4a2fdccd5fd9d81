"""Host-side expression trees and their fixed-capacity array encoding.

A tree is a tuple of nodes in prefix order; a node is ``(code, value)`` with ``code`` one of
``VAR`` (``value`` = column index), ``CONST`` (``value`` = the constant) or an operator code
(``value`` unused). Trees are small (at most a few dozen nodes), so the genetic operators work on
them in plain Python; whole populations are then encoded into arrays and evaluated in JAX.

The array encoding of one expression with capacity ``L`` and ``K`` constant slots:

* ``code``  ``(L,)`` int32: node codes in evaluation order, right-aligned (``PAD`` on the left),
  so the root is always the last node and every child comes before its parent;
* ``arg``   ``(L,)`` int32: the column of a variable node, the slot of a constant node;
* ``reg``   ``(L,)`` int32: the value register the node writes (see :func:`encode`);
* ``child`` ``(L, 2)`` int32: the registers holding the operands of an operator node;
* ``constants`` ``(K,)`` float: constant values, in order of appearance.
"""

from __future__ import annotations

import numpy as np
import sympy

from .operators import CONST, FIRST_OP, PAD, VAR, OperatorSet

Tree = tuple[tuple[int, float], ...]


def subtree_end(tree: Tree, start: int, arity: np.ndarray) -> int:
    """Index one past the subtree rooted at ``tree[start]``."""
    need = 1
    i = start
    while need:
        need += int(arity[tree[i][0]]) - 1
        i += 1
    return i


def num_constants(tree: Tree) -> int:
    return sum(1 for c, _ in tree if c == CONST)


def complexity(tree: Tree, table: np.ndarray) -> int:
    return int(sum(int(table[c]) for c, _ in tree))


def depth(tree: Tree, arity: np.ndarray) -> int:
    """Depth (a leaf has depth 1)."""
    best = 0
    stack: list[int] = []  # remaining children per open node, with its depth
    depths: list[int] = []
    for c, _ in tree:
        d = depths[-1] + 1 if depths else 1
        best = max(best, d)
        while stack and stack[-1] == 0:
            stack.pop()
            depths.pop()
        if stack:
            stack[-1] -= 1
        a = int(arity[c])
        if a:
            stack.append(a)
            depths.append(d)
        while stack and stack[-1] == 0:
            stack.pop()
            depths.pop()
    return best


def registers_needed(capacity: int) -> int:
    """Registers that any tree of at most ``capacity`` nodes needs (Sethi-Ullman bound)."""
    leaves = (capacity + 1) // 2
    r = 1
    while (1 << (r - 1)) < leaves:
        r += 1
    return r


def _parse(tree: Tree, arity: np.ndarray):
    """Nested ``(code, value, children, registers_needed, prefix_position)`` form."""
    pos = 0

    def rec():
        nonlocal pos
        here = pos
        c, v = tree[pos]
        pos += 1
        ch = [rec() for _ in range(int(arity[c]))]
        if not ch:
            need = 1
        elif len(ch) == 1:
            need = ch[0][3]
        else:
            a, b = ch[0][3], ch[1][3]
            need = max(a, b) if a != b else a + 1
        return (c, v, ch, need, here)

    return rec()


def _emit(node, s: int, rows: list, slots: list) -> None:
    """Append the nodes of ``node`` in Sethi-Ullman order, result in register ``s``.

    ``slots`` receives the prefix positions of the constants in slot order."""
    c, v, ch, _, here = node
    if not ch:
        if c == VAR:
            rows.append((c, int(v), s, 0, 0))
        else:
            rows.append((c, len(slots), s, 0, 0))
            slots.append(here)
    elif len(ch) == 1:
        _emit(ch[0], s, rows, slots)
        rows.append((c, 0, s, s, s))
    elif ch[0][3] >= ch[1][3]:
        _emit(ch[0], s, rows, slots)
        _emit(ch[1], s + 1, rows, slots)
        rows.append((c, 0, s, s, s + 1))
    else:
        _emit(ch[1], s, rows, slots)
        _emit(ch[0], s + 1, rows, slots)
        rows.append((c, 0, s, s + 1, s))


def encode(trees, capacity: int, num_slots: int, arity: np.ndarray, slot_positions=None):
    """Encode trees into arrays ``(code, arg, reg, child, constants)`` with a population axis.

    Nodes are emitted in the order of Sethi & Ullman (1970, "The generation of optimal code for
    arithmetic expressions"): the child that needs more registers is evaluated first, so a tree
    of ``L`` nodes needs only about ``log2(L)`` value registers. ``reg`` is the register a node
    writes, ``child`` the registers its operands are read from; the root ends in register 0.

    Raises if a tree has more nodes than ``capacity`` or more constants than ``num_slots``.
    If ``slot_positions`` is a list, the prefix positions of each tree's constants, in slot
    order, are appended to it.
    """
    p = len(trees)
    code = np.zeros((p, capacity), np.int32)
    arg = np.zeros((p, capacity), np.int32)
    reg = np.zeros((p, capacity), np.int32)
    child = np.zeros((p, capacity, 2), np.int32)
    consts = np.zeros((p, num_slots), np.float32)
    for t, tree in enumerate(trees):
        n = len(tree)
        if n > capacity:
            raise ValueError(f"An expression has {n} nodes, more than the capacity {capacity}.")
        rows: list[tuple[int, int, int, int, int]] = []
        order: list[int] = []
        _emit(_parse(tree, arity), 0, rows, order)
        slots = [tree[j][1] for j in order]
        if slot_positions is not None:
            slot_positions.append(order)
        if len(slots) > num_slots:
            raise ValueError(
                f"An expression has {len(slots)} constants, more than the {num_slots} slots."
            )
        off = capacity - n
        for k, (c, a_, r, k1, k2) in enumerate(rows):
            code[t, off + k] = c
            arg[t, off + k] = a_
            reg[t, off + k] = r
            child[t, off + k] = (k1, k2)
        with np.errstate(over="ignore"):  # huge constants become inf: that expression fails
            consts[t, : len(slots)] = slots
    return code, arg, reg, child, consts


def decode(code, arg, reg, child, constants, arity: np.ndarray) -> Tree:
    """Inverse of :func:`encode` for one expression (numpy arrays)."""
    code = np.asarray(code)
    arg = np.asarray(arg)
    reg = np.asarray(reg)
    child = np.asarray(child)
    constants = np.asarray(constants)
    regs: dict[int, Tree] = {}
    for k in range(len(code)):
        c = int(code[k])
        if c == PAD:
            continue
        if c == VAR:
            val: Tree = ((VAR, int(arg[k])),)
        elif c == CONST:
            val = ((CONST, float(constants[arg[k]])),)
        elif arity[c] == 1:
            val = ((c, 0.0),) + regs[int(child[k, 0])]
        else:
            val = ((c, 0.0),) + regs[int(child[k, 0])] + regs[int(child[k, 1])]
        regs[int(reg[k])] = val
    if 0 not in regs:
        raise ValueError("Malformed encoding: no node writes the root register.")
    return regs[0]


# ---------------------------------------------------------------------------------------------
# Exports.


def to_sympy(tree: Tree, operators: OperatorSet, names, *, digits: int | None = None):
    """SymPy expression of a tree; constants rounded to ``digits`` significant digits if given."""
    symbols = [sympy.Symbol(n, real=True) for n in names]
    arity = operators.arity_table()
    pos = 0

    def rec():
        nonlocal pos
        c, v = tree[pos]
        pos += 1
        if c == VAR:
            return symbols[int(v)]
        if c == CONST:
            if digits is not None:
                return sympy.Float(float(f"{v:.{digits}g}"), digits)
            return sympy.Float(v)
        op = operators[c - FIRST_OP]
        args = [rec() for _ in range(int(arity[c]))]
        if op.name == "pow" and args[1].is_Float:
            # exponents such as 1.5 or -1 read better (and simplify) as rationals
            r = sympy.Rational(float(args[1])).limit_denominator(12)
            if abs(float(r) - float(args[1])) < 1e-9:
                args[1] = r
        return op.sympy_fn(*args)

    return rec()


def _fmt_const(v: float) -> str:
    s = f"{v:.6g}"
    return f"({s})" if v < 0 else s


def to_string(tree: Tree, operators: OperatorSet, names) -> str:
    """Readable infix string, fully parenthesised where precedence needs it."""
    arity = operators.arity_table()
    pos = 0
    infix = {"+": 1, "-": 1, "*": 2, "/": 2}

    def rec() -> tuple[str, int]:
        nonlocal pos
        c, v = tree[pos]
        pos += 1
        if c == VAR:
            return names[int(v)], 9
        if c == CONST:
            return _fmt_const(v), 9
        op = operators[c - FIRST_OP]
        if arity[c] == 1:
            s, _ = rec()
            if op.name == "square":
                return f"({s})^2", 9
            if op.name == "cube":
                return f"({s})^3", 9
            if op.name == "neg":
                return f"-({s})", 8
            return f"{op.name}({s})", 9
        (a, pa), (b, pb) = rec(), rec()
        if op.name in infix:
            p = infix[op.name]
            a = a if pa >= p else f"({a})"
            # right operand of - and / binds tighter
            b = b if (pb > p or (pb == p and op.name in "+*")) else f"({b})"
            return f"{a} {op.name} {b}", p
        if op.name == "pow":
            return f"{a if pa == 9 else '(' + a + ')'}^{b if pb == 9 else '(' + b + ')'}", 9
        return f"{op.name}({a}, {b})", 9

    return rec()[0]


def to_callable(tree: Tree, operators: OperatorSet):
    """A plain JAX function ``f(X) -> y`` (``X`` of shape ``(n, d)``) composed from the tree."""
    arity = operators.arity_table()
    pos = 0

    def rec():
        nonlocal pos
        c, v = tree[pos]
        pos += 1
        if c == VAR:
            col = int(v)
            return lambda X: X[..., col]
        if c == CONST:
            val = float(v)
            return lambda X: jnp_full_like(X, val)
        fn = operators[c - FIRST_OP].fn
        if arity[c] == 1:
            f = rec()
            return lambda X: fn(f(X))
        f, g = rec(), rec()
        return lambda X: fn(f(X), g(X))

    return rec()


def jnp_full_like(X, val: float):
    import jax.numpy as jnp

    return jnp.full(X.shape[:-1], val, dtype=X.dtype)


def from_sympy(expr, names, operators: OperatorSet) -> Tree:
    """Tree of a SymPy expression over the symbols ``names``, using only ``operators``.

    Sums and products with many terms become chains of binary nodes; integer powers 2 and 3 use
    ``square``/``cube`` when available, ``1/2`` uses ``sqrt``, ``-1`` uses ``/``.
    """
    index = {n: i for i, n in enumerate(names)}
    have = {o.name for o in operators}

    def code(name):
        return operators.code(name)

    def need(name):
        if name not in have:
            raise ValueError(
                f"The expression {expr} needs the operator {name!r}, which is not in the "
                f"operator set {sorted(have)}."
            )

    def rec(e) -> Tree:
        if e.is_Symbol:
            if e.name not in index:
                raise ValueError(f"Unknown variable {e.name!r}; expected one of {list(names)}.")
            return ((VAR, index[e.name]),)
        if e.is_Number or e.is_NumberSymbol:
            return ((CONST, float(e)),)
        if e.is_Add or e.is_Mul:
            name = "+" if e.is_Add else "*"
            args = list(e.args)
            if e.is_Mul and "/" in have:
                num = [a for a in args if not (a.is_Pow and a.exp.is_Number and a.exp < 0)]
                den = [1 / a for a in args if a.is_Pow and a.exp.is_Number and a.exp < 0]
                if den:
                    n_ = sympy.Mul(*num, evaluate=False) if num else sympy.Integer(1)
                    d_ = sympy.Mul(*den)
                    return ((code("/"), 0.0),) + rec(n_) + rec(d_)
            need(name)
            out = rec(args[0])
            for a in args[1:]:
                out = ((code(name), 0.0),) + out + rec(a)
            return out
        if e.is_Pow:
            b, x = e.args
            if x == 2 and "square" in have:
                return ((code("square"), 0.0),) + rec(b)
            if x == 3 and "cube" in have:
                return ((code("cube"), 0.0),) + rec(b)
            if x == sympy.Rational(1, 2) and "sqrt" in have:
                return ((code("sqrt"), 0.0),) + rec(b)
            if x == -1 and "/" in have:
                return ((code("/"), 0.0), (CONST, 1.0)) + rec(b)
            if x.is_Number and x < 0 and "/" in have:
                return ((code("/"), 0.0), (CONST, 1.0)) + rec(b ** (-x))
            need("pow")
            return ((code("pow"), 0.0),) + rec(b) + rec(x)
        fname = {sympy.exp: "exp", sympy.log: "log", sympy.sin: "sin", sympy.cos: "cos",
                 sympy.tanh: "tanh", sympy.Abs: "abs"}.get(e.func, getattr(e.func, "__name__", ""))
        if fname in have and len(e.args) in (1, 2):
            return ((code(fname), 0.0),) + sum((rec(a) for a in e.args), ())
        raise ValueError(
            f"Cannot encode {e} (a {e.func.__name__}) with the operators {sorted(have)}."
        )

    return rec(sympy.sympify(expr))
