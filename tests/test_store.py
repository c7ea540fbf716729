"""The results store: round trips, idempotence, crash resumption, concurrency, migration."""

from __future__ import annotations

import json
import math
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capscale.cli.main import main
from capscale.errors import (
    CapscaleError,
    FormatError,
    InvalidInputError,
    NonFiniteError,
    UnknownNameError,
)
from capscale.store import EPISODE_SCORES, SCHEMA_VERSION, Store, open_store, schema

CARD = {
    "name": "pythia-70m",
    "family": "pythia",
    "n_params": 70_426_624,
    "n_params_non_embedding": 18_915_328,
    "training_tokens": 299_892_736_000,
    "training_flops": 1.26e20,
    "release_date": "2023-02-13",
    "context_length": 2048,
    "license": "apache-2.0",
    "extra": {"hf_id": "EleutherAI/pythia-70m"},
}
INT4 = {"format": "affine", "bits": 4, "group_size": 128, "symmetric": False}
TASK = ("arc_easy", "1")


def _records(ids, run_shift=0.0):
    return [
        {
            "item_id": f"q{i}",
            "subtask": "easy" if i % 2 else "hard",
            "request": {"context": f"Question {i}?", "choices": ["a", "b"]},
            "prediction": "a",
            "scores": {"acc": float(i % 2), "acc_norm": (i % 3) / 2 + run_shift},
            "loglikelihoods": [-1.5 - i, -2.25],
            "tokens": 10 + i,
            "latency_s": 0.01 * i,
        }
        for i in ids
    ]


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "results.db") as s:
        yield s


# -- round trips ------------------------------------------------------------------------------


def test_model_precision_task_round_trip(store) -> None:
    mid = store.upsert_model(CARD)
    assert store.upsert_model({"name": "pythia-70m"}) == mid  # absent fields keep their value
    models = store.models()
    assert len(models) == 1
    row = models.iloc[0]
    for key in ("name", "family", "n_params", "training_tokens", "context_length", "license"):
        assert row[key] == CARD[key]
    assert row["training_flops"] == CARD["training_flops"]
    assert row["release_date"] == pd.Timestamp("2023-02-13")
    assert row["extra"] == '{"hf_id":"EleutherAI/pythia-70m"}'
    store.upsert_model({"name": "pythia-70m", "license": "mit"})  # given fields overwrite
    assert store.models()["license"].tolist() == ["mit"]

    pid = store.upsert_precision(INT4)
    assert store.upsert_precision(dict(reversed(list(INT4.items())))) == pid  # canonical JSON
    assert store.upsert_precision({"format": "fp16"}) == store.upsert_precision(
        {"format": "fp16", "bits": 16}
    )
    prec = store.precisions().set_index("precision_id").loc[pid]
    assert (prec["name"], prec["format"], prec["bits"], prec["group_size"]) == (
        "affine-4bit-g128",
        "affine",
        4.0,
        128,
    )
    assert not prec["symmetric"]

    tid = store.upsert_task("arc_easy", 1, {"split": "test"})
    assert store.upsert_task("arc_easy", "1") == tid
    assert store.tasks().to_dict("records") == [
        {"task_id": tid, "name": "arc_easy", "version": "1", "config": '{"split":"test"}'}
    ]


def test_runs_and_records_round_trip(store) -> None:
    run = store.start_run(CARD, INT4, TASK, {"shots": 0, "batch": 8}, seed=1, context_length=1024)
    assert store.add_records(run, _records(range(6))) == 6
    store.finish_run(run)
    runs = store.runs()
    assert runs[["run_id", "model", "precision", "task", "task_version"]].values.tolist() == [
        [run, "pythia-70m", "affine-4bit-g128", "arc_easy", "1"]
    ]
    r = runs.iloc[0]
    assert (r["status"], r["n_records"], r["n_episodes"], r["seed"]) == ("done", 6, 0, 1)
    assert r["context_length"] == 1024 and r["finished_at"] >= r["started_at"]
    assert r["config"] == '{"batch":8,"shots":0}'

    df = store.records()
    assert df["item_id"].tolist() == [f"q{i}" for i in range(6)]
    assert df["score_acc"].tolist() == [float(i % 2) for i in range(6)]
    assert df["score_acc_norm"].tolist() == [(i % 3) / 2 for i in range(6)]
    assert df["tokens"].tolist() == [10 + i for i in range(6)]
    np.testing.assert_allclose(df["latency_s"], [0.01 * i for i in range(6)])
    assert df["loglikelihoods"][2] == "[-3.5,-2.25]"
    assert df["n_params"].unique().tolist() == [CARD["n_params"]]
    assert df["bits"].unique().tolist() == [4.0]
    cols = list(df.columns)
    assert cols.index("subtask") + 1 == cols.index("score_acc")
    assert list(store.records(metrics=["acc_norm"]).filter(like="score_")) == ["score_acc_norm"]
    bare = store.records(score_prefix="")
    assert "acc" in bare.columns and "score_acc" not in bare.columns


def test_filters_select_rows(store) -> None:
    a = store.start_run(CARD, "fp16", TASK, seed=0)
    b = store.start_run(CARD, INT4, TASK, seed=0)
    c = store.start_run({"name": "gpt2", "n_params": 124e6}, "fp16", ("hellaswag", 2), seed=0)
    for run, n in ((a, 3), (b, 4), (c, 5)):
        store.add_records(run, _records(range(n)))
    assert len(store.records(run_id=b)) == 4
    assert len(store.records(run_id=[a, c])) == 8
    assert len(store.records(model="pythia-70m")) == 7
    assert len(store.records(precision="fp16")) == 8
    assert len(store.records(precision="fp16", task="arc_easy")) == 3
    assert len(store.records(model=["gpt2", "pythia-70m"], task=["hellaswag"])) == 5


def test_nan_and_none_scores_read_back_as_nan(store) -> None:
    run = store.start_run(CARD, "fp16", TASK)
    store.add_records(
        run,
        [
            {"item_id": 1, "scores": {"acc": float("nan"), "bleu": None}},
            {"item_id": np.int64(2), "scores": {"acc": np.float32(1.0), "exact": True}},
        ],
    )
    df = store.records()
    assert df["item_id"].tolist() == ["1", "2"]  # int item ids are stored as strings
    assert math.isnan(df["score_acc"][0]) and df["score_acc"][1] == 1.0
    assert df["score_bleu"].isna().all()
    assert df["score_exact"].tolist()[1] == 1.0 and math.isnan(df["score_exact"][0])
    raw = store.conn.execute("SELECT scores FROM records ORDER BY id").fetchone()[0]
    assert raw == '{"acc":null,"bleu":null}'  # strict JSON, queryable with json_extract


def test_episodes_and_turns_round_trip(store) -> None:
    run = store.start_run(CARD, "bf16", ("clembench", "1.6"), {"temperature": 0.0})
    played = {
        "Aborted": 0,
        "Lose": 0,
        "Success": 1,
        "Request Count": 2,
        "Parsed Request Count": 2,
        "Violated Request Count": 0,
        "Request Success Ratio": 1.0,
        "Main Score": 50.0,
        "Game Specific": 7,
    }
    aborted = {**dict.fromkeys(EPISODE_SCORES, 0), "Aborted": 1, "Main Score": float("nan")}
    turns = [
        {
            "turn": t,
            "player": p,
            "prompt": [{"role": "user", "content": f"turn {t}"}],
            "raw_reply": f"CLUE: x{t}",
            "parsed": {"clue": f"x{t}"},
            "events": [{"type": "parse", "content": "ok"}],
        }
        for t in range(2)
        for p in ("Player 1", "Player 2")
    ]
    ep0 = {"game": "taboo", "experiment": "0_high_en", "episode_id": 0, "instance": {"w": "cat"}}
    assert store.add_episode(run, {**ep0, "scores": played}, turns)
    assert store.add_episode(run, {**ep0, "episode_id": 1, "scores": aborted}, turns[:1])
    assert not store.add_episode(run, {**ep0, "scores": aborted}, [])  # idempotent: skipped
    assert store.done_episodes(run) == {("taboo", "0_high_en", "0"), ("taboo", "0_high_en", "1")}

    eps = store.episodes()
    assert eps["episode_id"].tolist() == ["0", "1"]
    assert [c for c in eps.columns if c.startswith("score_")] == [
        *(f"score_{n}" for n in EPISODE_SCORES),
        "score_Game Specific",
    ]
    assert eps["score_Main Score"][0] == 50.0 and math.isnan(eps["score_Main Score"][1])
    assert eps["score_Aborted"].tolist() == [0.0, 1.0]
    assert eps["n_turns"].tolist() == [2, 1]
    assert eps["instance"][0] == '{"w":"cat"}'
    assert store.episodes(score_prefix="")["Main Score"][0] == 50.0
    assert store.runs()["n_episodes"].tolist() == [2]

    tdf = store.turns(game="taboo")
    assert len(tdf) == 5
    first = tdf.iloc[1]
    assert (first["episode_id"], first["turn"], first["player"]) == ("0", 0, "Player 2")
    assert first["raw_reply"] == "CLUE: x0" and first["parsed"] == '{"clue":"x0"}'


# -- idempotence, transactions, resumption ---------------------------------------------------


def test_records_are_idempotent_and_calls_atomic(store) -> None:
    run = store.start_run(CARD, "fp16", TASK, {"shots": 5}, seed=0)
    assert store.add_records(run, _records(range(10))) == 10
    assert store.add_records(run, _records(range(10))) == 0  # same records again: one copy
    assert store.add_records(run, _records(range(5, 15), run_shift=9.0)) == 5  # first wins
    df = store.records()
    assert df["item_id"].is_unique and len(df) == 15
    assert df.set_index("item_id").loc["q5", "score_acc_norm"] == (5 % 3) / 2
    # A call with one bad record writes nothing, even the good ones before it.
    bad = [*_records(range(100, 110)), {"item_id": "x", "scores": {"acc": float("inf")}}]
    with pytest.raises(NonFiniteError, match=r"record 10 \(item_id 'x'\) 'scores'\['acc'\]"):
        store.add_records(run, bad)
    assert len(store.done_items(run)) == 15

    # Same identity → same unfinished run; a finished run is never reopened.
    assert store.start_run("pythia-70m", "fp16", TASK, {"shots": 5}, seed=0) == run
    assert store.start_run("pythia-70m", "fp16", TASK, {"shots": 5}, seed=1) != run
    store.finish_run(run)
    store.finish_run(run)  # idempotent
    assert store.start_run("pythia-70m", "fp16", TASK, {"shots": 5}, seed=0) != run


_WRITER = """
import sys, time
from capscale.store import Store
path, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with Store(path) as s:
    run = s.start_run("pythia-70m", "fp16", ("arc_easy", "1"), {"shots": 0}, seed=0)
    done = s.done_items(run)
    todo = [i for i in range(n) if f"q{i}" not in done]
    for k in range(0, len(todo), batch):
        recs = [{"item_id": f"q{i}", "scores": {"acc": i % 2}} for i in todo[k : k + batch]]
        s.add_records(run, recs)
        time.sleep(0.003)
    s.finish_run(run)
"""


def test_writer_killed_with_sigkill_resumes_with_every_item_once(tmp_path) -> None:
    path = tmp_path / "kill.db"
    n, batch = 2000, 4
    with Store(path) as s:
        s.upsert_model(CARD)
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(n), str(batch)])
    try:
        with Store(path) as reader:
            deadline = time.monotonic() + 30
            seen = 0
            while seen < 300:
                assert proc.poll() is None, "the writer ended before it was killed"
                assert time.monotonic() < deadline, "the writer made no progress"
                time.sleep(0.02)
                seen = reader.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with Store(path) as s:
        assert s.runs()["status"].tolist() == ["running"]
        run = s.start_run("pythia-70m", "fp16", ("arc_easy", "1"), {"shots": 0}, seed=0)
        assert run == s.runs()["run_id"].item()  # resumed, not duplicated
        done = s.done_items(run)
        assert 300 <= len(done) < n
        assert len(done) % batch == 0  # the transaction in flight was rolled back whole
        todo = [i for i in range(n) if f"q{i}" not in done]
        added = s.add_records(run, [{"item_id": f"q{i}", "scores": {"acc": i % 2}} for i in todo])
        assert added == n - len(done)
        s.finish_run(run)
        df = s.records()
        runs = s.runs()
    assert sorted(df["item_id"]) == sorted(f"q{i}" for i in range(n))
    assert df["item_id"].is_unique
    assert df["score_acc"].sum() == n // 2
    assert runs["status"].tolist() == ["done"] and runs["n_records"].tolist() == [n]


def test_concurrent_readers_see_whole_transactions_only(tmp_path) -> None:
    path = tmp_path / "concurrent.db"
    batches, batch = 40, 25
    with Store(path) as s:
        run = s.start_run(CARD, "fp16", TASK)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with Store(path) as w:
                for b in range(batches):
                    w.add_records(run, _records(range(b * batch, (b + 1) * batch)))
                    time.sleep(0.002)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    counts: list[int] = []
    writer = threading.Thread(target=write)
    with Store(path) as reader:
        writer.start()
        while True:
            finished = not writer.is_alive()
            df = reader.records(run_id=run)
            counts.append(len(df))
            assert df["item_id"].is_unique
            assert reader.runs()["n_records"].item() >= len(df)
            if finished:
                break
        writer.join()
    assert not errors
    assert counts[-1] == batches * batch
    assert counts == sorted(counts)  # monotone
    assert all(c % batch == 0 for c in counts)  # never half a transaction
    assert len(set(counts)) > 2  # the reader really read while the writer wrote


# -- schema versions --------------------------------------------------------------------------


def _v1_store(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        schema.create_schema(conn, version=1)
        conn.execute(
            "INSERT INTO models (id, name, n_params, created_at) "
            "VALUES (1, 'old-model', 1000000, '2024-01-01T00:00:00+00:00')"
        )
        conn.execute(
            "INSERT INTO precisions (id, name, format, bits, spec) "
            "VALUES (1, 'fp16', 'fp16', 16, '{\"format\":\"fp16\"}')"
        )
        conn.execute("INSERT INTO tasks (id, name, version) VALUES (1, 'arc_easy', '1')")
        conn.execute(
            "INSERT INTO runs (id, model_id, precision_id, task_id, code_version, seed, host, "
            "started_at, status) VALUES (1, 1, 1, 1, '0.0.1', 0, 'h', "
            "'2024-01-01T00:00:00+00:00', 'running')"
        )
        conn.executemany(
            "INSERT INTO records (run_id, item_id, scores, created_at) "
            "VALUES (1, ?, ?, '2024-01-01T00:00:01+00:00')",
            [(f"q{i}", f'{{"acc":{i % 2}}}') for i in range(3)],
        )
        conn.execute(
            "INSERT INTO episodes (run_id, game, experiment, episode_id, scores, created_at) "
            "VALUES (1, 'taboo', 'high', '0', '{\"Aborted\":1,\"Main Score\":null}', "
            "'2024-01-01T00:00:02+00:00')"
        )
        conn.execute("COMMIT")
        assert {r[1] for r in conn.execute("PRAGMA table_info(records)")}.isdisjoint(
            {"tokens", "latency_s"}
        )
    finally:
        conn.close()


def _tables(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: conn.execute(f"PRAGMA table_info({n})").fetchall() for n in sorted(names)}
    finally:
        conn.close()


def test_migration_from_version_1_to_2(tmp_path) -> None:
    old = tmp_path / "v1.db"
    _v1_store(old)
    with Store(old) as s:
        assert s.opened_version == 1 and s.schema_version == SCHEMA_VERSION == 3
        df = s.records()
        assert df["item_id"].tolist() == ["q0", "q1", "q2"]
        assert df["score_acc"].tolist() == [0.0, 1.0, 0.0]
        assert df["tokens"].isna().all() and df["latency_s"].isna().all()
        eps = s.episodes()
        assert eps["score_Aborted"].tolist() == [1.0] and eps["score_Main Score"].isna().all()
        # The v2 additions work on the migrated file; the old run resumes.
        run = s.start_run("old-model", "fp16", "arc_easy", seed=0)
        assert run == 1
        s.add_records(run, [{"item_id": "q3", "scores": {"acc": 1}, "tokens": 7, "latency_s": 0.5}])
        s.add_episode(
            run,
            {"game": "taboo", "experiment": "high", "episode_id": 1, "scores": {"Aborted": 0}},
            [{"turn": 0, "player": "GM", "raw_reply": "hi"}],
        )
        assert s.records()["tokens"].tolist()[-1] == 7
        assert len(s.turns()) == 1
        migrated = s.conn.execute("SELECT value FROM meta WHERE key='migrated_1_to_2'").fetchone()
        assert migrated is not None
    # A migrated file has exactly the tables and columns of a freshly created one.
    fresh = tmp_path / "fresh.db"
    Store(fresh).close()
    assert _tables(old) == _tables(fresh)
    with Store(old) as s:  # reopening does not migrate again
        assert s.opened_version == 3


def test_migration_from_version_2_to_3_and_weight_error(tmp_path) -> None:
    old = tmp_path / "v2.db"
    conn = sqlite3.connect(old, isolation_level=None)
    conn.execute("BEGIN")
    schema.create_schema(conn, 2)
    conn.execute("COMMIT")
    conn.close()
    with Store(old) as s:
        assert s.opened_version == 2 and s.schema_version == 3
        run = s.start_run({"name": "m"}, "fp16", ("t", "1"), config={"k": 1}, seed=0)
        s.add_records(run, [{"item_id": "a", "scores": {"acc": 1}}])
        assert s.completed_run("m", "fp16", ("t", "1"), config={"k": 1}, seed=0) is None
        s.set_weight_error(run, {"relative_rmse": 0.08, "sqnr_db": 21.9, "layers": 14})
        s.finish_run(run)
        assert s.completed_run("m", "fp16", ("t", "1"), config={"k": 1}, seed=0) == run
        assert s.completed_run("m", "fp16", ("t", "1"), config={"k": 2}, seed=0) is None
        rec = s.records()
        assert rec["weight_rel_rmse"].tolist() == [0.08]
        assert json.loads(s.runs()["weight_error"].iloc[0])["layers"] == 14
        s.set_weight_error(run, None)
        assert s.records()["weight_rel_rmse"].isna().all()
        with pytest.raises(InvalidInputError, match="must be a mapping"):
            s.set_weight_error(run, [1, 2])  # type: ignore[arg-type]
        with pytest.raises(UnknownNameError, match="unknown run id 99"):
            s.set_weight_error(99, {})
        assert s.conn.execute("SELECT value FROM meta WHERE key='migrated_2_to_3'").fetchone()
    fresh = tmp_path / "fresh.db"
    Store(fresh).close()
    assert _tables(old) == _tables(fresh)


def test_newer_schema_version_is_refused(tmp_path) -> None:
    path = tmp_path / "future.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(FormatError, match=r"schema version 99, newer than schema version 3"):
        Store(path)


def test_non_store_files_are_refused(tmp_path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("this is not a database, just some text\n" * 20)
    with pytest.raises(FormatError, match="not an SQLite database"):
        open_store(text)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    with conn:
        conn.execute("CREATE TABLE stuff (x)")
    conn.close()
    with pytest.raises(FormatError, match=r"not a capscale store.*tables: stuff"):
        Store(other)
    with pytest.raises(FileNotFoundError, match="no capscale store"):
        Store(tmp_path / "missing.db", create=False)


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "exc", "match"),
    [
        ([{"scores": {"acc": 1}}], InvalidInputError, r"record 0: missing 'item_id'"),
        ([{"item_id": "a"}], InvalidInputError, r"record 0 \(item_id 'a'\): missing 'scores'"),
        ([{"item_id": "a", "scores": [1.0]}], InvalidInputError, "scores' must be a mapping"),
        ([{"item_id": "a", "scores": {"acc": "high"}}], InvalidInputError, "must be a number"),
        ([{"item_id": "a", "scores": {"acc": -math.inf}}], NonFiniteError, "must be finite"),
        ([{"item_id": 1.5, "scores": {}}], InvalidInputError, "'item_id' must be a non-empty"),
        ([{"item_id": "a", "score": {}}], UnknownNameError, "did you mean 'scores'"),
        ([{"item_id": "a", "scores": {}, "tokens": -1}], InvalidInputError, "must be >= 0"),
        ([{"item_id": "a", "scores": {}, "request": {"x": object()}}], InvalidInputError, "JSON"),
        ([{"item_id": "a", "scores": {}}] * 2, InvalidInputError, "appears twice"),
        (["a"], InvalidInputError, "record 0 must be a mapping"),
    ],
)
def test_malformed_records_raise(store, records, exc, match) -> None:
    run = store.start_run(CARD, "fp16", TASK)
    with pytest.raises(exc, match=match):
        store.add_records(run, records)
    assert store.done_items(run) == set()


def test_bad_arguments_raise_clear_errors(store) -> None:
    run = store.start_run(CARD, "fp16", TASK)
    store.add_records(run, _records(range(2)))
    with pytest.raises(UnknownNameError, match=r"unknown run id 999; the store's runs: 1"):
        store.add_records(999, [])
    with pytest.raises(UnknownNameError, match="unknown run id 42"):
        store.done_items(42)
    with pytest.raises(UnknownNameError, match="did you mean 'failed'"):
        store.finish_run(run, status="fialed")
    with pytest.raises(UnknownNameError, match=r"unknown model 'pythia-70'.*did you mean"):
        store.records(model="pythia-70")
    with pytest.raises(UnknownNameError, match=r"unknown task 'arc_esay'; did you mean 'arc_easy'"):
        store.records(task="arc_esay")
    with pytest.raises(UnknownNameError, match="unknown run_id 7"):
        store.records(run_id=7)
    with pytest.raises(UnknownNameError, match=r"unknown game 'tabo'; did you mean 'taboo'\?"):
        store.add_episode(run, {"game": "taboo", "experiment": "e", "episode_id": 0, "scores": {}})
        store.episodes(game="tabo")
    with pytest.raises(UnknownNameError, match="unknown metric 'acc_nrom'; did you mean"):
        store.records(metrics=["acc_nrom"])
    with pytest.raises(InvalidInputError, match="filter model must hold str values"):
        store.records(model=[3])
    with pytest.raises(InvalidInputError, match="'model' would become column 'model'"):
        store.add_records(run, [{"item_id": "z", "scores": {"model": 1.0}}])
        store.records(score_prefix="")
    with pytest.raises(UnknownNameError, match="unknown export format 'parqet'; did you mean"):
        store.export(store.path + ".out", format="parqet")
    with pytest.raises(UnknownNameError, match="unknown field 'n_param'; did you mean 'n_params'"):
        store.upsert_model({"name": "m", "n_param": 3})
    with pytest.raises(InvalidInputError, match="'release_date' must be an ISO date"):
        store.upsert_model({"name": "m", "release_date": "13/02/2023"})
    with pytest.raises(InvalidInputError, match="'n_params' must be an integer"):
        store.upsert_model({"name": "m", "n_params": 1.5})
    with pytest.raises(UnknownNameError, match="unknown precision format 'nf5'; did you mean"):
        store.upsert_precision({"format": "nf5"})
    with pytest.raises(UnknownNameError, match="unknown precision 'fp61'; did you mean 'fp16'"):
        store.start_run(CARD, "fp61", TASK)
    with pytest.raises(UnknownNameError, match="unknown model 'pythia70m'; did you mean"):
        store.start_run("pythia70m", "fp16", TASK)
    with pytest.raises(InvalidInputError, match="stored with a different config"):
        store.upsert_task("mmlu", 1, {"shots": 5})
        store.upsert_task("mmlu", 1, {"shots": 0})
    with pytest.raises(InvalidInputError, match="appears twice"):
        turn = {"turn": 0, "player": "A"}
        ep = {"game": "g", "experiment": "e", "episode_id": 1, "scores": {}}
        store.add_episode(run, ep, [turn, turn])
    store.finish_run(run)
    with pytest.raises(InvalidInputError, match=r"run 1 is finished \(status 'done'\)"):
        store.add_records(run, _records(range(3)))
    store.close()
    with pytest.raises(CapscaleError, match="is closed"):
        store.runs()


# -- export and CLI ---------------------------------------------------------------------------


def _filled_store(path: Path) -> None:
    with Store(path) as s:
        a = s.start_run(CARD, INT4, TASK, {"shots": 0}, seed=0)
        s.add_records(a, _records(range(4)))
        s.add_records(a, [{"item_id": "nan", "scores": {"acc": None, "rouge": 0.5}}])
        s.finish_run(a)
        b = s.start_run({"name": "gpt2"}, "fp16", ("clembench", "1.6"), context_length=512)
        ep = {"game": "taboo", "experiment": "high", "episode_id": 0, "instance": {"w": "x"}}
        s.add_episode(
            b,
            {**ep, "scores": {"Aborted": 1, "Main Score": math.nan}},
            [{"turn": 0, "player": "Player 1", "raw_reply": "x, y", "parsed": None}],
        )


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_round_trips(tmp_path, fmt) -> None:
    path = tmp_path / "s.db"
    _filled_store(path)
    with Store(path) as s:
        written = s.export(tmp_path / "out", format=fmt)
        frames = {
            "models": s.models(),
            "precisions": s.precisions(),
            "tasks": s.tasks(),
            "runs": s.runs(),
            "records": s.records(),
            "episodes": s.episodes(),
            "turns": s.turns(),
        }
    assert sorted(written) == sorted(frames)
    for name, expected in frames.items():
        assert written[name] == tmp_path / "out" / f"{name}.{fmt}"
        if fmt == "parquet":
            pd.testing.assert_frame_equal(pd.read_parquet(written[name]), expected)
            continue
        text = {c: str for c in expected.columns if pd.api.types.is_string_dtype(expected[c])}
        back = pd.read_csv(written[name], dtype=text, keep_default_na=False, na_values=[""])
        assert list(back.columns) == list(expected.columns)
        for col in expected.columns:
            dtype = expected[col].dtype
            if isinstance(dtype, pd.DatetimeTZDtype):
                back[col] = pd.to_datetime(back[col], utc=True, format="ISO8601").dt.as_unit("us")
            elif dtype.kind == "M":
                back[col] = pd.to_datetime(back[col], format="ISO8601").dt.as_unit("us")
            else:
                back[col] = back[col].astype(dtype)
        pd.testing.assert_frame_equal(back, expected)


def test_cli_runs_and_export(tmp_path, capsys) -> None:
    path = tmp_path / "s.db"
    _filled_store(path)
    assert main(["runs", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "id", "model", "precision", "task", "ctx", "seed", "status", "records", "episodes",
        "started", "finished",
    ]  # fmt: skip
    assert out[1].split()[:9] == [
        "1", "pythia-70m", "affine-4bit-g128", "arc_easy@1", "-", "0", "done", "5", "0",
    ]  # fmt: skip
    assert out[2].split()[:9] == [
        "2", "gpt2", "fp16", "clembench@1.6", "512", "-", "running", "0", "1",
    ]  # fmt: skip
    assert out[2].split()[-1] == "-"  # not finished
    assert main(["runs", str(path), "--status", "done"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2

    assert main(["export", str(path), "--out", str(tmp_path / "csv"), "--format", "csv"]) == 0
    assert "records.csv" in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "csv" / "records.csv")) == 5
    assert main(["export", str(path), "--out", str(tmp_path / "pq")]) == 0
    assert len(pd.read_parquet(tmp_path / "pq" / "episodes.parquet")) == 1

    assert main(["export", str(path), "--out", str(tmp_path / "x"), "--format", "xlsx"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("capscale export: error: unknown export format 'xlsx'")
    assert main(["runs", str(tmp_path / "missing.db")]) == 2
    assert "capscale runs: error: no capscale store at" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "text.db").write_text("hello " * 100)
    assert main(["runs", str(tmp_path / "text.db")]) == 2
    assert "not an SQLite database" in capsys.readouterr().err
    assert main(["runs", str(path), "--status", "dnoe"]) == 2
    assert "did you mean 'done'" in capsys.readouterr().err
    empty = tmp_path / "empty.db"
    Store(empty).close()
    assert main(["runs", str(empty)]) == 0
    assert "no runs" in capsys.readouterr().out


def test_import_of_store_does_not_import_pandas() -> None:
    code = "import sys, capscale.store; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
