"""``capscale quant-report``: format, bits per weight and reconstruction error per tensor."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    """Register ``capscale quant-report``."""
    p = sub.add_parser(
        "quant-report",
        help="per-tensor format, bits per weight and reconstruction error of a model file",
        description=(
            "Report every tensor of a GGUF file or a GPTQ/AWQ/bitsandbytes safetensors "
            "checkpoint: format, bits per weight and reconstruction error against --reference "
            "(a full-precision GGUF or safetensors file), or, without one, against the float32 "
            "weights re-quantized with the same format."
        ),
    )
    p.add_argument("file", metavar="FILE", help=".gguf file, .safetensors file or folder")
    p.add_argument("--reference", metavar="REF", help="full-precision model to compare with")
    p.add_argument("--select", metavar="TEXT", help="only tensors whose name contains TEXT")
    p.add_argument("--json", metavar="OUT.json", help="also write the records as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``capscale quant-report``."""
    from ..quant.report import quant_report

    rep = quant_report(
        args.file,
        args.reference,
        select=args.select,
        progress=not args.no_progress,
    )
    print(rep.to_text())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "file": rep.path,
                    "bits_per_weight": rep.bits_per_weight,
                    "relative_rmse": rep.relative_rmse,
                    "tensors": rep.records(),
                },
                f,
                indent=1,
            )
    return 0
