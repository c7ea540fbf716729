"""Weight formats of language models: dequantize / quantize on native kernels, fake
quantization for precision sweeps, loaders for quantized model files, and the error statistics
of a quantized tensor (RMSE, relative error, SQNR, bits per weight).

* GGUF/ggml block types (F32, F16, BF16, Q4_0 … Q8_0, Q2_K … Q6_K, IQ4_NL, IQ4_XS, TQ1_0,
  TQ2_0, MXFP4): :func:`dequantize`, :func:`quantize`; whole GGUF files: :class:`GGUFFile`,
  :func:`load_gguf`.
* Quantized safetensors checkpoints (GPTQ, AWQ, bitsandbytes): :class:`QuantizedCheckpoint`,
  :func:`load_quantized`.
* Affine group quantization for precision sweeps (bits 2–8, any group size, symmetric or
  not, integer or float zero, explicit rounding): :func:`fake_quantize`,
  :func:`affine_quantize`, :func:`affine_dequantize`, :class:`AffineScheme`.
* Precision schemes by name and in-place fake quantization of a torch model:
  :func:`parse_scheme`, :func:`apply_fake_quant`.
"""

from .affine import (
    PRESETS,
    ROUNDINGS,
    AffineQuantized,
    AffineScheme,
    affine_dequantize,
    affine_quantize,
    fake_quantize,
)
from .checkpoint import QuantizedCheckpoint, QuantizedWeight, load_quantized
from .errors import ErrorStats, error_stats
from .formats import Format, get_format, list_formats
from .gguf import dequantize, quantize
from .gguf_file import GGUFFile, GGUFTensor, load_gguf, unpermute_qk
from .report import QuantReport, TensorReport, quant_report
from .schemes import FakeQuantReport, QuantScheme, apply_fake_quant, parse_scheme

__all__ = [
    "PRESETS",
    "ROUNDINGS",
    "AffineQuantized",
    "AffineScheme",
    "ErrorStats",
    "FakeQuantReport",
    "Format",
    "GGUFFile",
    "GGUFTensor",
    "QuantReport",
    "QuantScheme",
    "QuantizedCheckpoint",
    "QuantizedWeight",
    "TensorReport",
    "affine_dequantize",
    "affine_quantize",
    "apply_fake_quant",
    "dequantize",
    "error_stats",
    "fake_quantize",
    "get_format",
    "list_formats",
    "load_gguf",
    "load_quantized",
    "parse_scheme",
    "quant_report",
    "quantize",
    "unpermute_qk",
]
