"""Weight formats of language models: dequantize / quantize on native kernels, and the error
statistics of a quantized tensor (RMSE, relative error, SQNR, bits per weight).

Supported today: the GGUF/ggml block types (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
Q2_K … Q6_K, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, MXFP4).
"""

from .errors import ErrorStats, error_stats
from .formats import Format, get_format, list_formats
from .gguf import dequantize, quantize

__all__ = [
    "ErrorStats",
    "Format",
    "dequantize",
    "error_stats",
    "get_format",
    "list_formats",
    "quantize",
]
