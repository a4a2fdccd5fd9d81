"""Write notebooks/sbi.ipynb (run: python notebooks/make_sbi_notebook.py)."""

from pathlib import Path

import nbformat as nbf

cells = []


def md(text):
    cells.append(nbf.v4.new_markdown_cell(text.strip()))


def code(text):
    cells.append(nbf.v4.new_code_cell(text.strip()))


md("""
# Simulation-based inference with jaxgen

One physics toy, every method. `PartonDetector` is a two-stage simulator: a parton-level
latent `z ~ N(g(theta), 0.5^2)` with a curved mean `g(theta) = (theta_1, theta_2 + theta_1^2/2)`,
smeared by a detector, `x ~ N(z, 0.5^2)`. Its marginal likelihood happens to be known, so every
answer below is checked against the exact posterior; its latent is tractable, so the
"mining gold" methods apply.

Set `JAXGEN_FAST=1` to run everything with tiny sizes (a smoke test, not meaningful numbers).
""")

code("""
import os, time, warnings
import jax, jax.numpy as jnp, numpy as np
import matplotlib
matplotlib.use("Agg")
import jaxgen as jg

FAST = os.environ.get("JAXGEN_FAST") == "1"
N_SIM = 300 if FAST else 5000
EPOCHS = 2 if FAST else 300
N_POST = 200 if FAST else 2000
warnings.simplefilter("ignore", jg.JaxgenWarning)

def small_flow(key, dim, cond_dim):
    return jg.flows.maf(key, dim, cond_dim=cond_dim, num_layers=2 if FAST else 5,
                        hidden_size=16 if FAST else 50)

key = jax.random.key(0)
sim = jg.simulators.PartonDetector()
theta_o = jnp.array([0.8, -0.5])
x_o = sim(jax.random.key(1), theta_o)
# Several i.i.d. events at the same theta, for the likelihood-based methods.
events = jax.vmap(lambda k: sim(k, theta_o))(jax.random.split(jax.random.key(2), 5))
exact = jg.sbi.LikelihoodPosterior(jg.sbi.ExactLikelihood(sim), sim.prior, (2,), 2)
reference = exact.sample(jax.random.key(3), x_o, N_POST)
theta, x = jg.simulate(jax.random.key(4), sim, N_SIM)
""")

md("## Neural posterior estimation, and exact sampling with it as a proposal")
code("""
npe = jg.sbi.npe(key, theta, x, prior=sim.prior, density_estimator=small_flow, max_epochs=EPOCHS)
s_npe = npe.sample(key, x_o, N_POST)
# The likelihood is tractable here: independence Metropolis with the NPE posterior as proposal
# makes the chain exact, and nearly every move is accepted when NPE is good.
imh = exact.with_sampler(jg.sbi.IndependenceMetropolis(jg.sbi.flow_proposal(npe, x_o)))
s_imh, info = imh.sample(key, x_o, N_POST, return_info=True)
print("NPE C2ST", jg.sbi.c2st(s_npe, reference),
      "| exact IMH C2ST", jg.sbi.c2st(s_imh, reference), "acceptance", info.acceptance_rate)
""")

md("## Neural likelihood and ratio estimation (MCMC, i.i.d. events)")
code("""
nle = jg.sbi.nle(key, theta, x, prior=sim.prior, density_estimator=small_flow, max_epochs=EPOCHS)
ref_events = exact.sample(jax.random.key(5), events, N_POST)
t0 = time.perf_counter(); s_nle, info = nle.sample(key, events, N_POST, return_info=True)
print(f"NLE: C2ST {jg.sbi.c2st(s_nle, ref_events):.3f}, R-hat {info.r_hat.max():.3f}, "
      f"sampling {time.perf_counter() - t0:.2f} s (compilation included)")
losses = [jg.sbi.BinaryRatioLoss(), jg.sbi.ContrastiveRatioLoss(), jg.sbi.BalancedRatioLoss()]
for loss in losses[:1] if FAST else losses:
    post = jg.sbi.nre(key, theta, x, prior=sim.prior, loss=loss, max_epochs=EPOCHS,
                      hidden_size=16 if FAST else 64)
    print(type(loss).__name__, "C2ST", jg.sbi.c2st(post.sample(key, events, N_POST), ref_events))
""")

md("## Sequential (truncated) rounds for one observation")
code("""
rounds = jg.sbi.sequential_npe(key, sim, x_o, num_rounds=2, num_simulations=N_SIM // 2,
                               truncate=True, density_estimator=small_flow, max_epochs=EPOCHS)
print("TSNPE with", rounds.num_simulations[-1], "simulations: C2ST",
      jg.sbi.c2st(rounds.posterior.sample(key, x_o, N_POST), reference))
""")

md("## ABC: rejection and SMC with an adaptive tolerance")
code("""
abc = jg.sbi.rejection_abc(key, sim, x_o, num_simulations=20 * N_SIM, quantile=0.01)
smc = jg.sbi.smc_abc(key, sim, x_o, num_particles=N_POST // 2, num_rounds=1 if FAST else 6)
print("rejection ABC C2ST", jg.sbi.c2st(abc.sample(key, x_o, N_POST), reference),
      "| SMC-ABC C2ST", jg.sbi.c2st(smc.sample(key, x_o, N_POST), reference),
      "tolerance", round(smc.tolerance, 3), "simulations", smc.num_simulations)
""")

md("""
## Mining gold: SCANDAL against plain NLE at the same number of simulations

The joint score `grad_theta log p(x, z | theta)` comes from autodiff of the joint density.
SCANDAL adds it to the NLE loss. Compare C2ST against the exact posterior for several
simulation budgets: the gold-augmented estimator reaches a given accuracy with fewer
simulations.
""")
code("""
budgets = [100] if FAST else [250, 500, 1000, 2000]
rows = []
for n in budgets:
    gold = jg.sbi.mine_gold(jax.random.key(n), sim, n)
    plain = jg.sbi.nle(key, gold.theta, gold.x, prior=sim.prior, density_estimator=small_flow,
                       max_epochs=EPOCHS)
    aug = jg.sbi.scandal(key, gold, prior=sim.prior, density_estimator=small_flow,
                         max_epochs=EPOCHS)
    c_plain = jg.sbi.c2st(plain.sample(key, events, N_POST), ref_events)
    c_gold = jg.sbi.c2st(aug.sample(key, events, N_POST), ref_events)
    rows.append((n, c_plain, c_gold))
    print(f"{n:5d} simulations: NLE C2ST {c_plain:.3f}   SCANDAL C2ST {c_gold:.3f}")
""")

md("SALLY: the learned score at a reference point is a near-sufficient summary for ABC.")
code("""
ref_theta = jnp.array([0.5, 0.0])
gold_ref = jg.sbi.mine_gold(key, sim, N_SIM, theta=jnp.tile(ref_theta, (N_SIM, 1)))
summary = jg.sbi.sally(key, gold_ref, max_epochs=EPOCHS)
abc_sally = jg.sbi.rejection_abc(key, sim, x_o, num_simulations=20 * N_SIM, summary=summary)
print("ABC on SALLY summaries: C2ST", jg.sbi.c2st(abc_sally.sample(key, x_o, N_POST), reference))
""")

md("## A frequentist confidence set from the learned ratio")
code("""
grid = jnp.stack(jnp.meshgrid(jnp.linspace(-2, 2, 41), jnp.linspace(-2, 2, 41)), -1).reshape(-1, 2)
nre = jg.sbi.nre(key, theta, x, prior=sim.prior, max_epochs=EPOCHS, hidden_size=16 if FAST else 64)
cs = jg.sbi.likelihood_ratio_test(nre.log_likelihood, events, grid, level=0.68)
print("best fit", cs.best_fit, "points in the 68% set:", int(cs.inside.sum()))
""")

md("## Diagnostics after any method")
code("""
rep = jg.sbi.report(key, npe, sim, x_o, num_tests=30 if FAST else 200,
                    num_posterior_samples=30 if FAST else 200, reference_samples=reference)
print(rep.summary())
rep.figure
""")

nb = nbf.v4.new_notebook()
nb["cells"] = cells
nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbf.write(nb, Path(__file__).with_name("sbi.ipynb"))
