"""Hugging Face transformers causal LMs as an evaluation backend.

:class:`HFBackend` follows lm-evaluation-harness 0.4.13's ``HFLM`` (``backend="causal"``,
``logits_cache=True``) request for request, so scores are comparable with published
lm-eval numbers:

* tokenisation (``TemplateLM._encode_pair``): trailing whitespace of the context moves to the
  continuation; ``context + continuation`` and ``context`` are encoded and split **by length**;
  an empty context is replaced by the prefix token (``prefix_token_id``, else BOS, else EOS);
  BOS follows the tokenizer's default unless ``add_bos_token`` is given, and a text that
  already starts with the prefix token's string gets no special tokens;
* scoring (``HFLM._loglikelihood_tokens``): input ``(ctx + cont)[-(max_length + 1):][:-1]``
  (left truncation, with a :class:`~capscale.errors.CapscaleWarning`), batches right-padded
  with token 0 and no attention mask, ``log_softmax`` in ``softmax_dtype`` (default: the
  logits' dtype), ``ll = sum log p(cont)``, ``is_greedy = all(argmax == cont)``;
* ordering: longest ``ctx + cont`` first (ties by the token tuple); requests sharing
  ``ctx + cont[:-1]`` are scored by one forward pass (lm-eval's one-token cache, with the
  continuation read from the trailing positions, so a group gives the same numbers as
  separate passes); results come back in the caller's order;
* rolling log-likelihood: lm-eval's ``get_rolling_token_windows`` + ``make_disjoint_window``
  with ``context_len=1``; ``max_length`` sets the window;
* generation: greedy, left-padded batches, contexts left-truncated to
  ``max_length - max_new_tokens``, stop strings (plus the EOS string) cut the text.

Differences that do not change results beyond float rounding: in batches of two or more
requests the output head is applied only to the positions that are scored
(``logits_to_keep``); the log-softmax is taken only over scored positions; per-request sums
are taken in float64. This makes scoring faster and lighter than lm-eval's full
``[batch, length, vocab]`` log-softmax. At batch size 1 the per-token log-probabilities are
those of lm-eval bit for bit on the CPU (the sums differ by lm-eval's float32 rounding).
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ...errors import (
    CapscaleWarning,
    FormatError,
    InvalidInputError,
    MissingDependencyError,
)
from ..requests import GenerationRequest, LoglikelihoodRequest, RollingRequest
from .base import Backend

try:
    import torch
    import transformers
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        "the Hugging Face backend needs torch and transformers: pip install 'capscale[torch]'"
    ) from exc

__all__ = ["HFBackend", "get_rolling_token_windows", "make_disjoint_window"]

#: ``transformers``' "no limit" value of ``tokenizer.model_max_length``.
TOKENIZER_INFINITY = 1000000000000000019884624838656
#: lm-eval's fallback context length when neither config nor tokenizer gives one.
DEFAULT_MAX_LENGTH = 2048
#: ``batch_size="auto"`` on a CPU: the forward pass is compute-bound there, so a moderate
#: batch of length-sorted requests is as fast as a large one and pads less.
CPU_AUTO_BATCH_SIZE = 16

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}

Pair = tuple[list[int], list[int]]


# -- lm-eval's rolling windows (lm_eval/utils.py, 0.4.13) ------------------------------------


def get_rolling_token_windows(
    token_list: Sequence[int], prefix_token: int, max_seq_len: int, context_len: int = 1
) -> Iterable[Pair]:
    """Cut ``token_list`` into ``(input, predicted)`` windows of at most ``max_seq_len``.

    The first window is ``[prefix] + tokens[:L-1]`` predicting ``tokens[:L]``; each later one
    predicts up to ``max_seq_len - context_len + 1`` new tokens, conditioned on the preceding
    tokens. Score only the last ``len(predicted)`` positions of each input.
    """
    if not 1 <= context_len <= max_seq_len:
        raise InvalidInputError(
            f"context_len must be in [1, max_seq_len={max_seq_len}], got {context_len}"
        )
    tokens = list(token_list)
    if not tokens:
        return
    pred_len = max_seq_len - context_len + 1
    first = min(max_seq_len, len(tokens))
    yield [prefix_token, *tokens[: first - 1]], tokens[:first]
    predicted = first
    while predicted < len(tokens):
        window_pred_len = min(len(tokens) - predicted, pred_len)
        end = predicted + window_pred_len
        yield tokens[end - max_seq_len - 1 : end - 1], tokens[end - window_pred_len : end]
        predicted += window_pred_len


def make_disjoint_window(pair: Pair) -> Pair:
    """Drop the overlap of a window's input with its predictions (lm-eval's helper)."""
    a, b = pair
    return a[: len(a) - (len(b) - 1)], b


# -- argument helpers -------------------------------------------------------------------------


def _torch_dtype(dtype: Any, *, name: str = "dtype") -> Any:
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return _DTYPES[dtype.lower()]
    raise InvalidInputError(
        f"{name} must be one of float32, bfloat16, float16 (or a torch.dtype), got {dtype!r}"
    )


def _resolve_device(device: Any) -> Any:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidInputError(f"device must be a torch device name, got {device!r}") from exc


def _load_dtype(dtype: Any, device: Any) -> Any:
    """``"auto"``: bfloat16 (float16 without bf16 support) on CUDA, float32 elsewhere."""
    if isinstance(dtype, str) and dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return _torch_dtype(dtype)


def _looks_like_path(s: str) -> bool:
    """A string meant as a file-system path (not a hub id like ``org/name``)."""
    if os.path.isabs(s) or s.startswith((".", "~")) or "\\" in s:
        return True
    return s.count("/") > 1 or s.endswith((".gguf", ".safetensors", ".bin"))


def _short(text: str, limit: int = 60) -> str:
    r = repr(text)
    return r if len(r) <= limit else r[: limit - 4] + "...'"


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class _StopOnStrings(transformers.StoppingCriteria):  # type: ignore[misc]
    """Per-row stop: the generated text (after the prompt) contains one of the row's strings."""

    def __init__(self, tokenizer: Any, stops: list[list[str]], prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        self.prompt_len = prompt_len

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        done = []
        for row, stops in zip(input_ids[:, self.prompt_len :].tolist(), self.stops, strict=True):
            text = self.tokenizer.decode(row, skip_special_tokens=False) if stops else ""
            done.append(any(s in text for s in stops))
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class HFBackend(Backend):
    """A transformers causal LM + tokenizer answering evaluation requests like lm-eval's HFLM.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        An already-loaded causal LM (put in eval mode here).
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer (not modified).
    device : str or torch.device, optional
        Where to run; the model is moved there. Default: where the model already is.
    batch_size : int or "auto"
        Requests per forward pass. ``"auto"`` on CUDA finds the largest batch that fits,
        halving from ``max_batch_size`` on out-of-memory with the longest request (as lm-eval's
        ``_detect_batch_size``), and halves again if a later batch runs out of memory; on a
        CPU it is ``min(max_batch_size, 16)``.
    max_batch_size : int
        Upper bound of the automatic batch size (lm-eval's default, 64).
    max_length : int, optional
        Context window in tokens: longer requests are left-truncated, rolling windows have
        this length. Default: the config's ``n_positions`` / ``max_position_embeddings`` /
        ``n_ctx``, else the tokenizer's ``model_max_length``, else 2048.
    add_bos_token : bool, optional
        Force (True) or suppress (False) the tokenizer's special tokens; None keeps the
        tokenizer's default (lm-eval >= 0.4.9.2).
    prefix_token_id : int, optional
        Token that conditions empty contexts and the first rolling window; default BOS, else
        EOS.
    softmax_dtype : str or torch.dtype, optional
        Dtype of the log-softmax; default the logits' dtype (as lm-eval).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        device: Any = None,
        batch_size: int | str = "auto",
        max_batch_size: int = 64,
        max_length: int | None = None,
        add_bos_token: bool | None = None,
        prefix_token_id: int | None = None,
        softmax_dtype: Any = None,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise InvalidInputError(
                f"model must be a loaded transformers model, got {type(model).__name__}; "
                "use HFBackend.from_pretrained(path) to load one"
            )
        if tokenizer is None or not callable(getattr(tokenizer, "encode", None)):
            raise InvalidInputError(
                f"tokenizer must be a transformers tokenizer, got {type(tokenizer).__name__}"
            )
        if not (batch_size == "auto" or _is_pos_int(batch_size)):
            raise InvalidInputError(
                f"batch_size must be a positive integer or 'auto', got {batch_size!r}"
            )
        if not _is_pos_int(max_batch_size):
            raise InvalidInputError(
                f"max_batch_size must be a positive integer, got {max_batch_size!r}"
            )
        if add_bos_token is not None and not isinstance(add_bos_token, bool):
            raise InvalidInputError(f"add_bos_token must be a bool or None, got {add_bos_token!r}")
        if prefix_token_id is not None and not (
            isinstance(prefix_token_id, int) and not isinstance(prefix_token_id, bool)
        ):
            raise InvalidInputError(
                f"prefix_token_id must be an integer token id, got {prefix_token_id!r}"
            )
        self._tokenizer = tokenizer
        self._model: Any = model
        if device is not None:
            self._device = _resolve_device(device)
            model.to(self._device)
        else:
            self._device = _model_device(model)
        model.eval()
        self._batch_size: int | str = batch_size
        self._max_batch_size = int(max_batch_size)
        self._max_length: int | None = None
        if max_length is not None:
            self.max_length = max_length
        self.add_bos_token = add_bos_token
        self._custom_prefix_token_id = prefix_token_id
        self.softmax_dtype = (
            None if softmax_dtype is None else _torch_dtype(softmax_dtype, name="softmax_dtype")
        )
        if self.prefix_token_id is None:
            raise InvalidInputError(
                "the tokenizer has neither a BOS nor an EOS token: pass prefix_token_id="
            )
        self._prefix_str = tokenizer.decode([self.prefix_token_id])
        self._keep_mode = _logits_to_keep_mode(model)
        self._forward_kw = {"use_cache": False} if _accepts(model, "use_cache") else {}
        self._detected: dict[tuple[int, int], int] = {}

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | os.PathLike[str],
        *,
        dtype: Any = "auto",
        device: Any = None,
        revision: str | None = None,
        local_files_only: bool | None = None,
        **kw: Any,
    ) -> HFBackend:
        """Load a causal LM and its tokenizer from a local folder or a hub id.

        ``dtype="auto"`` is bfloat16 on CUDA (float16 where bf16 is unsupported) and float32
        on the CPU. ``device`` defaults to CUDA when available. Offline, a local folder (or a
        hub id already in the cache) loads without network; ``local_files_only`` defaults
        to True for folders and when ``HF_HUB_OFFLINE`` is set. Keyword arguments named like
        the constructor's (``batch_size``, ``max_length`` …) configure the backend; the rest
        go to ``AutoModelForCausalLM.from_pretrained``. A ``.gguf`` file path is loaded with
        :meth:`from_gguf`.

        Raises
        ------
        FileNotFoundError
            A path that does not exist, or a hub id that cannot be found (offline: not cached).
        """
        backend_kw = {k: kw.pop(k) for k in _BACKEND_KW if k in kw}
        path = os.fspath(path_or_id)
        dev = _resolve_device(device)
        if os.path.isfile(path) and path.endswith(".gguf"):
            return cls.from_gguf(path, dtype=_load_dtype(dtype, dev), device=dev, **backend_kw)
        local = os.path.isdir(path)
        if not local and (_looks_like_path(path) or os.path.exists(path)):
            raise FileNotFoundError(f"model path {path!r} does not exist (or is not a folder)")
        if local_files_only is None:
            local_files_only = local or _env_true("HF_HUB_OFFLINE")
        torch_dtype = _load_dtype(dtype, dev)
        common: dict[str, Any] = {"local_files_only": local_files_only}
        if revision is not None:
            common["revision"] = revision
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, **common)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                path, dtype=torch_dtype, **common, **kw
            )
        except OSError as exc:
            where = "folder" if local else "hub id (offline: not in the local cache?)"
            raise FileNotFoundError(f"cannot load model {path!r} from this {where}: {exc}") from exc
        model.to(dev)
        return cls(model, tokenizer, device=dev, **backend_kw)

    @classmethod
    def from_gguf(
        cls,
        path: str | os.PathLike[str],
        *,
        dtype: Any = "float32",
        device: Any = None,
        **kw: Any,
    ) -> HFBackend:
        """Load a GGUF file through capscale's own loader and dequantization kernels.

        The transformers config comes from the file's metadata
        (:meth:`capscale.quant.GGUFFile.transformers_config`), the weights from
        :meth:`~capscale.quant.GGUFFile.state_dict` (dequantized to ``dtype``), the tokenizer
        from the GGUF metadata via ``AutoTokenizer.from_pretrained(folder, gguf_file=name)``.
        Keyword arguments configure the backend (``batch_size``, ``max_length`` …).

        Raises
        ------
        FileNotFoundError
            ``path`` does not exist.
        FormatError
            Not a GGUF file, or its tensors do not fill the model built from its config.
        """
        from ...quant import GGUFFile

        unknown = sorted(set(kw) - set(_BACKEND_KW))
        if unknown:
            raise InvalidInputError(f"from_gguf got unexpected keyword arguments {unknown}")
        p = os.fspath(path)
        if not os.path.isfile(p):
            raise FileNotFoundError(f"GGUF file {p!r} does not exist")
        dev = _resolve_device(device)
        torch_dtype = _torch_dtype(dtype)
        f = GGUFFile(p)
        config = f.transformers_config()
        model = model_from_state_dict(config, f.state_dict(torch_dtype), torch_dtype, p)
        folder, name = os.path.split(os.path.abspath(p))
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model.to(dev)
        return cls(model, tokenizer, device=dev, **kw)

    # -- properties ----------------------------------------------------------------------------

    @property
    def model(self) -> Any:
        """The wrapped transformers model."""
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The wrapped tokenizer."""
        return self._tokenizer

    @property
    def device(self) -> Any:
        """The torch device the model runs on."""
        return self._device

    @property
    def batch_size(self) -> int | str:
        """The configured batch size (an int or ``"auto"``)."""
        return self._batch_size

    @property
    def max_length(self) -> int:
        """Context window in tokens (settable: the context-length axis of a sweep)."""
        if self._max_length is not None:
            return self._max_length
        return _resolve_max_length(self._model.config, self._tokenizer)

    @max_length.setter
    def max_length(self, value: int) -> None:
        if not _is_pos_int(value):
            raise InvalidInputError(f"max_length must be a positive integer, got {value!r}")
        self._max_length = int(value)

    @property
    def eot_token_id(self) -> int | None:
        """End-of-text token id (the tokenizer's EOS)."""
        eos = self._tokenizer.eos_token_id
        return None if eos is None else int(eos)

    @property
    def prefix_token_id(self) -> int | None:
        """Token that conditions empty contexts: the custom one, else BOS, else EOS."""
        if self._custom_prefix_token_id is not None:
            return self._custom_prefix_token_id
        bos = self._tokenizer.bos_token_id
        return int(bos) if bos is not None else self.eot_token_id

    def count_parameters(self) -> tuple[int, int]:
        """``(total, non_embedding)`` parameter counts of the model.

        Embedding parameters are the input embedding plus the output head when it is not
        tied to it; shared tensors are counted once.
        """
        total = sum(p.numel() for p in self._model.parameters())
        emb_in: Any = self._model.get_input_embeddings()
        embedding = emb_in.weight.numel()
        emb_out: Any = self._model.get_output_embeddings()
        if emb_out is not None and emb_out.weight is not emb_in.weight:
            embedding += emb_out.weight.numel()
        return int(total), int(total - embedding)

    def __repr__(self) -> str:
        name = getattr(self._model.config, "name_or_path", "") or type(self._model).__name__
        return (
            f"HFBackend({name!r}, device={self._device}, dtype={self._model.dtype}, "
            f"max_length={self.max_length}, batch_size={self._batch_size!r})"
        )

    # -- tokenisation (lm-eval's tok_encode / _encode_pair) -----------------------------------

    def tok_encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        """Token ids of ``text`` as lm-eval 0.4.13 encodes them.

        ``add_special_tokens=None``: the tokenizer's default, or ``add_bos_token`` when set;
        a text that already starts with the prefix token's string gets none.
        """
        kw: dict[str, bool] = {}
        if add_special_tokens is not None:
            kw["add_special_tokens"] = add_special_tokens
        elif self.add_bos_token is not None:
            kw["add_special_tokens"] = self.add_bos_token
        if add_special_tokens is None and text.startswith(self._prefix_str):
            kw["add_special_tokens"] = False
        return list(self._tokenizer.encode(text, **kw))

    def _encode_pair(
        self, context: str, continuation: str, cache: dict[str, list[int]] | None = None
    ) -> Pair:
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.tok_encode(context + continuation)
        if cache is None:
            ctx = self.tok_encode(context)
        else:  # choices of one question share their context: encode it once
            if context not in cache:
                cache[context] = self.tok_encode(context)
            ctx = cache[context]
        return list(ctx), whole[len(ctx) :]

    def _encode_request(
        self, i: int, req: LoglikelihoodRequest, cache: dict[str, list[int]] | None = None
    ) -> Pair:
        if req.context == "":
            cont = self.tok_encode(req.continuation, add_special_tokens=False)
            if not cont:
                raise InvalidInputError(
                    f"loglikelihood request {i} (context='', continuation="
                    f"{_short(req.continuation)}) has an empty continuation after tokenisation"
                )
            prefix = self.prefix_token_id
            assert prefix is not None
            if prefix != cont[0]:
                return [prefix], cont
            ctx, cont = cont[:1], cont[1:]
        else:
            ctx, cont = self._encode_pair(req.context, req.continuation, cache)
        if not cont:
            raise InvalidInputError(
                f"loglikelihood request {i} (context={_short(req.context)}, continuation="
                f"{_short(req.continuation)}) has an empty continuation after tokenisation"
            )
        if not ctx:  # a tokenizer that encodes a non-empty context to nothing
            raise InvalidInputError(
                f"loglikelihood request {i} (context={_short(req.context)}) has an empty "
                "context after tokenisation"
            )
        return ctx, cont

    # -- the three request kinds ----------------------------------------------------------------

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], *, progress: bool = False
    ) -> list[tuple[float, bool]]:
        """Log-probability of each continuation given its context, and whether it is greedy.

        Parameters
        ----------
        requests : sequence of LoglikelihoodRequest
            (``(context, continuation)`` tuples are accepted too.)
        progress : bool
            Show a progress bar.

        Returns
        -------
        list of (float, bool)
            Per request, in order: ``(sum of log p(continuation tokens), all greedy)``.

        Raises
        ------
        InvalidInputError
            A continuation that tokenises to nothing, or one longer than ``max_length``.

        Warns
        -----
        CapscaleWarning
            Requests longer than ``max_length + 1`` tokens (left-truncated).
        """
        reqs = [_as_loglikelihood(i, r) for i, r in enumerate(requests)]
        seen: dict[tuple[str, str], Pair] = {}
        contexts: dict[str, list[int]] = {}
        pairs: list[Pair] = []
        for i, r in enumerate(reqs):
            key = (r.context, r.continuation)
            if key not in seen:
                seen[key] = self._encode_request(i, r, contexts)
            pairs.append(seen[key])
        limit = self.max_length
        for i, (_, cont) in enumerate(pairs):
            if len(cont) > limit:
                raise InvalidInputError(
                    f"loglikelihood request {i}: the continuation has {len(cont)} tokens, more "
                    f"than max_length={limit}; score long texts with loglikelihood_rolling"
                )
        over = [len(c) + len(x) for c, x in pairs if len(c) + len(x) > limit + 1]
        if over:
            warnings.warn(
                f"{len(over)} of {len(pairs)} loglikelihood requests are longer than "
                f"max_length + 1 = {limit + 1} tokens (longest {max(over)}); their contexts are "
                "left-truncated, as lm-evaluation-harness does",
                CapscaleWarning,
                stacklevel=2,
            )
        return self._score(pairs, progress=progress, desc="loglikelihood")

    def loglikelihood_rolling(
        self, requests: Sequence[RollingRequest], *, progress: bool = False
    ) -> list[float]:
        """Log-probability of each whole text, scored in disjoint rolling windows.

        The windows have ``max_length`` tokens; the first is conditioned on the prefix token
        (lm-eval's ``get_rolling_token_windows(..., context_len=1)``). An empty text scores 0.
        """
        texts = [_as_rolling(i, r).text for i, r in enumerate(requests)]
        limit = self.max_length
        prefix = self.prefix_token_id
        assert prefix is not None
        windows: list[Pair] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            for w in get_rolling_token_windows(self.tok_encode(text), prefix, limit, 1):
                windows.append(make_disjoint_window(w))
                owner.append(i)
        totals = [0.0] * len(texts)
        for i, (ll, _) in zip(
            owner, self._score(windows, progress=progress, desc="rolling"), strict=True
        ):
            totals[i] += ll
        return totals

    def generate_until(
        self, requests: Sequence[GenerationRequest], *, progress: bool = False
    ) -> list[str]:
        """Greedy continuation of each context, cut before its first stop string.

        Generation stops at a stop string, the EOS token, or ``max_new_tokens``. Contexts are
        left-truncated to ``max_length - max_new_tokens`` tokens (with a warning); an empty
        context is the prefix token. Decoding is plain greedy: sampling and penalty settings
        in the model's ``generation_config`` are not used.
        """
        reqs = [_as_generation(i, r) for i, r in enumerate(requests)]
        if not reqs:
            return []
        from tqdm.auto import tqdm

        eos_ids = self._eos_ids()
        eos_str = (
            self._tokenizer.decode([self.eot_token_id]) if self.eot_token_id is not None else None
        )
        pad_id = self._pad_id()
        encoded = [self._encode_generation_context(r.context) for r in reqs]
        order = sorted(range(len(reqs)), key=lambda i: (-len(encoded[i]), reqs[i].context))
        groups: dict[int, list[int]] = {}
        for i in order:
            groups.setdefault(reqs[i].max_new_tokens, []).append(i)
        limit = self.max_length
        truncated = 0
        out: list[str | None] = [None] * len(reqs)
        bs = self._batch_size if isinstance(self._batch_size, int) else self._auto_generate_bs()
        with tqdm(total=len(reqs), desc="generate", disable=not progress) as bar:
            for max_new, idx in groups.items():
                max_ctx = limit - max_new
                if max_ctx <= 0:
                    raise InvalidInputError(
                        f"max_new_tokens={max_new} leaves no room for the context in "
                        f"max_length={limit}"
                    )
                for start in range(0, len(idx), bs):
                    chunk = idx[start : start + bs]
                    ctxs = []
                    for i in chunk:
                        toks = encoded[i]
                        if len(toks) > max_ctx:
                            truncated += 1
                            toks = toks[-max_ctx:]
                        ctxs.append(toks)
                    stops = [[s for s in (*reqs[i].until, eos_str) if s] for i in chunk]
                    texts = self._generate_batch(ctxs, stops, max_new, eos_ids, pad_id)
                    for i, text in zip(chunk, texts, strict=True):
                        out[i] = text
                    bar.update(len(chunk))
        if truncated:
            warnings.warn(
                f"{truncated} of {len(reqs)} generation contexts are longer than max_length - "
                f"max_new_tokens tokens; they are left-truncated, as lm-evaluation-harness does",
                CapscaleWarning,
                stacklevel=2,
            )
        return [s if s is not None else "" for s in out]

    # -- scoring engine ---------------------------------------------------------------------------

    def _score(self, pairs: list[Pair], *, progress: bool, desc: str) -> list[tuple[float, bool]]:
        """Score ``(context_tokens, continuation_tokens)`` pairs; results in input order."""
        if not pairs:
            return []
        from tqdm.auto import tqdm

        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (ctx, cont) in enumerate(pairs):
            groups.setdefault(tuple(ctx + cont[:-1]), []).append(i)
        reps: list[tuple[int, list[int]]] = []
        for members in groups.values():
            rep = max(members, key=lambda j: len(pairs[j][1]))
            reps.append((rep, members))
        reps.sort(
            key=lambda rm: (
                -(len(pairs[rm[0]][0]) + len(pairs[rm[0]][1])),
                tuple(pairs[rm[0]][0] + pairs[rm[0]][1]),
            )
        )
        results: list[tuple[float, bool] | None] = [None] * len(pairs)
        auto = self._batch_size == "auto"
        bs = self._initial_batch_size(pairs, reps) if auto else int(self._batch_size)
        pos = 0
        with torch.inference_mode(), tqdm(total=len(pairs), desc=desc, disable=not progress) as bar:
            while pos < len(reps):
                chunk = reps[pos : pos + bs]
                try:
                    self._score_chunk(pairs, chunk, results)
                except torch.cuda.OutOfMemoryError:
                    if not auto or bs == 1:
                        raise
                    bs = max(1, bs // 2)
                    _clear_cache()
                    continue
                pos += len(chunk)
                bar.update(sum(len(m) for _, m in chunk))
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    def _score_chunk(
        self,
        pairs: list[Pair],
        chunk: list[tuple[int, list[int]]],
        results: list[tuple[float, bool] | None],
    ) -> None:
        limit = self.max_length
        inps = [(pairs[r][0] + pairs[r][1])[-(limit + 1) :][:-1] for r, _ in chunk]
        inplens = [len(x) for x in inps]
        width = max(inplens)
        arr = np.zeros((len(inps), width), dtype=np.int64)  # right padding with token 0
        for row, x in enumerate(inps):
            arr[row, : len(x)] = x
        k = max(len(pairs[r][1]) for r, _ in chunk)  # longest continuation = rows to score
        bases, keep = self._keep_positions(inplens, width, k)
        batch = torch.from_numpy(arr).to(self._device)
        logits = self._forward(batch, keep)

        rows: list[int] = []
        cols: list[int] = []
        toks: list[int] = []
        spans: list[tuple[int, int, int]] = []  # (request index, start, stop) in the flat lists
        for row, ((_, members), inplen) in enumerate(zip(chunk, inplens, strict=True)):
            for m in members:
                cont = pairs[m][1]
                start = len(toks)
                first = inplen - len(cont) - bases[row]
                rows.extend([row] * len(cont))
                cols.extend(range(first, first + len(cont)))
                toks.extend(cont)
                spans.append((m, start, len(toks)))
        dev = logits.device
        r_t = torch.tensor(rows, device=dev)
        c_t = torch.tensor(cols, device=dev)
        t_t = torch.tensor(toks, device=dev)
        logp = torch.log_softmax(logits[r_t, c_t], dim=-1, dtype=self.softmax_dtype)
        tok_lp = logp.gather(-1, t_t[:, None]).squeeze(-1)
        greedy = logp.argmax(dim=-1) == t_t
        lp_np = tok_lp.to(torch.float64).cpu().numpy()
        gr_np = greedy.cpu().numpy()
        for m, a, b in spans:
            results[m] = (float(lp_np[a:b].sum()), bool(gr_np[a:b].all()))

    def _keep_positions(self, inplens: list[int], width: int, k: int) -> tuple[list[int], Any]:
        """Which output positions to compute: ``(per-row base, logits_to_keep)``.

        Kept index ``j`` of row ``r`` is sequence position ``bases[r] + j``. A single-row
        batch computes every position, as lm-eval does: the output-head matmul then has
        lm-eval's shape, so batch size 1 reproduces its per-token log-probabilities exactly
        (a smaller matmul rounds differently, by ~1e-6 relative).
        """
        if len(inplens) == 1:
            return [0], None
        if self._keep_mode == "rows":
            bases = [n - k for n in inplens]
            pos = torch.arange(k)[None, :] + torch.tensor(bases)[:, None]
            return bases, pos.clamp_(min=0).to(self._device)
        if self._keep_mode == "last":
            keep = min(width, width - min(inplens) + k)
            return [width - keep] * len(inplens), keep
        return [0] * len(inplens), None

    def _forward(self, batch: Any, keep: Any) -> Any:
        kw = dict(self._forward_kw)
        if keep is not None:
            kw["logits_to_keep"] = keep
        return self._model(input_ids=batch, **kw).logits

    # -- batch sizes ----------------------------------------------------------------------------

    def _initial_batch_size(self, pairs: list[Pair], reps: list[tuple[int, list[int]]]) -> int:
        if self._device.type != "cuda":
            return min(self._max_batch_size, CPU_AUTO_BATCH_SIZE)
        longest = reps[0][0]
        width = len((pairs[longest][0] + pairs[longest][1])[-(self.max_length + 1) :][:-1])
        k = max(len(pairs[r][1]) for r, _ in reps)
        return self._detect_batch_size(width, k)

    def _detect_batch_size(self, width: int, k: int) -> int:
        """Largest batch of ``width`` tokens (scoring ``k`` positions) that fits, halving
        from ``max_batch_size`` on out-of-memory (lm-eval's ``_detect_batch_size``)."""
        key = (width, k)
        if key in self._detected:
            return self._detected[key]
        bs = self._max_batch_size
        with torch.inference_mode():
            while True:
                try:
                    batch = torch.ones((bs, width), dtype=torch.long, device=self._device)
                    _, keep = self._keep_positions([width] * bs, width, k)
                    logits = self._forward(batch, keep)
                    torch.log_softmax(logits.flatten(0, -2), dim=-1, dtype=self.softmax_dtype)
                    del logits
                    break
                except torch.cuda.OutOfMemoryError:
                    _clear_cache()
                    if bs == 1:
                        break
                    bs //= 2
        _clear_cache()
        self._detected[key] = bs
        return bs

    def _auto_generate_bs(self) -> int:
        if self._device.type != "cuda":
            return min(self._max_batch_size, CPU_AUTO_BATCH_SIZE)
        return self._detect_batch_size(self.max_length, 1)

    # -- generation --------------------------------------------------------------------------------

    def _encode_generation_context(self, text: str) -> list[int]:
        """lm-eval's ``tok_batch_encode`` rule, applied per string."""
        bos = getattr(self._tokenizer, "bos_token", None)
        kw: dict[str, bool] = {}
        if bos is not None and text.startswith(bos):
            kw["add_special_tokens"] = False
        elif self.add_bos_token is not None:
            kw["add_special_tokens"] = self.add_bos_token
        ids = list(self._tokenizer.encode(text, **kw))
        if not ids:  # nothing to condition on: the prefix token, as for empty MC contexts
            prefix = self.prefix_token_id
            assert prefix is not None
            ids = [prefix]
        return ids

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen = getattr(self._model, "generation_config", None)
        eos = getattr(gen, "eos_token_id", None) if gen is not None else None
        for e in eos if isinstance(eos, (list, tuple)) else [eos]:
            if e is not None and int(e) not in ids:
                ids.append(int(e))
        if self.eot_token_id is not None and self.eot_token_id not in ids:
            ids.append(self.eot_token_id)
        return ids

    def _pad_id(self) -> int:
        tok = self._tokenizer
        for pid in (tok.pad_token_id, tok.unk_token_id, tok.eos_token_id):
            if pid is not None:
                return int(pid)
        return 0

    def _generate_batch(
        self,
        ctxs: list[list[int]],
        stops: list[list[str]],
        max_new: int,
        eos_ids: list[int],
        pad_id: int,
    ) -> list[str]:
        width = max(len(c) for c in ctxs)
        ids = np.full((len(ctxs), width), pad_id, dtype=np.int64)  # left padding
        mask = np.zeros((len(ctxs), width), dtype=np.int64)
        for row, c in enumerate(ctxs):
            if c:
                ids[row, width - len(c) :] = c
                mask[row, width - len(c) :] = 1
        input_ids = torch.from_numpy(ids).to(self._device)
        attention = torch.from_numpy(mask).to(self._device)
        config = transformers.GenerationConfig(
            max_new_tokens=max_new,
            do_sample=False,
            num_beams=1,
            pad_token_id=pad_id,
            eos_token_id=eos_ids or None,
        )
        criteria = transformers.StoppingCriteriaList(
            [_StopOnStrings(self._tokenizer, stops, width)]
        )
        model: Any = self._model
        with torch.inference_mode():
            out = model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                generation_config=config,
                stopping_criteria=criteria,
            )
        texts = []
        for row, row_stops in zip(out[:, width:].tolist(), stops, strict=True):
            for j, t in enumerate(row):  # tokens after EOS are padding
                if t in eos_ids:
                    row = row[:j]
                    break
            text = self._tokenizer.decode(row, skip_special_tokens=True)
            for s in row_stops:
                text = text.split(s)[0]
            texts.append(text)
        return texts


# -- module helpers -------------------------------------------------------------------------------

_BACKEND_KW = (
    "batch_size",
    "max_batch_size",
    "max_length",
    "add_bos_token",
    "prefix_token_id",
    "softmax_dtype",
)


def _is_pos_int(value: Any) -> bool:
    return bool(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0)


def _model_device(model: Any) -> Any:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _accepts(model: Any, name: str) -> bool:
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return name in params


def _logits_to_keep_mode(model: Any) -> str:
    """``"rows"``: per-row positions (a 2-D ``logits_to_keep``, transformers' helper);
    ``"last"``: the last N positions (an int); ``"all"``: the model computes every position."""
    if not _accepts(model, "logits_to_keep"):
        return "all"
    module = sys.modules.get(type(model).__module__)
    helper = getattr(transformers.modeling_utils, "slice_logits_to_keep", None)
    if helper is not None and getattr(module, "slice_logits_to_keep", None) is helper:
        return "rows"
    return "last"


def _resolve_max_length(config: Any, tokenizer: Any) -> int:
    """lm-eval's ``resolve_max_length``: config (``text_config`` first), tokenizer, 2048."""
    cfg = getattr(config, "text_config", None) or config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, attr, None)
        if value is not None:
            return int(value)
    mml = getattr(tokenizer, "model_max_length", None)
    if mml is not None and mml != TOKENIZER_INFINITY:
        return int(mml)
    return DEFAULT_MAX_LENGTH


def _build_from_config(config: Any, dtype: Any) -> Any:
    """A causal LM from ``config`` without random initialisation (its weights are loaded next)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # pragma: no cover - older transformers
        return transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    with no_init_weights():
        return transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)


def model_from_state_dict(config: Any, state: dict[str, Any], dtype: Any, source: str) -> Any:
    """The causal LM of ``config`` holding ``state`` (dequantized weights): built without
    random initialisation, loaded, and checked — only ``lm_head.weight`` may be missing, and
    only when the embeddings are tied (it is tied afterwards). FormatError names ``source``
    when the tensors do not fill the model."""
    model = _build_from_config(config, dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    bad_missing = sorted(set(missing) - ({"lm_head.weight"} if tied else set()))
    if bad_missing or unexpected:
        raise FormatError(
            f"{source}: the tensors do not match a {type(model).__name__}: "
            f"missing {bad_missing[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    model.tie_weights()
    return model


def _clear_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _as_loglikelihood(i: int, r: Any) -> LoglikelihoodRequest:
    if isinstance(r, LoglikelihoodRequest):
        req = r
    elif isinstance(r, tuple) and len(r) == 2:
        req = LoglikelihoodRequest(*r)
    else:
        raise InvalidInputError(
            f"loglikelihood request {i} must be a LoglikelihoodRequest, got {type(r).__name__}"
        )
    if not isinstance(req.context, str) or not isinstance(req.continuation, str):
        raise InvalidInputError(f"loglikelihood request {i}: context and continuation must be str")
    return req


def _as_rolling(i: int, r: Any) -> RollingRequest:
    if isinstance(r, RollingRequest):
        req = r
    elif isinstance(r, str):
        req = RollingRequest(r)
    else:
        raise InvalidInputError(
            f"rolling request {i} must be a RollingRequest, got {type(r).__name__}"
        )
    if not isinstance(req.text, str):
        raise InvalidInputError(f"rolling request {i}: text must be str")
    return req


def _as_generation(i: int, r: Any) -> GenerationRequest:
    if not isinstance(r, GenerationRequest):
        raise InvalidInputError(
            f"generation request {i} must be a GenerationRequest, got {type(r).__name__}"
        )
    if not isinstance(r.context, str):
        raise InvalidInputError(f"generation request {i}: context must be str")
    if isinstance(r.until, str) or not all(isinstance(s, str) for s in r.until):
        raise InvalidInputError(
            f"generation request {i}: until must be a tuple of strings, got {r.until!r}"
        )
    if not _is_pos_int(r.max_new_tokens):
        raise InvalidInputError(
            f"generation request {i}: max_new_tokens must be a positive integer, "
            f"got {r.max_new_tokens!r}"
        )
    return r
