"""The ``jaxgen`` command."""

from __future__ import annotations

import argparse
import os
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxgen", description="jaxgen: JAX-native physics discovery."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser(
        "quickstart",
        help="run the end-to-end loop on the damped oscillator and write a report and plots",
    )
    q.add_argument("--out", default="jaxgen-output", help="output folder (default: %(default)s)")
    q.add_argument("--fast", action="store_true",
                   help="a seconds-long smoke run with small sizes (also: JAXGEN_FAST=1)")
    q.add_argument("--num-simulations", type=int, default=None,
                   help="training simulations (default 20,000; 2,000 with --fast)")
    q.add_argument("--seed", type=int, default=0, help="PRNG seed (default: %(default)s)")
    q.add_argument("--no-progress", action="store_true", help="hide progress bars")
    sub.add_parser("version", help="print the version")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        from . import __version__

        print(__version__)
        return 0
    from .quickstart import QuickstartConfig, run_quickstart

    fast = args.fast or os.environ.get("JAXGEN_FAST", "") not in ("", "0")
    overrides = dict(output_dir=args.out, seed=args.seed, progress=not args.no_progress)
    if args.num_simulations is not None:
        overrides["num_simulations"] = args.num_simulations
    config = QuickstartConfig.fast(**overrides) if fast else QuickstartConfig(**overrides)
    report = run_quickstart(config)
    print(f"\nWrote: {', '.join(report.files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
