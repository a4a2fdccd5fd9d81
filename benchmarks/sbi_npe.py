"""NPE: jaxgen against sbi (PyTorch), side by side in one run.

Tasks: Gaussian linear (10-d) and two moons, as in the SBI benchmark (Lueckmann et al. 2021).
For each task: ``--num-simulations`` training simulations, one amortized posterior per method,
``--num-observations`` observations (from prior draws), ``--num-samples`` posterior samples per
observation, C2ST against exact posterior samples (the Gaussian-linear posterior is conjugate;
the two-moons posterior is sampled exactly on a fine grid). Both methods are scored with the same
C2ST (``jaxgen.sbi.c2st``: the benchmark's protocol). Times are wall-clock seconds on this
machine, training including JAX compilation; sbi runs with ONE torch thread (more threads
oversubscribe small shared machines), JAX with its default CPU thread pool.

Usage:
    python benchmarks/sbi_npe.py                      # the full protocol (10,000 / 10,000 / 5)
    python benchmarks/sbi_npe.py --num-simulations 2000 --num-observations 2 --quick
Writes benchmarks/results/sbi_npe.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import zlib

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_info, pin_torch_threads, timer, write_json

import jaxgen as jg


def make_task(name: str):
    if name == "gaussian_linear":
        sim = jg.simulators.GaussianLinear(dim=10)
        reference = lambda key, x_o, n: sim.posterior(x_o).sample(key, (n,))
    elif name == "two_moons":
        sim = jg.simulators.TwoMoons()
        reference = sim.reference_posterior_samples
    else:
        raise ValueError(name)
    return sim, reference


def torch_prior(name: str):
    import torch
    from sbi.utils import BoxUniform

    if name == "gaussian_linear":
        return torch.distributions.MultivariateNormal(torch.zeros(10), 0.1 * torch.eye(10))
    return BoxUniform(-torch.ones(2), torch.ones(2))


def run_jaxgen(key, theta, x, sim, observations, num_samples, estimator, quick):
    out = {}
    factory = None
    if estimator == "maf":
        factory = lambda k, d, c: jg.flows.maf(k, d, cond_dim=c, num_layers=5, hidden_size=50)
    with timer(out, "train_s"):
        posterior = jg.sbi.npe(key, theta, x, prior=sim.prior, density_estimator=factory,
                               max_epochs=20 if quick else 500)
        jax.block_until_ready(posterior)
    samples = []
    with timer(out, "sample_s"):
        for i, x_o in enumerate(observations):
            s = posterior.sample(jax.random.fold_in(key, i), x_o, num_samples)
            samples.append(np.asarray(s))
    return out, samples


def run_sbi(theta, x, name, observations, num_samples, estimator, quick):
    import torch
    from sbi.inference import NPE

    out = {}
    torch.manual_seed(0)
    with timer(out, "train_s"):
        inference = NPE(prior=torch_prior(name), density_estimator=estimator,
                        show_progress_bars=False)
        inference.append_simulations(torch.as_tensor(np.asarray(theta)),
                                     torch.as_tensor(np.asarray(x)))
        net = inference.train(max_num_epochs=20 if quick else 2**31 - 1)
        posterior = inference.build_posterior(net)
    samples = []
    with timer(out, "sample_s"):
        for x_o in observations:
            s = posterior.sample((num_samples,), x=torch.as_tensor(np.asarray(x_o)),
                                 show_progress_bars=False)
            samples.append(s.numpy())
    return out, samples


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", default="gaussian_linear,two_moons")
    p.add_argument("--estimators", default="nsf,maf", help="density estimators for both tools")
    p.add_argument("--num-simulations", type=int, default=10_000)
    p.add_argument("--num-samples", type=int, default=10_000)
    p.add_argument("--num-observations", type=int, default=5)
    p.add_argument("--no-sbi", action="store_true", help="skip the peer")
    p.add_argument("--quick", action="store_true", help="20 epochs only (smoke test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default="sbi_npe")
    args = p.parse_args(argv)
    if not args.no_sbi:
        pin_torch_threads(1)

    key = jax.random.key(args.seed)
    results = {"config": vars(args), "machine": machine_info(), "torch_threads": 1, "tasks": {}}
    for name in args.tasks.split(","):
        sim, reference = make_task(name)
        k_task = jax.random.fold_in(key, zlib.crc32(name.encode()) % 2**31)  # stable across runs
        k_sim, k_obs, k_ref, k_fit = jax.random.split(k_task, 4)
        theta, x = jg.simulate(k_sim, sim, args.num_simulations)
        theta_o, x_obs = jg.simulate(k_obs, sim, args.num_observations)
        refs = [np.asarray(reference(jax.random.fold_in(k_ref, i), x_obs[i], args.num_samples))
                for i in range(args.num_observations)]
        task = {}
        for est in args.estimators.split(","):
            rows = {}
            runs = [("jaxgen", lambda: run_jaxgen(k_fit, theta, x, sim, x_obs, args.num_samples,
                                                  est, args.quick))]
            if not args.no_sbi:
                runs.append(("sbi", lambda: run_sbi(theta, x, name, x_obs, args.num_samples, est,
                                                    args.quick)))
            for tool, run in runs:
                times, samples = run()
                c2sts = [jg.sbi.c2st(s, r) for s, r in zip(samples, refs)]
                rows[tool] = {**times, "total_s": times["train_s"] + times["sample_s"],
                              "c2st": c2sts, "c2st_mean": float(np.mean(c2sts))}
                print(f"{name:16s} {est:4s} {tool:7s} train {times['train_s']:7.1f} s  sample "
                      f"{times['sample_s']:6.2f} s  C2ST {np.mean(c2sts):.3f}", flush=True)
            if "sbi" in rows:
                rows["speedup_total"] = rows["sbi"]["total_s"] / rows["jaxgen"]["total_s"]
                rows["speedup_train"] = rows["sbi"]["train_s"] / rows["jaxgen"]["train_s"]
                rows["speedup_sample"] = rows["sbi"]["sample_s"] / rows["jaxgen"]["sample_s"]
            task[est] = rows
        results["tasks"][name] = task
    path = write_json(args.output, results)
    print(table(results))
    print(f"wrote {path}")


def table(results) -> str:
    lines = ["| task | flow | C2ST jaxgen | C2ST sbi | train s jaxgen / sbi | sample s jaxgen / sbi "
             "| speed-up (train+sample) |", "|---|---|---|---|---|---|---|"]
    for name, task in results["tasks"].items():
        for est, rows in task.items():
            j, s = rows["jaxgen"], rows.get("sbi")
            if s is None:
                lines.append(f"| {name} | {est} | {j['c2st_mean']:.3f} | - | {j['train_s']:.1f} / - "
                             f"| {j['sample_s']:.2f} / - | - |")
                continue
            lines.append(
                f"| {name} | {est} | {j['c2st_mean']:.3f} | {s['c2st_mean']:.3f} | "
                f"{j['train_s']:.1f} / {s['train_s']:.1f} | {j['sample_s']:.2f} / "
                f"{s['sample_s']:.2f} | {rows['speedup_total']:.1f}x |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
