"""``capscale games run | score | transcript | list``: clembench-style games into a store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    """Register ``capscale games`` and its subcommands."""
    g = sub.add_parser(
        "games",
        help="conversational games (clembench): run, score, transcripts",
        description="Self-play of clembench 1.x games, stored turn by turn, scored as clembench.",
    )
    gs = g.add_subparsers(dest="games_command", metavar="SUBCOMMAND")
    g.set_defaults(run=lambda a: (g.print_help(), 2)[1])

    r = gs.add_parser("run", help="play a game's instances with a model (self-play)")
    r.add_argument("--model", required=True, help="model source (e.g. smollm2-135m)")
    r.add_argument("--name", help="model name recorded in the store (default: --model)")
    r.add_argument("--precision", default="shipped", help="shipped, fp32, int4-g128, nf4 …")
    r.add_argument("--game", required=True, action="append", help="game name (repeatable)")
    r.add_argument("--experiment", action="append", help="only this experiment (repeatable)")
    r.add_argument("--limit", type=int, help="first N instances of each experiment")
    r.add_argument("--instances", help="instance file (default: the game's shipped set)")
    r.add_argument("--store", default="capscale-results.db", help="results store (SQLite)")
    r.add_argument("--max-new-tokens", type=int, default=100)
    r.add_argument("--device", help="cpu, cuda … (default: CUDA when available)")
    r.add_argument("--dtype", default="auto")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(run=run_cmd)

    s = gs.add_parser("score", help="clembench's table (%% played, quality, clemscore) with CIs")
    s.add_argument("--store", default="capscale-results.db")
    s.add_argument("--game", action="append", help="only these games")
    s.add_argument("--by", choices=("model+precision", "model"), default="model+precision")
    s.add_argument("--n-resamples", type=int, default=2000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--episodes", action="store_true", help="also list the episodes (row ids)")
    s.add_argument(
        "--clembench",
        action="append",
        default=[],
        metavar="PATH",
        help=(
            "put published clembench results beside the store's: a runs tree or zip of "
            "per-episode scores.json files (aggregated like ours), or a results .csv table "
            "(printed as published); repeatable"
        ),
    )
    s.set_defaults(run=score_cmd)

    t = gs.add_parser("transcript", help="write an episode's HTML transcript")
    t.add_argument("--store", default="capscale-results.db")
    t.add_argument(
        "--episode", required=True, help="episode row id, or RUN_ID/EXPERIMENT/EPISODE_ID"
    )
    t.add_argument("--out", required=True, help="output .html file")
    t.set_defaults(run=transcript_cmd)

    ls = gs.add_parser("list", help="list the registered games")
    ls.set_defaults(run=list_cmd)


def run_cmd(args: argparse.Namespace) -> int:
    from ..eval.models import load_model
    from ..games import get_game, run_game
    from ..store import Store

    for game in args.game:
        get_game(game)  # fail fast on unknown names
    kw: dict[str, Any] = {"dtype": args.dtype, "device": args.device}
    loaded = load_model(args.model, name=args.name, **kw)
    with Store(args.store) as store:
        for game in args.game:
            res = run_game(
                loaded,
                game,
                args.precision,
                store,
                experiments=args.experiment,
                limit=args.limit,
                seed=args.seed,
                instances=args.instances,
                max_new_tokens=args.max_new_tokens,
                progress=not args.no_progress,
            )
            state = "already done" if res.skipped_run else f"{res.n_episodes} new episodes"
            print(
                f"{res.game} [{res.model} {res.precision}] run {res.run_id}: {state}; "
                f"played {res.played}, aborted {res.aborted}, failed {res.failed}, "
                f"skipped {res.n_skipped} ({res.seconds:.1f} s)"
            )
    return 0


def score_cmd(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..games import episode_table
    from ..stats import clem_table, clemscore, read_clembench_scores
    from ..store import Store

    with Store(args.store, create=False) as store:
        df = episode_table(store, label=args.by, game=args.game)
        failed = len(episode_table(store, label=args.by, game=args.game, include_failed=True))
        failed -= len(df)
        published = [p for p in args.clembench if not str(p).lower().endswith(".csv")]
        for path in published:
            theirs = read_clembench_scores(path).rename(columns={"episode": "episode_id"})
            theirs["system"] = theirs["model"].astype(str) + " [clembench]"
            if args.game:
                theirs = theirs[theirs["game"].isin(args.game)]
            df = pd.concat([df, theirs], ignore_index=True, sort=False)
        if len(df) == 0:
            print("no game episodes in the store", file=sys.stderr)
            return 1
        table = clem_table(df, model="system")
        ci = clemscore(df, model="system", n_resamples=args.n_resamples, seed=args.seed)
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            print(table.T.to_string())
            print()
            print(ci.to_string(index=False))
        if failed:
            print(f"\n{failed} failed episode(s) (backend errors) are not counted, as clembench.")
        for path in args.clembench:
            if str(path).lower().endswith(".csv"):
                print(f"\npublished clembench table {path}:")
                print(pd.read_csv(path).to_string(index=False))
        if args.episodes:
            rows = store.conn.execute(
                "SELECT id, run_id, game, experiment, episode_id FROM episodes ORDER BY id"
            ).fetchall()
            print("\nepisode  run  game / experiment / id")
            for r in rows:
                print(f"{r[0]:>7}  {r[1]:>3}  {r[2]} / {r[3]} / {r[4]}")
    return 0


def transcript_cmd(args: argparse.Namespace) -> int:
    from ..games.transcript import write_transcript
    from ..store import Store

    with Store(args.store, create=False) as store:
        write_transcript(store, args.episode, args.out)
    print(args.out)
    return 0


def list_cmd(args: argparse.Namespace) -> int:
    from ..games import get_game, list_games

    for name in list_games():
        cls = get_game(name)
        print(f"{name:20s} v{cls.version}  players: {', '.join(cls.roles)}")
    return 0
