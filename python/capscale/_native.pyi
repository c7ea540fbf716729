"""Type stubs of the native module ``capscale._native`` (PyO3 bindings of capscale-core)."""

from collections.abc import Callable
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "SolverOptions",
    "__version__",
    "affine_conventions",
    "affine_dequantize",
    "affine_quantize",
    "awq_dequantize",
    "bnb_dequantize_4bit",
    "bnb_dequantize_4bit_nested",
    "bnb_dequantize_int8",
    "bootstrap_fit",
    "bootstrap_groups",
    "bootstrap_indices",
    "bootstrap_mean",
    "clem_table",
    "clemscore_replicates",
    "curve_fit",
    "fit_law",
    "fit_many",
    "gguf_dequantize",
    "gguf_quantize",
    "gguf_types",
    "gptq_dequantize",
    "law_eval",
    "law_info",
    "law_names",
    "least_squares",
    "multi_start",
    "normalize",
    "paired_difference",
    "pool_subtasks",
    "summarize",
    "summarize_groups",
]

__version__: str

_F64 = npt.NDArray[np.float64]
_U32 = npt.NDArray[np.uint32]

@final
class SolverOptions:
    """Solver settings; ``None`` selects the core default (tolerances 1e-15, factor 100 …)."""

    def __new__(
        cls,
        *,
        ftol: float | None = None,
        xtol: float | None = None,
        gtol: float | None = None,
        max_nfev: int | None = None,
        loss: str = "linear",
        f_scale: float = 1.0,
        lower: list[float] | None = None,
        upper: list[float] | None = None,
        diff_scheme: str = "3-point",
        diff_step: float | None = None,
        geodesic: bool = False,
        avmax: float | None = None,
        h_fvv: float | None = None,
        factor: float | None = None,
        x_scale: list[float] | None = None,
        rank_rtol: float | None = None,
        absolute_sigma: bool = False,
    ) -> SolverOptions: ...

def least_squares(
    fun: Callable[..., Any],
    x0: _F64,
    m: int,
    jac: Callable[..., Any] | None,
    args: tuple[Any, ...],
    options: SolverOptions,
) -> dict[str, Any]: ...
def curve_fit(
    f: Callable[..., Any],
    xdata: Any,
    ydata: _F64,
    p0: _F64,
    sigma: _F64 | None,
    jac: Callable[..., Any] | None,
    options: SolverOptions,
) -> dict[str, Any]: ...
def fit_law(
    law: str,
    x: _F64,
    ydata: _F64,
    p0: _F64,
    sigma: _F64 | None,
    options: SolverOptions,
) -> dict[str, Any]: ...
def fit_many(
    law: str,
    xs: list[_F64],
    ys: list[_F64],
    sigmas: list[_F64] | None,
    p0: _F64,
    options: SolverOptions,
    n_threads: int = 0,
) -> dict[str, Any]: ...
def bootstrap_fit(
    law: str,
    x: _F64,
    ydata: _F64,
    sigma: _F64 | None,
    p0: _F64,
    n_resamples: int,
    seed: int,
    options: SolverOptions,
    n_threads: int = 0,
) -> dict[str, Any]: ...
def multi_start(
    law: str,
    x: _F64,
    ydata: _F64,
    sigma: _F64 | None,
    starts: _F64,
    options: SolverOptions,
    n_threads: int = 0,
) -> dict[str, Any]: ...
def law_eval(law: str, x: _F64, params: _F64) -> _F64: ...
def law_info(law: str) -> tuple[list[str], int]: ...
def law_names() -> list[str]: ...
def bootstrap_indices(m: int, n_resamples: int, seed: int) -> npt.NDArray[np.int64]: ...

# -- statistics --------------------------------------------------------------------------
def summarize(values: _F64, weights: _F64 | None = None) -> tuple[int, float, float]: ...
def summarize_groups(values: _F64, groups: _U32, weights: _F64 | None = None) -> dict[str, Any]: ...
def pool_subtasks(
    n: list[int], mean: list[float], stderr: list[float], weight_by_size: bool
) -> tuple[int, float, float]: ...
def normalize(values: _F64, baseline: float, max: float) -> _F64: ...
def bootstrap_mean(
    values: _F64,
    weights: _F64 | None = None,
    strata: _U32 | None = None,
    clusters: _U32 | None = None,
    average: str = "micro",
    n_resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
    method: str = "percentile",
    n_threads: int = 0,
) -> dict[str, Any]: ...
def bootstrap_groups(
    values: _F64,
    groups: _U32,
    weights: _F64 | None = None,
    strata: _U32 | None = None,
    clusters: _U32 | None = None,
    average: str = "micro",
    n_resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
    method: str = "percentile",
    n_threads: int = 0,
) -> dict[str, Any]: ...
def paired_difference(
    a: _F64,
    b: _F64,
    weights: _F64 | None = None,
    strata: _U32 | None = None,
    clusters: _U32 | None = None,
    average: str = "micro",
    n_resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
    method: str = "percentile",
    n_threads: int = 0,
) -> dict[str, Any]: ...
def clem_table(game: _U32, aborted: _F64, main_score: _F64) -> dict[str, Any]: ...
def clemscore_replicates(
    game: _U32,
    aborted: _F64,
    main_score: _F64,
    n_resamples: int = 10_000,
    seed: int = 0,
    n_threads: int = 0,
) -> _F64: ...

# -- weight formats ----------------------------------------------------------------------
def gguf_types() -> list[tuple[str, int, int, int]]: ...
def gguf_dequantize(
    data: npt.NDArray[np.uint8],
    ty: str,
    out: npt.NDArray[np.float32] | npt.NDArray[np.uint16],
    dtype: str = "float32",
    n_threads: int = 0,
    reused: bool = False,
    stores: str = "auto",
) -> None: ...
def gguf_quantize(values: npt.NDArray[np.float32], ty: str) -> npt.NDArray[np.uint8]: ...

# -- affine group quantization (quant/affine.py) -----------------------------------------
def affine_quantize(
    x: npt.NDArray[np.float32],
    row_len: int,
    convention: str,
    bits: int,
    group_size: int,
    rounding: str,
    eps: float,
    allow_nonfinite: bool,
    out: npt.NDArray[np.float32] | npt.NDArray[np.uint16] | None = None,
    dtype: str = "float32",
    codes: npt.NDArray[np.uint8] | None = None,
    scales: npt.NDArray[np.float32] | None = None,
    zeros: npt.NDArray[np.float32] | None = None,
    n_threads: int = 0,
) -> None: ...
def affine_dequantize(
    codes: npt.NDArray[np.uint8],
    scales: npt.NDArray[np.float32],
    zeros: npt.NDArray[np.float32],
    row_len: int,
    convention: str,
    bits: int,
    group_size: int,
    out: npt.NDArray[np.float32] | npt.NDArray[np.uint16],
    dtype: str = "float32",
    n_threads: int = 0,
) -> None: ...
def affine_conventions() -> list[tuple[str, float, bool, bool]]: ...

# -- end of affine group quantization ----------------------------------------------------

# -- bitsandbytes, GPTQ, AWQ (quant/bnb.py, quant/gptq.py) -------------------------------
_OutBuf = npt.NDArray[np.float32] | npt.NDArray[np.uint16]

def bnb_dequantize_4bit(
    packed: npt.NDArray[np.uint8],
    absmax: npt.NDArray[np.float32],
    quant_map: npt.NDArray[np.float32],
    blocksize: int,
    n: int,
    out: _OutBuf,
    dtype: str = "float32",
    n_threads: int = 0,
    reused: bool = False,
) -> None: ...
def bnb_dequantize_4bit_nested(
    packed: npt.NDArray[np.uint8],
    qabsmax: npt.NDArray[np.uint8],
    absmax2: npt.NDArray[np.float32],
    quant_map2: npt.NDArray[np.float32],
    blocksize2: int,
    offset: float,
    quant_map: npt.NDArray[np.float32],
    blocksize: int,
    n: int,
    out: _OutBuf,
    dtype: str = "float32",
    n_threads: int = 0,
    reused: bool = False,
) -> None: ...
def bnb_dequantize_int8(
    weight: npt.NDArray[np.int8],
    scb: npt.NDArray[np.float32],
    cols: int,
    out: _OutBuf,
    dtype: str = "float32",
    n_threads: int = 0,
    reused: bool = False,
) -> None: ...
def gptq_dequantize(
    qweight: npt.NDArray[np.int32],
    qzeros: npt.NDArray[np.int32],
    scales: npt.NDArray[np.float32] | npt.NDArray[np.uint16],
    g_idx: npt.NDArray[np.int32],
    bits: int,
    in_features: int,
    out_features: int,
    n_groups: int,
    zero_offset: int,
    out: _OutBuf,
    dtype: str = "float32",
    scales_f16: bool = False,
    n_threads: int = 0,
    reused: bool = False,
) -> None: ...
def awq_dequantize(
    qweight: npt.NDArray[np.int32],
    qzeros: npt.NDArray[np.int32],
    scales: npt.NDArray[np.float32] | npt.NDArray[np.uint16],
    in_features: int,
    out_features: int,
    group_size: int,
    out: _OutBuf,
    dtype: str = "float32",
    scales_f16: bool = False,
    n_threads: int = 0,
    reused: bool = False,
) -> None: ...

# -- end of bitsandbytes, GPTQ, AWQ ------------------------------------------------------
