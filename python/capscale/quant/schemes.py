"""Precision schemes by name, and fake quantization of a torch model's Linear weights.

A scheme string names how weights are rounded (quantize, then dequantize back to floats):

* ``"none"`` / ``"fp32"`` — unchanged;
* affine integer groups: ``"int{bits}[-g{group}|-pc][-sym|-asym][-{preset}]"``, e.g.
  ``"int8"`` (per channel), ``"int4-g128"`` (asymmetric RTN, the default preset
  ``rtn_asym``), ``"int3-g128-sym"``, ``"int4-g128-gptq_sym"``, ``"int4-g64-hqq"``;
* bitsandbytes 4-bit codebooks: ``"nf4"``, ``"fp4"``, optionally ``-b{blocksize}`` (default 64)
  and ``-dq`` for double-quantized absmax;
* GGUF reference quantizers: ``"gguf:Q4_0"`` (any type capscale can quantize).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import InvalidInputError, ShapeError, UnknownNameError, did_you_mean
from ._torch import require
from .errors import ErrorStats, error_stats

__all__ = ["FakeQuantReport", "QuantScheme", "apply_fake_quant", "parse_scheme"]

_INT_RE = re.compile(
    r"^int(?P<bits>\d+)(?:-(?:g(?P<group>\d+)|(?P<pc>pc)))?(?:-(?P<sym>sym|asym))?"
    r"(?:-(?P<preset>[a-z0-9_]+))?$"
)
_BNB_RE = re.compile(r"^(?P<qt>nf4|fp4)(?:-b(?P<block>\d+))?(?P<dq>-dq)?$")
_NONE = ("none", "fp32", "float32", "full")
_EXAMPLES = ("none", "int8", "int4-g128", "int4-g128-sym", "int3-g128", "nf4", "fp4", "gguf:Q4_0")


@dataclass(frozen=True)
class QuantScheme:
    """A parsed precision scheme (see the module docstring for the grammar).

    Attributes
    ----------
    name : str
        Canonical spelling (what results record).
    kind : str
        ``"none"``, ``"affine"``, ``"bnb"`` or ``"gguf"``.
    params : dict
        Kind-specific parameters (bits, group size, preset, quant type, block size …).
    """

    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def bits_per_weight(self) -> float:
        """Effective storage bits per weight, per-group scales/zeros included
        (affine: 16-bit scale and, when asymmetric, a ``bits``-bit zero per group;
        bnb: 32-bit absmax per block, or 8 + 32/256 bits when double-quantized)."""
        p = self.params
        if self.kind == "none":
            return 32.0
        if self.kind == "gguf":
            from .formats import get_format

            return get_format(p["type"]).bits_per_weight
        if self.kind == "bnb":
            absmax_bits = 8 + 32 / 256 if p["double_quant"] else 32
            return 4 + absmax_bits / p["blocksize"]
        return float(self._affine().bits_per_weight())

    def _affine(self) -> Any:
        from .affine import AffineScheme

        p = self.params
        return AffineScheme.preset(p["preset"], bits=p["bits"], group_size=p["group_size"])

    def fake_quantize(self, w: np.ndarray, *, n_threads: int = 0) -> np.ndarray:
        """Quantize and dequantize a 2-D float32 weight ``[out, in]`` (groups along ``in``);
        returns float32 of the same shape."""
        w = np.ascontiguousarray(w, dtype=np.float32)
        if w.ndim != 2:
            raise ShapeError(f"fake quantization expects a 2-D weight, got shape {w.shape}")
        p = self.params
        if self.kind == "none":
            return w.copy()
        if self.kind == "affine":
            from .affine import fake_quantize

            return fake_quantize(w, scheme=self._affine(), dtype="float32", n_threads=n_threads)
        if self.kind == "bnb":
            from .bnb import quantize_4bit

            st = quantize_4bit(
                w,
                quant_type=p["quant_type"],
                blocksize=p["blocksize"],
                compress_statistics=p["double_quant"],
            )
            return st.dequantize("float32", n_threads=n_threads).reshape(w.shape)
        from .formats import get_format
        from .gguf import dequantize, quantize

        fmt = get_format(p["type"])
        if w.shape[1] % fmt.block_size:
            raise ShapeError(
                f"rows of {w.shape[1]} values are not whole {fmt.name} blocks "
                f"({fmt.block_size} values)"
            )
        return dequantize(quantize(w, fmt), fmt, w.shape, n_threads=n_threads)

    def __str__(self) -> str:
        return self.name


def parse_scheme(spec: str | QuantScheme | Any) -> QuantScheme:
    """Parse a scheme string (or pass a QuantScheme / AffineScheme through).

    Raises UnknownNameError (with a suggestion) for names that do not parse and
    InvalidInputError for impossible parameters (bits outside 2–8, block size 0 …).
    """
    if isinstance(spec, QuantScheme):
        return spec
    from .affine import AffineScheme

    if isinstance(spec, AffineScheme):
        gs = spec.group_size
        return QuantScheme(
            spec.describe(),
            "affine",
            {"bits": spec.bits, "group_size": gs, "preset": spec.preset or "rtn_asym"},
        )
    if not isinstance(spec, str):
        raise InvalidInputError(f"a scheme is a string, got {type(spec).__name__}")
    s = spec.strip().lower()
    if s in _NONE:
        return QuantScheme("none", "none")
    if s.startswith("gguf:"):
        from .formats import get_format

        fmt = get_format(spec.split(":", 1)[1])
        if fmt.family != "gguf":
            raise InvalidInputError(f"{spec!r}: {fmt.name} is not a GGUF block type")
        return QuantScheme(f"gguf:{fmt.name}", "gguf", {"type": fmt.name})
    m = _BNB_RE.match(s)
    if m:
        block = int(m.group("block") or 64)
        if not 16 <= block <= 4096:
            raise InvalidInputError(f"bitsandbytes block size must be 16..4096, got {block}")
        dq = bool(m.group("dq"))
        name = f"{m.group('qt')}-b{block}" + ("-dq" if dq else "")
        return QuantScheme(
            name, "bnb", {"quant_type": m.group("qt"), "blocksize": block, "double_quant": dq}
        )
    m = _INT_RE.match(s)
    if m:
        bits = int(m.group("bits"))
        if not 2 <= bits <= 8:
            raise InvalidInputError(f"affine schemes take 2..8 bits, got {bits} in {spec!r}")
        group = int(m.group("group")) if m.group("group") else -1
        if group == 0:
            raise InvalidInputError(f"group size 0 in {spec!r}")
        sym = m.group("sym")
        preset = m.group("preset")
        if preset is None:
            preset = "rtn_sym" if sym == "sym" else "rtn_asym"
        elif sym is not None and (sym == "sym") != preset.endswith("sym"):
            raise InvalidInputError(f"{spec!r}: '-{sym}' contradicts preset {preset!r}")
        from .affine import AffineScheme

        AffineScheme.preset(preset, bits=bits, group_size=group)  # validates the preset name
        gname = f"g{group}" if group > 0 else "pc"
        return QuantScheme(
            f"int{bits}-{gname}-{preset}",
            "affine",
            {"bits": bits, "group_size": group, "preset": preset},
        )
    hint = did_you_mean(s, _EXAMPLES)
    raise UnknownNameError(
        f"unknown precision scheme {spec!r}; {hint + ' ' if hint else ''}"
        f"examples: {', '.join(_EXAMPLES)}"
    )


@dataclass
class FakeQuantReport:
    """What :func:`apply_fake_quant` did.

    Attributes
    ----------
    scheme : QuantScheme
        The scheme applied.
    layers : list of (str, ErrorStats)
        Per rewritten Linear: module name and the weight's reconstruction error.
    skipped : list of str
        Linear modules left in full precision (excluded or not included).
    """

    scheme: QuantScheme
    layers: list[tuple[str, ErrorStats]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def n_weights(self) -> int:
        """Weights rewritten."""
        return sum(s.n for _, s in self.layers)

    @property
    def relative_rmse(self) -> float:
        """Relative RMSE pooled over every rewritten weight (NaN if none)."""
        if not self.layers:
            return math.nan
        noise = sum(s.rmse**2 * s.n for _, s in self.layers)
        sig = sum((s.rmse / s.relative_rmse) ** 2 * s.n for _, s in self.layers if s.relative_rmse)
        return math.sqrt(noise / sig) if sig > 0 else math.inf

    def summary(self) -> dict[str, Any]:
        """Flat record for a results store: scheme, bits per weight, pooled error, counts."""
        return {
            "scheme": self.scheme.name,
            "bits_per_weight": self.scheme.bits_per_weight,
            "relative_rmse": self.relative_rmse,
            "max_abs": max((s.max_abs for _, s in self.layers), default=math.nan),
            "n_layers": len(self.layers),
            "n_weights": self.n_weights,
            "skipped": list(self.skipped),
        }


def _selected(name: str, include: Sequence[str] | None, exclude: Sequence[str]) -> bool:
    def hit(patterns: Iterable[str]) -> bool:
        return any(fnmatch.fnmatchcase(name, p) or p in name.split(".") for p in patterns)

    if include is not None and not hit(include):
        return False
    return not hit(exclude)


def apply_fake_quant(
    model: Any,
    scheme: str | QuantScheme | Any,
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] = ("lm_head",),
    progress: bool = False,
    n_threads: int = 0,
) -> FakeQuantReport:
    """Rewrite the weights of every ``torch.nn.Linear`` in ``model`` in place with their
    fake-quantized values (quantize + dequantize by ``scheme``, computed in float32 and cast
    back to the weight's dtype and device).

    ``include`` / ``exclude``: module-name patterns (fnmatch, or a dotted component such as
    ``"lm_head"``); by default every Linear except the output head. Biases are untouched.
    Returns the per-layer error statistics.
    """
    torch = require("torch")
    qs = parse_scheme(scheme)
    report = FakeQuantReport(qs)
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    done: set[int] = set()
    for name, mod in tqdm(linears, desc=f"fake-quant {qs.name}", disable=not progress):
        if not _selected(name, include, exclude):
            report.skipped.append(name)
            continue
        weight = mod.weight
        if id(weight) in done:  # tied to a weight already rewritten
            continue
        done.add(id(weight))
        with torch.no_grad():
            # a copy: for a float32 CPU weight .to() returns the same storage
            ref = weight.detach().to(device="cpu", dtype=torch.float32).numpy().copy()
            q = qs.fake_quantize(ref, n_threads=n_threads)
            weight.copy_(torch.from_numpy(q).to(dtype=weight.dtype, device=weight.device))
        report.layers.append((name, error_stats(ref, q, qs.bits_per_weight)))
    return report
