"""Markdown tables from the JSON files in ``benchmarks/results/``, for the README.

Usage:
    python benchmarks/report.py            # print the tables
    python benchmarks/report.py --readme   # rewrite the block between the README's markers

Only the files present are reported; each table names the script and the command behind it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
README = os.path.join(os.path.dirname(HERE), "README.md")
BEGIN, END = "<!-- benchmark tables: begin -->", "<!-- benchmark tables: end -->"


def _load(name: str):
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def npe_table(res) -> list[str]:
    cfg = res["config"]
    out = [
        f"**NPE vs sbi {_sbi_version(res)}** (`python benchmarks/sbi_npe.py`: "
        f"{cfg['num_simulations']:,} simulations, {cfg['num_samples']:,} samples for each of "
        f"{cfg['num_observations']} observations; sbi with one torch thread; times include "
        f"JAX compilation; C2ST 0.5 is perfect)",
        "",
        "| task | flow | C2ST jaxgen | C2ST sbi | train s jaxgen / sbi | sample s jaxgen / sbi "
        "| jaxgen speed-up (train + sample) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, task in res["tasks"].items():
        for est, rows in task.items():
            j, s = rows["jaxgen"], rows.get("sbi")
            if s is None:
                continue
            out.append(
                f"| {name} | {est} | {j['c2st_mean']:.3f} | {s['c2st_mean']:.3f} | "
                f"{j['train_s']:.1f} / {s['train_s']:.1f} | {j['sample_s']:.2f} / "
                f"{s['sample_s']:.2f} | {rows['speedup_total']:.1f}x |"
            )
    return out


def _sbi_version(res) -> str:
    return res.get("sbi_version", "0.27")


METHOD_LABELS = {"nle": "NLE", "nre": "NRE-B (contrastive, 10 atoms)", "nre_a": "NRE-A (binary)"}


def methods_table(rows) -> list[str]:
    n = rows[0]["num_simulations"]
    refs = sorted({f"{r['task']}: {r['reference']}" for r in rows
                   if "reference" in r and r["task"] in ("sir", "lotka_volterra")})
    ref_text = "; ".join(refs) if refs else "SIR scored against an exact-likelihood MCMC reference"
    out = [
        f"**NLE and NRE vs sbi** (`python benchmarks/sbi_methods.py --tasks "
        f"{' '.join(dict.fromkeys(r['task'] for r in rows))} --num-simulations {n}`; "
        f"{ref_text}; {rows[0]['num_samples']:,} posterior samples by "
        f"MCMC for one observation; the same method on both sides (sbi's `NRE` is NRE-B); "
        f"jaxgen's first sampling call includes compilation; "
        f"R-hat above 1.05 is reported with a warning, never silently"
        + "".join(f"; {r['task']} {METHOD_LABELS.get(r['method'], r['method'])} models "
                  f"{r['x_transform']}(x) on both sides" for r in rows if r.get("x_transform"))
        + ")",
        "",
        "| task | method | C2ST jaxgen | C2ST sbi | train s jaxgen / sbi | sample s jaxgen "
        "(first / compiled) / sbi | R-hat jaxgen |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        j, s = r["jaxgen"], r.get("sbi")
        if s is None:
            continue
        out.append(
            f"| {r['task']} | {METHOD_LABELS.get(r['method'], r['method'])} | {j['c2st']:.3f} | "
            f"{s['c2st']:.3f} | "
            f"{j['train_s']:.1f} / {s['train_s']:.1f} | {j['sample_first_call_s']:.1f} / "
            f"{j['sample_s']:.2f} / {s['sample_s']:.1f} | {j['r_hat_max']:.2f} |"
        )
    return out


def seeds_table(rows) -> list[str]:
    """C2ST over several training seeds per tool (same simulations), mean +- standard error."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if "sbi" in r:
            groups.setdefault((r["task"], r["method"]), []).append(r)
    # One command per group of tasks run with the same methods and seeds (`--append` adds a
    # group's rows to the file).
    runs: dict[tuple, list[str]] = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        methods = tuple(dict.fromkeys(r["method"] for r in mine))
        seeds = tuple(sorted({r.get("seed", 0) for r in mine}))
        runs.setdefault((methods, seeds), []).append(task)
    commands = "; ".join(
        f"`python benchmarks/sbi_methods.py --tasks {' '.join(tasks)} --methods "
        f"{' '.join(methods)} --seeds {' '.join(map(str, seeds))} --append "
        "--out benchmarks/results/sbi_methods_seeds.json`"
        for (methods, seeds), tasks in runs.items()
    )
    out = [
        f"**Training-seed spread** ({commands}: the same 10,000 simulations, one training per "
        "seed and tool; C2ST mean +- standard error, and each seed's value)",
        "",
        "| task | method | seeds | C2ST jaxgen | C2ST sbi | jaxgen per seed | sbi per seed |",
        "|---|---|---|---|---|---|---|",
    ]

    def stats(values):
        v = np.asarray(values, float)
        se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
        return f"{v.mean():.3f} +- {se:.3f}", ", ".join(f"{x:.3f}" for x in v)

    for (task, method), rs in groups.items():
        j_mean, j_each = stats([r["jaxgen"]["c2st"] for r in rs])
        s_mean, s_each = stats([r["sbi"]["c2st"] for r in rs])
        label = METHOD_LABELS.get(method, method)
        if rs[0].get("x_transform"):
            label += f", {rs[0]['x_transform']} x on both sides"
        out.append(f"| {task} | {label} | {len(rs)} | {j_mean} | "
                   f"{s_mean} | {j_each} | {s_each} |")
    return out


def sequential_table(rows) -> list[str]:
    budgets = sorted({r["num_simulations"] for r in rows})
    snle_budgets = sorted({r["num_simulations"] for r in rows if "snle_c2st" in r})
    rounds = sorted({r.get("rounds", 3) for r in rows})
    out = [
        "**Sequential vs amortized** (`python benchmarks/sbi_methods.py --sequential --tasks "
        f"{' '.join(dict.fromkeys(r['task'] for r in rows))} --num-simulations "
        f"{' '.join(map(str, budgets))}`, and for SNLE `--sequential --skip-amortized "
        f"--sequential-methods snle --num-simulations {' '.join(map(str, snle_budgets))}`: "
        "amortized NPE against "
        "truncated sequential NPE and NRE (TSNPE, TSNRE) and sequential NLE (SNLE) with the "
        f"same total number of simulations, split over {' or '.join(map(str, rounds))} rounds; "
        "C2ST against the references of the table above)",
        "",
    ]
    methods = [m for m in ("tsnpe", "tsnre", "snle") if any(f"{m}_c2st" in r for r in rows)]
    out.append("| task | simulations | NPE (amortized) | "
               + " | ".join(m.upper() for m in methods) + " |")
    out.append("|---|---|---|" + "---|" * len(methods))
    cell = lambda r, m: f"{r[f'{m}_c2st']:.3f}" if f"{m}_c2st" in r else "-"  # noqa: E731
    for r in rows:
        out.append(
            f"| {r['task']} | {r['num_simulations']:,} | {cell(r, 'npe')} | "
            + " | ".join(cell(r, m) for m in methods) + " |"
        )
    return out


def gold_table(res) -> list[str]:
    summary = res.get("summary", [])
    reps = len({r["repeat"] for r in res["rows"]})
    out = [
        "**Mining gold** (`python benchmarks/sbi_gold.py --budgets "
        f"{' '.join(str(x['num_simulations']) for x in summary)} --repeats {reps}`: NLE vs "
        "SCANDAL (NLE plus the joint "
        f"score from autodiff) on the PartonDetector toy, {res['num_events']} i.i.d. events, "
        f"C2ST against the exact posterior, mean +- s.e. over {reps} repetitions; the last "
        "column is the budget plain NLE needs for SCANDAL's accuracy, interpolated on NLE's "
        "curve)",
        "",
        "| simulations | C2ST NLE | C2ST SCANDAL | NLE simulations for the same C2ST |",
        "|---|---|---|---|",
    ]
    pm = lambda v, e: f"{v:.3f}" + ("" if e is None else f" +- {e:.3f}")  # noqa: E731
    for s in summary:
        eq = s["nle_budget_for_same_c2st"]
        eq_text = (f"more than {summary[-1]['num_simulations']:,}" if eq is None
                   and s["scandal_c2st"] < summary[-1]["nle_c2st"] else
                   "-" if eq is None else f"{eq:,.0f} ({s['simulations_saved_factor']:.1f}x)")
        out.append(
            f"| {s['num_simulations']:,} | {pm(s['nle_c2st'], s['nle_c2st_sem'])} | "
            f"{pm(s['scandal_c2st'], s['scandal_c2st_sem'])} | {eq_text} |"
        )
    return out


def sweep_table(res) -> list[str]:
    n = res["config"]["num_simulations"]
    out = [
        f"**Simulation sweeps** (`python benchmarks/sweep.py`: {n:,} simulations; the loop calls "
        f"the jitted single-example simulator once per row)",
        "",
        "| simulator | jg.simulate sims/s | jitted Python loop sims/s | NumPy sims/s | "
        "vs loop | vs NumPy |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in res["simulators"].items():
        out.append(
            f"| {name} | {r['jaxgen_sims_per_s']:,.0f} | {r['python_loop_sims_per_s']:,.0f} | "
            f"{r['numpy_sims_per_s']:,.0f} | {r['speedup_vs_loop']:.0f}x | "
            f"{r['speedup_vs_numpy']:.1f}x |"
        )
    return out


def _boed_command(res, section, options) -> str:
    """The `boed.py --only SECTION` command with the options a section's results recorded."""
    a = res.get(f"{section}_args") or res.get("args") or {}
    opts = "".join(f" --{k.replace('_', '-')} {a[k]}" for k in options if k in a)
    if a.get("seed", 0):
        opts += f" --seed {a['seed']}"
    return f"`python benchmarks/boed.py --only {section}{opts}`"


def boed_table(res) -> list[str]:
    lg = res.get("linear_gaussian")
    out = []
    if lg:
        lg_command = _boed_command(res, "linear_gaussian", [
            "lg_outer", "lg_inner", "lg_repeats", "lg_learned_repeats", "lg_train_steps"])
        out += [
            f"**EIG estimators on linear-Gaussian regression** ({lg_command}; "
            f"closed-form EIG {lg['exact']:.4f} nats; learned estimators are trained, then "
            f"scored on fresh samples)",
            "",
            "| estimator | kind | EIG (nats) | std. error | error vs exact | seconds |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in lg["estimators"].items():
            out.append(
                f"| {name} | {r['kind']} | {r['eig']:.4f} | {r['stderr']:.4f} | "
                f"{r['error']:+.4f} | {r['seconds']:.1f} |"
            )
    w = res.get("weinberg")
    if w:
        out += ["", f"Weinberg design: gradient ascent finds the beam energy at the edge of "
                f"[40, 50] GeV ({w['best_energy']:.2f} GeV, EIG {w['eig']:.3f} +- "
                f"{w['stderr']:.3f}); {w['seconds_second_call']:.2f} s once compiled, "
                f"{w['seconds_with_compile']:.1f} s with compilation."]
    return out


_HYPERBOLIC_OPTIONS = ["hyperbolic_steps", "hyperbolic_lr", "final_lr_fraction", "train_outer",
                       "train_inner", "eval_outer", "eval_inner"]


def _changed_options(main_args, args) -> str:
    """The hyperbolic command's options that ``args`` changed from ``main_args``."""
    return " ".join(f"--{k.replace('_', '-')} {args[k]}" for k in _HYPERBOLIC_OPTIONS + ["seed"]
                    if k in args and args[k] != main_args.get(k, 0 if k == "seed" else None))


def dad_table(res, variants=()) -> list[str]:
    """``variants``: ``(name, results)`` of the hyperbolic section rerun with some options changed
    (``--seed``, the batch) and ``--out benchmarks/results/boed_dad_NAME.json``."""
    common = ["train_outer", "train_inner", "eval_outer", "eval_inner"]
    out = [
        "**Sequential design policies** ("
        + _boed_command(res, "death_process",
                        ["death_steps", "death_lr", "final_lr_fraction"] + common)
        + " and "
        + _boed_command(res, "hyperbolic", _HYPERBOLIC_OPTIONS)
        + ", merged in `results/boed_dad.json`"
        + ("; rows marked with options ran the hyperbolic command with those options and "
           "`--out benchmarks/results/boed_dad_NAME.json`, NAME as in the row"
           if variants else "")
        + "; total EIG over T experiments, sPCE lower / sNMC upper bound)",
        "",
        "| problem | design | EIG lower (sPCE) | EIG upper (sNMC) | published | training s "
        "| s per design |",
        "|---|---|---|---|---|---|---|",
    ]
    d = res.get("death_process")
    if d:
        f, p = d["fixed"], d["dad"]
        out.append(f"| death process, T = 4 | static, gradient ascent | {f['lower']:.3f} +- "
                   f"{f['lower_stderr']:.3f} | {f['upper']:.3f} +- {f['upper_stderr']:.3f} | "
                   f"{f['published']} | {f['seconds']:.0f} | - |")
        out.append(f"| death process, T = 4 | DAD policy | {p['lower']:.3f} +- "
                   f"{p['lower_stderr']:.3f} | {p['upper']:.3f} +- {p['upper_stderr']:.3f} | "
                   f"{p['published']} | {p['train_seconds']:.0f} | "
                   f"{p['seconds_per_design']:.5f} |")
    runs = [("DAD policy", res.get("hyperbolic"))]
    main_args = res.get("hyperbolic_args") or res.get("args") or {}
    runs += [(f"DAD policy, `{_changed_options(main_args, r.get('args', {}))}` ({name})",
              r.get("hyperbolic")) for name, r in variants]
    for label, h in runs:
        if h:
            out.append(f"| hyperbolic discounting, T = 20 | {label} | {h['lower']:.3f} +- "
                       f"{h['lower_stderr']:.3f} | {h['upper']:.3f} +- {h['upper_stderr']:.3f} | "
                       f"{h['published_dad']} | {h['train_seconds']:.0f} | "
                       f"{h['seconds_per_design']:.5f} |")
    return out


def _list_option(value) -> str:
    return " ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def grid_table(res) -> list[str]:
    """Greedy design with the exact grid posterior, and the policy distilled from it."""
    out = []
    for section, options in [
        ("greedy_grid", ["grid_points", "grid_candidates", "grid_death_eval_outer",
                         "eval_outer", "eval_inner"]),
        ("imitation", ["grid_points", "grid_candidates", "imitation_rounds",
                       "imitation_episodes", "imitation_epochs", "imitation_finetune_steps",
                       "imitation_finetune_lr", "eval_outer", "eval_inner"]),
    ]:
        a = res.get(f"{section}_args") or {}
        opts = "".join(f" --{k.replace('_', '-')} {_list_option(a[k])}" for k in options
                       if k in a and not (k.startswith("imitation_finetune") and
                                          not a.get("imitation_finetune_steps")))
        if section in res:
            out.append(f"`python benchmarks/boed.py --only {section}{opts} "
                       f"--out benchmarks/results/boed_grid.json`")
    if not out:
        return []
    lines = [
        "**Greedy design with the exact posterior on a grid, and a policy distilled from it** ("
        + " and ".join(out) + "; total EIG over T experiments, sPCE lower / sNMC upper bound; "
        "the greedy designer asks, each time, the candidate question of largest one-step EIG "
        "under the grid posterior)",
        "",
        "| problem | design | EIG lower (sPCE) | EIG upper (sNMC) | published DAD | build or "
        "training s | s per design |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {"death_process": "death process, T = 4",
             "hyperbolic": "hyperbolic discounting, T = 20"}
    for name, g in (res.get("greedy_grid") or {}).items():
        lines.append(
            f"| {names.get(name, name)} | greedy, exact posterior on {g['grid_points']:,} grid "
            f"points, {g['candidates']:,} candidates | {g['lower']:.3f} +- "
            f"{g['lower_stderr']:.3f} | {g['upper']:.3f} +- {g['upper_stderr']:.3f} | "
            f"{g['published_dad']} | {g['build_seconds']:.0f} | {g['seconds_per_design']:.5f} |")
    m = res.get("imitation")
    if m:
        how = (f"DAD policy distilled from the greedy designer ({m['rounds']} rounds of "
               f"{m['episodes_per_round']:,} episodes, DAgger)")
        if m.get("finetune_steps"):
            how += f", then {m['finetune_steps']:,} sPCE steps at {m['finetune_lr']:g}"
        lines.append(
            f"| hyperbolic discounting, T = 20 | {how} | {m['lower']:.3f} +- "
            f"{m['lower_stderr']:.3f} | {m['upper']:.3f} +- {m['upper_stderr']:.3f} | "
            f"{m['published_dad']} | {m['train_seconds']:.0f} | {m['seconds_per_design']:.5f} |")
    return lines


def symbolic_table(res, name) -> list[str]:
    proto = res["protocol"]
    out = [
        f"**Symbolic regression, AI Feynman equations** (`{name} --equations "
        f"{len(proto['equations'])} --budget {proto['budget_s']:g} --noise "
        f"{' '.join(f'{v:g}' for v in proto['noise'])}`: {len(proto['equations'])} "
        f"equations, {proto['budget_s']:.0f} s per equation and tool, {proto['train_points']} "
        f"training points; exact = SRBench symbolic criterion with test R^2 > 0.999)",
        "",
        "| tool | noise | exact recoveries | median test R^2 |",
        "|---|---|---|---|",
    ]
    for key, s in res["summary"].items():
        tool, noise = key.split("@")
        out.append(f"| {tool} | {noise} | {s['exact']} / {s['of']} | {s['median_test_r2']:.6f} |")
    ev = res.get("evaluator")
    if ev:
        out += ["", f"Population evaluator: {ev['grouped_evals_per_second']:,.0f} expressions/s "
                f"(1,000 rows, trees up to {ev['max_nodes']} nodes) grouped by operator, against "
                f"{ev['vmapped_evals_per_second']:,.0f}/s for a vmapped every-operator evaluator."]
    return out


def tables() -> str:
    parts: list[list[str]] = []
    if (r := _load("sbi_npe.json")) is not None:
        parts.append(npe_table(r))
    if (r := _load("sbi_methods.json")) is not None and r:
        parts.append(methods_table(r))
    if (r := _load("sbi_methods_seeds.json")) is not None and r:
        parts.append(seeds_table(r))
    if (r := _load("sbi_sequential.json")) is not None and r:
        parts.append(sequential_table(r))
    if (r := _load("sbi_gold.json")) is not None and r.get("summary"):
        parts.append(gold_table(r))
    if (r := _load("sweep.json")) is not None:
        parts.append(sweep_table(r))
    if (r := _load("boed.json")) is not None:
        parts.append(boed_table(r))
    if (r := _load("boed_dad.json")) is not None:
        variants = []
        for path in sorted(glob.glob(os.path.join(RESULTS, "boed_dad_*.json"))):
            name = os.path.basename(path)[len("boed_dad_"):-len(".json")]
            variants.append((name, _load(os.path.basename(path))))
        parts.append(dad_table(r, variants))
    if (r := _load("boed_grid.json")) is not None:
        parts.append(grid_table(r))
    if (r := _load("boed_pk.json")) is not None and "pharmacokinetic" in r:
        pk = r["pharmacokinetic"]
        parts.append([
            "**Implicit SDE model, pharmacokinetic sampling times** (`python benchmarks/boed.py "
            "--only pharmacokinetic --out benchmarks/results/boed_pk.json`: InfoNCE with a "
            "learned critic, gradients through the diffrax Euler-Maruyama solve): EIG "
            f"{pk['eig_design0']:.2f} +- {pk['eig_design0_stderr']:.2f} nats at the times "
            f"{pk['design0']} h, {pk['eig_optimized']:.2f} +- {pk['eig_optimized_stderr']:.2f} "
            f"at the optimized times {[round(t, 1) for t in pk['design']]} h (both re-scored "
            f"with a freshly trained critic; optimization {pk['optimize_seconds']:.0f} s)."
        ])
    for path in sorted(glob.glob(os.path.join(RESULTS, "symbolic*.json"))):
        with open(path) as f:
            res = json.load(f)
        if "summary" in res:  # a run still in progress has no summary yet
            parts.append(symbolic_table(res, "python benchmarks/symbolic.py"))
    return "\n\n".join("\n".join(p) for p in parts if p)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--readme", action="store_true", help="rewrite the README's table block")
    args = p.parse_args(argv)
    text = tables()
    if not args.readme:
        print(text)
        return
    with open(README) as f:
        readme = f.read()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block to rewrite.")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(README, "w") as f:
        f.write(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    print(f"rewrote the tables in {README}")


if __name__ == "__main__":
    main()
