"""Writes notebooks/boed.ipynb (run: python notebooks/make_boed_notebook.py)."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell(
        "# Active sciencing: choosing the next measurement by expected information gain\n\n"
        "A toy of the forward-backward asymmetry in $e^+e^- \\to \\mu^+\\mu^-$: the angular "
        "distribution is $1 + \\cos^2\\theta + a_{fb}\\cos\\theta$ with "
        "$a_{fb} = 2\\tanh(10(\\sqrt{s} - 90)/90)\\,g_f$ and $\\sqrt{s} = 2E_{beam}$. We "
        "choose the beam energy $E_{beam} \\in [40, 50]$ GeV that tells us most about $g_f$, "
        "run the experiment, update the posterior exactly, and repeat. Set `JAXGEN_FAST=1` for "
        "a quick run."
    ),
    new_code_cell(
        "import os\n"
        "import jax, jax.numpy as jnp, numpy as np\n"
        "import equinox as eqx\n"
        "import numpyro.distributions as dist\n"
        "import matplotlib.pyplot as plt\n"
        "import jaxgen as jg\n\n"
        "FAST = os.environ.get('JAXGEN_FAST') == '1'\n"
        "key = jax.random.key(0)\n"
        "sim = jg.simulators.Weinberg(num_events=50)\n"
        "estimator = jg.boed.PriorContrastive(num_outer=64 if FAST else 256, num_inner=64 if FAST else 256)"
    ),
    new_markdown_cell(
        "## The prior as a histogram\n"
        "$g_f$ is one number, so its posterior is exact on a fine grid. We write the prior in the "
        "same form (a mixture of narrow Gaussians on the grid, one per cell) so every round "
        "reuses one compiled program."
    ),
    new_code_cell(
        "edges = jnp.linspace(0.5, 1.2, 141)\n"
        "centers = 0.5 * (edges[1:] + edges[:-1])\n\n"
        "def histogram_prior(weights):\n"
        "    cells = dist.Normal(centers[:, None], edges[1] - edges[0]).to_event(1)\n"
        "    return dist.MixtureSameFamily(dist.Categorical(probs=weights), cells)\n\n"
        "log_w = jnp.zeros(centers.shape[0])\n"
        "sim = eqx.tree_at(lambda s: s.prior, sim, histogram_prior(jax.nn.softmax(log_w)))"
    ),
    new_markdown_cell(
        "## EIG as a function of the beam energy\n"
        "The information about $g_f$ grows with $|\\sqrt{s} - 90|$: the best energies are the "
        "edges of the allowed range."
    ),
    new_code_cell(
        "energies = jnp.linspace(40.0, 50.0, 11 if FAST else 41)\n"
        "curve = jax.jit(jax.vmap(lambda e: estimator.estimate(key, sim, e)))(energies)\n"
        "plt.plot(energies, curve)\n"
        "plt.xlabel('beam energy [GeV]'); plt.ylabel('EIG lower bound [nats]');"
    ),
    new_markdown_cell(
        "## The loop: design, measure, update\n"
        "Each round maximizes the EIG by gradient ascent through the simulator "
        "(`jg.boed.optimize_design`). The experiment is simulated at a true $g_f = 0.9$. After each run the posterior "
        "weights are multiplied by the exact likelihood and become the prior of the next "
        "design optimization."
    ),
    new_code_cell(
        "theta_true = jnp.array([0.9])\n"
        "loglik_grid = jax.jit(jax.vmap(lambda g, x, e: sim.log_likelihood(g[None], x, e), (0, None, None)))\n"
        "rounds = []\n"
        "for step in range(2 if FAST else 5):\n"
        "    key, k_design, k_run = jax.random.split(key, 3)\n"
        "    result = jg.boed.optimize_design(k_design, sim, jnp.array(45.0), estimator=estimator,\n"
        "        method=jg.boed.GradientAscent(num_steps=60 if FAST else 150, learning_rate=0.2, num_restarts=2))\n"
        "    x = sim(k_run, theta_true, result.design)                # run the experiment\n"
        "    log_w = log_w + loglik_grid(centers, x, result.design)  # exact Bayes update\n"
        "    weights = jax.nn.softmax(log_w)\n"
        "    sim = eqx.tree_at(lambda s: s.prior, sim, histogram_prior(weights))\n"
        "    mean = float(weights @ centers); sd = float(jnp.sqrt(weights @ (centers - mean) ** 2))\n"
        "    rounds.append((float(result.design), result.eig, mean, sd))\n"
        "    print(f'round {step}: E_beam={float(result.design):.2f} GeV  EIG={result.eig:.3f}  '\n"
        "          f'g_f = {mean:.3f} +- {sd:.3f}')"
    ),
    new_code_cell(
        "plt.plot(centers, jax.nn.softmax(log_w) / (edges[1] - edges[0]))\n"
        "plt.axvline(0.9, color='k', ls=':'); plt.xlabel('$g_f$'); plt.ylabel('posterior density');\n"
        "assert abs(rounds[-1][2] - 0.9) < 4 * rounds[-1][3] + 0.02"
    ),
    new_markdown_cell(
        "Each round picks an energy at an edge of the range, where the asymmetry is largest, and "
        "the posterior narrows around the true value. For simulators whose likelihood is not "
        "tractable, the same loop runs with `jg.boed.InfoNCE()` as the estimator and "
        "`jg.sbi.npe` for the update; `jg.boed.train_policy` amortizes the whole loop into a "
        "network that proposes each design in well under a millisecond."
    ),
    new_markdown_cell(
        "## The same loop with many questions: hyperbolic temporal discounting\n"
        "A participant chooses between $R$ now and 100 after $D$ days; the parameters are the "
        "discount rate $\\log k$ and the choice noise $\\alpha$. Two parameters and yes/no "
        "answers: the posterior is exact on a grid, and so is the one-step EIG of every "
        "candidate question (a sum over the two answers). `jg.boed.grid_designer` does both, "
        "and asks the question with the largest EIG each time."
    ),
    new_code_cell(
        "hyp = jg.simulators.HyperbolicDiscounting()\n"
        "T = 6 if FAST else 20\n"
        "axes = [jnp.linspace(-13.25, 4.75, 40 if FAST else 240),\n"
        "        (jnp.arange(25 if FAST else 100) + 0.5) * (10.0 / (25 if FAST else 100))]\n"
        "designer = jg.boed.grid_designer(hyp, axes, outcomes=jnp.array([0.0, 1.0]),\n"
        "                                 num_candidates=(10, 16) if FAST else (60, 100))\n"
        "designs, answers = designer.rollout(jax.random.key(1), hyp, jnp.array([-5.0, 1.0]), T)\n"
        "for (r, d), a in zip(np.asarray(designs), np.asarray(answers)):\n"
        "    print(f'{r:5.1f} now or 100 in {d:7.1f} days -> {\"later\" if a else \"now\"}')"
    ),
    new_markdown_cell(
        "Its total EIG is bounded like any policy's. Each decision costs a pass over the grid; "
        "`jg.boed.imitate_policy` distills the designer into a network that answers in one "
        "forward pass (DAgger: the network is also taught on the histories its own mistakes "
        "lead to), and `jg.boed.train_policy(..., policy=...)` can then train it further on "
        "the non-myopic sPCE objective."
    ),
    new_code_cell(
        "n_eval = 128 if FAST else 2048\n"
        "greedy = jg.boed.evaluate_policy(key, hyp, designer, T, num_outer=n_eval, num_inner=2000)\n"
        "student, _ = jg.boed.imitate_policy(key, hyp, designer, T, num_rounds=1 if FAST else 3,\n"
        "                                    num_episodes=256 if FAST else 4096,\n"
        "                                    num_epochs=5 if FAST else 30)\n"
        "distilled = jg.boed.evaluate_policy(key, hyp, student, T, num_outer=n_eval, num_inner=2000)\n"
        "print(f'greedy on the grid: {greedy.lower:.2f} +- {greedy.lower_stderr:.2f} nats, '\n"
        "      f'{greedy.seconds_per_design * 1e3:.1f} ms per question')\n"
        "print(f'distilled network:  {distilled.lower:.2f} +- {distilled.lower_stderr:.2f} nats, '\n"
        "      f'{distilled.seconds_per_design * 1e3:.2f} ms per question')"
    ),
]

nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                       "language": "python"}})
out = Path(__file__).resolve().parent / "boed.ipynb"
nbformat.write(nb, out)
print(out)
