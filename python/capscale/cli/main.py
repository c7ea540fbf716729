"""Entry point of the ``capscale`` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import CapscaleError
from . import eval_cmds, games_cmd, laws_cmd, quant_cmd, report_cmd, store_cmds
from . import fit as fit_cmd
from . import summarize as summarize_cmd


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="capscale",
        description="Evaluate language models, aggregate scores and fit scaling laws.",
    )
    parser.add_argument("--version", action="version", version=f"capscale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    fit_cmd.add_parser(sub)
    store_cmds.add_parser(sub)
    summarize_cmd.add_parser(sub)
    laws_cmd.add_parser(sub)
    report_cmd.add_parser(sub)
    quant_cmd.add_parser(sub)
    eval_cmds.add_parser(sub)
    games_cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except (CapscaleError, OSError) as exc:
        print(f"capscale {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
