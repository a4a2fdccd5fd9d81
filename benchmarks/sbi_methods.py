"""NLE and NRE in jaxgen and in sbi (PyTorch), side by side in one run.

For each task and simulation budget: C2ST against reference posterior samples, training wall
time and posterior-sampling wall time (jaxgen: first call, compilation included, and a second,
compiled call). sbi runs single-threaded (``torch.set_num_threads(1)``).

SIR and Lotka-Volterra use sbibm's observation 1 and reference posterior samples when the
sbibm package is installed -- only its data files are read, so install it without its
dependencies: ``pip install --no-deps sbibm``. Without it they fall back to an exact-likelihood
MCMC reference on an observation simulated here (each row records which reference it used).
Lotka-Volterra NLE models log(x) on both sides (see ``NLE_X_TRANSFORMS``; ``--no-x-transform``
turns it off); each row records its ``x_transform`` and jaxgen's sampler settings.

    python benchmarks/sbi_methods.py --tasks two_moons gaussian_linear \
        --num-simulations 10000 --num-samples 10000
"""

from __future__ import annotations

import argparse
import bz2
import importlib.util
import itertools
import json
import os
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import jaxgen as jg


def sbibm_files(name, num_observation=1):
    """Observation and reference posterior samples shipped by the ``sbibm`` package.

    Only the data files are read (the package itself is never imported, so its heavy
    dependencies are not needed): ``pip install --no-deps sbibm``. Returns ``None`` when sbibm
    is not installed.
    """
    spec = importlib.util.find_spec("sbibm")
    if spec is None or spec.origin is None:
        return None
    folder = os.path.join(os.path.dirname(spec.origin), "tasks", name, "files",
                          f"num_observation_{num_observation}")
    x_o = np.loadtxt(os.path.join(folder, "observation.csv"), delimiter=",", skiprows=1)
    with bz2.open(os.path.join(folder, "reference_posterior_samples.csv.bz2"), "rt") as f:
        ref = np.loadtxt(f, delimiter=",", skiprows=1)
    return jnp.asarray(np.atleast_1d(x_o), jnp.float32), jnp.asarray(ref, jnp.float32)


def task(name):
    """``(simulator, x_o, reference(key, n), reference_kind)`` for a benchmark task."""
    if name == "two_moons":
        sim = jg.simulators.TwoMoons()
        x_o = jnp.zeros(2)

        def reference(key, n):
            return sim.reference_posterior_samples(key, x_o, n)
        return sim, x_o, reference, "exact (analytic)"
    if name == "gaussian_linear":
        sim = jg.simulators.GaussianLinear(dim=10)
        x_o = jnp.full(10, 0.5)

        def reference(key, n):
            return sim.posterior(x_o).sample(key, (n,))
        return sim, x_o, reference, "exact (analytic)"
    # sbibm's SIR observes exact Binomial counts (jaxgen's default is a Gaussian approximation).
    sims = {"sir": lambda: jg.simulators.SIR(exact_binomial=True),
            "lotka_volterra": jg.simulators.LotkaVolterra}
    sim = sims[name]()
    files = sbibm_files(name)
    if files is not None:
        # sbibm's observation 1 and its 10,000 reference samples (Lueckmann et al. 2021).
        x_o, ref = files

        def reference(key, n):
            idx = jax.random.choice(key, ref.shape[0], (min(n, ref.shape[0]),), replace=False)
            return ref[idx]
        return sim, x_o, reference, "sbibm observation 1 and reference samples"
    theta_o = sim.prior.mean
    x_o = sim(jax.random.key(123), theta_o)
    exact = jg.sbi.LikelihoodPosterior(
        jg.sbi.ExactLikelihood(sim), sim.prior, tuple(x_o.shape), sim.theta_dim,
        jg.sbi.MetropolisHastings(num_chains=100, num_warmup=1000, thin=10),
    )

    def reference(key, n):
        # Without sbibm's files: exact-likelihood MCMC on our own observation.
        return exact.sample(key, x_o, n)
    return sim, x_o, reference, "exact-likelihood MCMC (sbibm not installed)"


def torch_prior(name, sim):
    import torch
    from sbi.utils import BoxUniform

    if name == "two_moons":
        return BoxUniform(-torch.ones(2), torch.ones(2))
    if name == "gaussian_linear":
        return torch.distributions.MultivariateNormal(torch.zeros(10), 0.1 * torch.eye(10))
    mu = torch.as_tensor(np.asarray(sim.prior.base_dist.loc), dtype=torch.float32)
    sd = torch.as_tensor(np.asarray(sim.prior.base_dist.scale), dtype=torch.float32)
    return torch.distributions.Independent(torch.distributions.LogNormal(mu, sd), 1)


# The same method on both sides. sbi's `NRE` is NRE_B, the contrastive loss with 10 atoms
# (Durkan et al. 2020); NRE_A is the binary classifier (Hermans et al. 2020).
METHODS = {
    "nle": ("NLE", lambda: {}),
    "nre": ("NRE_B", lambda: {"loss": jg.sbi.ContrastiveRatioLoss(num_atoms=10)}),
    "nre_a": ("NRE_A", lambda: {"loss": jg.sbi.BinaryRatioLoss()}),
}


# sbibm's Lotka-Volterra observes the populations with log-normal noise: on the log scale the
# noise is Gaussian with a constant width, which a flow learns far more easily. NLE models x on
# that scale on BOTH sides: jaxgen through `x_transform="log"` (the likelihood stays a density of
# the original x; its Jacobian is constant in theta, so the posterior is the same), sbi by
# training on log(x) and conditioning on log(x_o). Each row records the transform it used.
NLE_X_TRANSFORMS = {"lotka_volterra": "log"}


def run_jaxgen(method, key, sim, theta, x, x_o, num_samples, x_transform=None):
    fn = jg.sbi.nle if method == "nle" else jg.sbi.nre
    options = METHODS[method][1]()
    if x_transform is not None:
        options["x_transform"] = x_transform
    t0 = time.perf_counter()
    post = fn(key, theta, x, prior=sim.prior, **options)
    jax.block_until_ready(post)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    samples, info = post.sample(jax.random.key(1), x_o, num_samples, return_info=True)
    samples.block_until_ready()
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    post.sample(jax.random.key(2), x_o, num_samples, warn=False).block_until_ready()
    t_second = time.perf_counter() - t0
    sampler = {f: getattr(post.sampler, f) for f in ("num_chains", "num_warmup", "thin",
                                                     "jump_probability")}
    return samples, {
        "train_s": t_train, "sample_first_call_s": t_first, "sample_s": t_second,
        "sampler": sampler,
        "r_hat_max": float(np.nanmax(info.r_hat)), "ess_min": float(np.min(info.ess)),
    }


def run_sbi(method, name, sim, theta, x, x_o, num_samples, x_transform=None, seed=0):
    import sbi.inference
    import torch

    torch.manual_seed(seed)
    if x_transform == "log":
        x, x_o = np.log(np.asarray(x)), np.log(np.asarray(x_o))
    elif x_transform is not None:
        raise ValueError(f"unknown x transform {x_transform!r}")

    torch.set_num_threads(1)
    prior = torch_prior(name, sim)
    cls = getattr(sbi.inference, METHODS[method][0])
    t0 = time.perf_counter()
    inference = cls(prior=prior, show_progress_bars=False)
    th = torch.as_tensor(np.asarray(theta), dtype=torch.float32)
    xx = torch.as_tensor(np.asarray(x).reshape(len(x), -1), dtype=torch.float32)
    inference.append_simulations(th, xx).train()
    posterior = inference.build_posterior()
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    xo = torch.as_tensor(np.asarray(x_o).reshape(1, -1), dtype=torch.float32)
    samples = posterior.sample((num_samples,), x=xo, show_progress_bars=False)
    t_sample = time.perf_counter() - t0
    return jnp.asarray(samples.numpy()), {"train_s": t_train, "sample_s": t_sample}


SEQUENTIAL = {
    "tsnpe": lambda: (jg.sbi.sequential_npe, {"truncate": True}),
    "tsnre": lambda: (jg.sbi.sequential_nre, {"truncate": True}),
    "snle": lambda: (jg.sbi.sequential_nle, {}),
}


def run_sequential(args):
    """Amortized NPE against sequential methods at each total budget (rows merge into --out,
    keyed by task and budget, so methods can be added in later runs)."""
    rows = []
    if os.path.exists(args.out):
        with open(args.out) as f:
            rows = json.load(f)
    for name in args.tasks:
        sim, x_o, reference, ref_kind = task(name)
        ref = reference(jax.random.key(7), args.num_samples)
        for n in args.num_simulations:
            key = jax.random.key(n)
            row = next((r for r in rows if r["task"] == name and r["num_simulations"] == n),
                       None)
            if row is None:
                row = {"task": name, "num_simulations": n}
                rows.append(row)
            row["reference"] = ref_kind
            row["rounds"] = args.rounds
            if not args.skip_amortized:
                t0 = time.perf_counter()
                theta, x = jg.simulate(key, sim, n)
                post = jg.sbi.npe(key, theta, x, prior=sim.prior)
                row["npe_c2st"] = jg.sbi.c2st(post.sample(key, x_o, args.num_samples), ref)
                row["npe_s"] = time.perf_counter() - t0
            for method in args.sequential_methods:
                fn, options = SEQUENTIAL[method]()
                t0 = time.perf_counter()
                res = fn(key, sim, x_o, num_rounds=args.rounds,
                         num_simulations=n // args.rounds, **options)
                samples = res.posterior.sample(key, x_o, args.num_samples)
                row[f"{method}_c2st"] = jg.sbi.c2st(samples, ref)
                row[f"{method}_s"] = time.perf_counter() - t0
            print(json.dumps(row), flush=True)
            with open(args.out, "w") as f:
                json.dump(rows, f, indent=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", nargs="+", default=["two_moons", "gaussian_linear", "sir",
                                                       "lotka_volterra"])
    parser.add_argument("--methods", nargs="+", default=["nle", "nre"], choices=list(METHODS),
                        help="nle; nre = NRE_B (contrastive, 10 atoms: sbi's default NRE); "
                             "nre_a = the binary classifier")
    parser.add_argument("--num-simulations", type=int, nargs="+", default=[10_000])
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="training seeds (jaxgen's key, torch's seed); the simulations stay "
                             "the same, so the spread is that of training alone")
    parser.add_argument("--skip-sbi", action="store_true",
                        help="jaxgen only (development runs; the published table has both)")
    parser.add_argument("--no-x-transform", action="store_true",
                        help="NLE on the raw x for every task (default: log x for "
                             f"{', '.join(NLE_X_TRANSFORMS)}, on both sides)")
    parser.add_argument("--sequential", action="store_true",
                        help="compare amortized NPE with truncated sequential NPE (TSNPE) and "
                             "truncated sequential NRE at each budget instead")
    parser.add_argument("--sequential-methods", nargs="+", default=list(SEQUENTIAL),
                        choices=list(SEQUENTIAL))
    parser.add_argument("--skip-amortized", action="store_true",
                        help="with --sequential: keep the amortized NPE figures already in --out")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of the sequential methods (the budget is split evenly)")
    parser.add_argument("--append", action="store_true",
                        help="keep the rows already in --out (a row with the same task, method, "
                             "budget and seed is replaced), e.g. to add seeds or tasks to a study")
    parser.add_argument("--out", default=None,
                        help="JSON output (default: benchmarks/results/sbi_methods.json, or "
                             "sbi_sequential.json with --sequential)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.out is None:
        args.out = "benchmarks/results/" + (
            "sbi_sequential.json" if args.sequential else "sbi_methods.json")
    results = []
    if args.sequential:
        return run_sequential(args)
    if args.append and os.path.exists(args.out):
        with open(args.out) as f:
            results = json.load(f)
    row_key = lambda r: (r["task"], r["method"], r["num_simulations"], r.get("seed", 0))
    for name in args.tasks:
        sim, x_o, reference, ref_kind = task(name)
        ref = reference(jax.random.key(7), args.num_samples)
        for n in args.num_simulations:
            theta, x = jg.simulate(jax.random.key(n), sim, n)
            for method, seed in itertools.product(args.methods, args.seeds):
                x_transform = None
                if method == "nle" and not args.no_x_transform:
                    x_transform = NLE_X_TRANSFORMS.get(name)
                row = {"task": name, "method": method, "num_simulations": n,
                       "num_samples": args.num_samples, "reference": ref_kind,
                       "x_transform": x_transform, "seed": seed}
                s, t = run_jaxgen(method, jax.random.key(seed), sim, theta, x, x_o,
                                  args.num_samples, x_transform)
                row["jaxgen"] = {**t, "c2st": jg.sbi.c2st(s, ref)}
                if not args.skip_sbi:
                    s, t = run_sbi(method, name, sim, theta, x, x_o, args.num_samples,
                                   x_transform, seed)
                    row["sbi"] = {**t, "c2st": jg.sbi.c2st(s, ref)}
                print(json.dumps(row), flush=True)
                results = [r for r in results if row_key(r) != row_key(row)] + [row]
                with open(args.out, "w") as f:
                    json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
