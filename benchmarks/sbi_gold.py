"""How many simulations does mining gold save? NLE against SCANDAL on the PartonDetector toy.

C2ST against the exact posterior (the toy's marginal likelihood is known) given several i.i.d.
events, for several simulation budgets and several independent repetitions (fresh simulations
and network initialisations), the same flow and training settings for both methods.

The summary answers "for the same accuracy, how many simulations does plain NLE need?": for
each budget n, SCANDAL's mean C2ST at n is located on NLE's C2ST-versus-budget curve
(interpolated linearly in log budget); the ratio of that budget to n is the saving.

    python benchmarks/sbi_gold.py --budgets 250 500 1000 2000 4000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import jaxgen as jg


def equivalent_budget(budgets, curve, value):
    """The budget at which the decreasing ``curve`` (C2ST per budget) reaches ``value``.

    Linear interpolation in log budget; ``None`` when ``value`` lies outside the curve's range
    (the answer would be an extrapolation).
    """
    logs = np.log(np.asarray(budgets, float))
    c = np.minimum.accumulate(np.asarray(curve, float))  # monotone envelope
    if value > c[0] or value < c[-1]:
        return None
    for i in range(len(c) - 1):
        hi, lo = c[i], c[i + 1]
        if lo <= value <= hi:
            w = 0.0 if hi == lo else (hi - value) / (hi - lo)
            return float(np.exp(logs[i] + w * (logs[i + 1] - logs[i])))
    return float(budgets[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budgets", type=int, nargs="+", default=[250, 500, 1000, 2000, 4000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-events", type=int, default=5)
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--score-weight", type=float, default=1.0)
    parser.add_argument("--out", default="benchmarks/results/sbi_gold.json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    sim = jg.simulators.PartonDetector()
    theta_o = jnp.array([0.8, -0.5])
    events = jax.vmap(lambda k: sim(k, theta_o))(
        jax.random.split(jax.random.key(2), args.num_events)
    )
    exact = jg.sbi.LikelihoodPosterior(jg.sbi.ExactLikelihood(sim), sim.prior, (2,), 2)
    ref = exact.sample(jax.random.key(3), events, args.num_samples)
    rows = []
    out = {"task": "PartonDetector", "theta_o": np.asarray(theta_o).tolist(),
           "num_events": args.num_events, "num_samples": args.num_samples,
           "score_weight": args.score_weight, "rows": rows}
    for n in args.budgets:
        for rep in range(args.repeats):
            gold = jg.sbi.mine_gold(jax.random.fold_in(jax.random.key(n), rep), sim, n)
            key = jax.random.key(rep)
            t0 = time.perf_counter()
            plain = jg.sbi.nle(key, gold.theta, gold.x, prior=sim.prior)
            t_plain = time.perf_counter() - t0
            t0 = time.perf_counter()
            aug = jg.sbi.scandal(key, gold, prior=sim.prior, score_weight=args.score_weight)
            t_gold = time.perf_counter() - t0
            row = {
                "num_simulations": n, "repeat": rep,
                "nle_c2st": jg.sbi.c2st(plain.sample(key, events, args.num_samples), ref),
                "scandal_c2st": jg.sbi.c2st(aug.sample(key, events, args.num_samples), ref),
                "nle_train_s": t_plain,
                "scandal_train_s": t_gold,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
        summary = []
        done = sorted({r["num_simulations"] for r in rows})
        mean = {m: [float(np.mean([r[f"{m}_c2st"] for r in rows if r["num_simulations"] == b]))
                    for b in done] for m in ("nle", "scandal")}
        sem = {m: [float(np.std([r[f"{m}_c2st"] for r in rows if r["num_simulations"] == b],
                                ddof=1) / np.sqrt(args.repeats)) if args.repeats > 1 else None
                   for b in done] for m in ("nle", "scandal")}
        for i, b in enumerate(done):
            eq = equivalent_budget(done, mean["nle"], mean["scandal"][i])
            summary.append({
                "num_simulations": b,
                "nle_c2st": mean["nle"][i], "nle_c2st_sem": sem["nle"][i],
                "scandal_c2st": mean["scandal"][i], "scandal_c2st_sem": sem["scandal"][i],
                "nle_budget_for_same_c2st": eq,
                "simulations_saved_factor": None if eq is None else eq / b,
            })
        out["summary"] = summary
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    for s in out["summary"]:
        print(json.dumps(s))


if __name__ == "__main__":
    main()
