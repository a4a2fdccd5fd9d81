"""How many simulations does mining gold save? NLE against SCANDAL on the PartonDetector toy.

C2ST against the exact posterior (the toy's marginal likelihood is known) given several i.i.d.
events, for several simulation budgets, same flow and training settings for both.

    python benchmarks/sbi_gold.py --budgets 250 500 1000 2000 --out benchmarks/sbi_gold.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import jax
import jax.numpy as jnp

import jaxgen as jg


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budgets", type=int, nargs="+", default=[250, 500, 1000, 2000, 4000])
    parser.add_argument("--num-events", type=int, default=5)
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--score-weight", type=float, default=1.0)
    parser.add_argument("--out", default="benchmarks/sbi_gold.json")
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
    for n in args.budgets:
        gold = jg.sbi.mine_gold(jax.random.key(n), sim, n)
        key = jax.random.key(0)
        t0 = time.perf_counter()
        plain = jg.sbi.nle(key, gold.theta, gold.x, prior=sim.prior)
        t_plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        aug = jg.sbi.scandal(key, gold, prior=sim.prior, score_weight=args.score_weight)
        t_gold = time.perf_counter() - t0
        row = {
            "num_simulations": n,
            "nle_c2st": jg.sbi.c2st(plain.sample(key, events, args.num_samples), ref),
            "scandal_c2st": jg.sbi.c2st(aug.sample(key, events, args.num_samples), ref),
            "nle_train_s": t_plain,
            "scandal_train_s": t_gold,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
