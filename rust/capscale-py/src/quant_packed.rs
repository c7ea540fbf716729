//! Bindings of `capscale_core::dequant::{bnb, gptq}`: bitsandbytes 4-bit / LLM.int8, GPTQ and
//! AWQ. Python validates shapes and passes flat C-contiguous arrays plus the output buffer it
//! allocated (`capscale.quant._out.prepare_out`); the kernels fill it with the GIL released.
//! `reused=True` says `out` is a caller's buffer written before: large ones are then written
//! with streaming stores.

use crate::errors::{IntoPyResult, InvalidInputError};
use crate::outbuf::with_out;
use capscale_core::dequant::bnb::{self, Absmax, NestedAbsmax};
use capscale_core::dequant::gptq::{self, AwqLayout, GptqLayout, GptqTensors, Scales};
use numpy::{PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// Extract a C-contiguous 1-D array of `T`, or an `InvalidInputError` naming what was given.
fn array1<'py, T: numpy::Element>(
    obj: &Bound<'py, PyAny>,
    what: &str,
    want: &str,
) -> PyResult<PyReadonlyArray1<'py, T>> {
    let bad = || {
        let dtype = obj
            .getattr("dtype")
            .map(|d| d.to_string())
            .unwrap_or_else(|_| obj.get_type().to_string());
        let shape = obj
            .getattr("shape")
            .map(|d| d.to_string())
            .unwrap_or_default();
        InvalidInputError::new_err(format!(
            "{what} must be a C-contiguous 1-D {want} array, got dtype {dtype} with shape {shape}"
        ))
    };
    let arr = obj
        .extract::<PyReadonlyArray1<'py, T>>()
        .map_err(|_| bad())?;
    if !arr.is_c_contiguous() {
        return Err(bad());
    }
    Ok(arr)
}

/// Borrow the contiguous data of a checked array.
fn slice<'a, T: numpy::Element>(arr: &'a PyReadonlyArray1<'_, T>, what: &str) -> PyResult<&'a [T]> {
    arr.as_slice()
        .map_err(|_| InvalidInputError::new_err(format!("{what} must be C-contiguous")))
}

/// f32 or f16 (as uint16 bit patterns) scales.
enum ScaleArray<'py> {
    F32(PyReadonlyArray1<'py, f32>),
    F16(PyReadonlyArray1<'py, u16>),
}

impl<'py> ScaleArray<'py> {
    fn extract(obj: &Bound<'py, PyAny>, f16: bool) -> PyResult<Self> {
        Ok(if f16 {
            ScaleArray::F16(array1::<u16>(
                obj,
                "scales",
                "uint16 (float16 bit patterns)",
            )?)
        } else {
            ScaleArray::F32(array1::<f32>(obj, "scales", "float32")?)
        })
    }

    fn scales(&self) -> PyResult<Scales<'_>> {
        Ok(match self {
            ScaleArray::F32(a) => Scales::F32(slice(a, "scales")?),
            ScaleArray::F16(a) => Scales::F16(slice(a, "scales")?),
        })
    }
}

/// bitsandbytes 4-bit with plain float32 absmax into `out` (`n` elements).
#[pyfunction]
#[pyo3(signature = (
    packed, absmax, quant_map, blocksize, n, out, dtype="float32", n_threads=0, reused=false
))]
fn bnb_dequantize_4bit<'py>(
    py: Python<'py>,
    packed: &Bound<'py, PyAny>,
    absmax: &Bound<'py, PyAny>,
    quant_map: &Bound<'py, PyAny>,
    blocksize: usize,
    n: usize,
    out: &Bound<'py, PyAny>,
    dtype: &str,
    n_threads: usize,
    reused: bool,
) -> PyResult<()> {
    let packed = array1::<u8>(packed, "packed", "uint8")?;
    let absmax = array1::<f32>(absmax, "absmax", "float32")?;
    let code = array1::<f32>(quant_map, "quant_map", "float32")?;
    let (packed, absmax, code) = (
        slice(&packed, "packed")?,
        slice(&absmax, "absmax")?,
        slice(&code, "quant_map")?,
    );
    let am = Absmax::Plain(absmax);
    bnb::check_4bit(packed.len(), &am, code.len(), blocksize, n).py()?;
    with_out(py, out, dtype, n, |dst| {
        bnb::dequantize_4bit(packed, &am, code, blocksize, dst, n_threads, reused)
    })
}

/// bitsandbytes 4-bit with nested (double-quant) absmax into `out` (`n` elements).
#[pyfunction]
#[pyo3(signature = (
    packed, qabsmax, absmax2, quant_map2, blocksize2, offset, quant_map, blocksize, n, out,
    dtype="float32", n_threads=0, reused=false
))]
fn bnb_dequantize_4bit_nested<'py>(
    py: Python<'py>,
    packed: &Bound<'py, PyAny>,
    qabsmax: &Bound<'py, PyAny>,
    absmax2: &Bound<'py, PyAny>,
    quant_map2: &Bound<'py, PyAny>,
    blocksize2: usize,
    offset: f32,
    quant_map: &Bound<'py, PyAny>,
    blocksize: usize,
    n: usize,
    out: &Bound<'py, PyAny>,
    dtype: &str,
    n_threads: usize,
    reused: bool,
) -> PyResult<()> {
    let packed = array1::<u8>(packed, "packed", "uint8")?;
    let qabsmax = array1::<u8>(qabsmax, "qabsmax", "uint8")?;
    let absmax2 = array1::<f32>(absmax2, "absmax2", "float32")?;
    let code2 = array1::<f32>(quant_map2, "quant_map2", "float32")?;
    let code = array1::<f32>(quant_map, "quant_map", "float32")?;
    let packed = slice(&packed, "packed")?;
    let code = slice(&code, "quant_map")?;
    let am = Absmax::Nested(NestedAbsmax {
        qabsmax: slice(&qabsmax, "qabsmax")?,
        absmax2: slice(&absmax2, "absmax2")?,
        code2: slice(&code2, "quant_map2")?,
        blocksize2,
        offset,
    });
    bnb::check_4bit(packed.len(), &am, code.len(), blocksize, n).py()?;
    with_out(py, out, dtype, n, |dst| {
        bnb::dequantize_4bit(packed, &am, code, blocksize, dst, n_threads, reused)
    })
}

/// LLM.int8 row-wise weights (`weight` int8 `[rows·cols]`, `scb` float32 `[rows]`) into `out`.
#[pyfunction]
#[pyo3(signature = (weight, scb, cols, out, dtype="float32", n_threads=0, reused=false))]
fn bnb_dequantize_int8<'py>(
    py: Python<'py>,
    weight: &Bound<'py, PyAny>,
    scb: &Bound<'py, PyAny>,
    cols: usize,
    out: &Bound<'py, PyAny>,
    dtype: &str,
    n_threads: usize,
    reused: bool,
) -> PyResult<()> {
    let weight = array1::<i8>(weight, "weight", "int8")?;
    let scb = array1::<f32>(scb, "SCB", "float32")?;
    let (q, s) = (slice(&weight, "weight")?, slice(&scb, "SCB")?);
    with_out(py, out, dtype, q.len(), |dst| {
        bnb::dequantize_int8(q, s, cols, dst, n_threads, reused)
    })
}

/// GPTQ (`qweight` `[in·bits/32 · out]`, `qzeros` `[G · out·bits/32]` int32, `scales` `[G·out]`
/// float32 or float16 bits, `g_idx` int32 `[in]`) into `out` (`[out, in]`).
#[pyfunction]
#[pyo3(signature = (
    qweight, qzeros, scales, g_idx, bits, in_features, out_features, n_groups, zero_offset, out,
    dtype="float32", scales_f16=false, n_threads=0, reused=false
))]
fn gptq_dequantize<'py>(
    py: Python<'py>,
    qweight: &Bound<'py, PyAny>,
    qzeros: &Bound<'py, PyAny>,
    scales: &Bound<'py, PyAny>,
    g_idx: &Bound<'py, PyAny>,
    bits: u32,
    in_features: usize,
    out_features: usize,
    n_groups: usize,
    zero_offset: i32,
    out: &Bound<'py, PyAny>,
    dtype: &str,
    scales_f16: bool,
    n_threads: usize,
    reused: bool,
) -> PyResult<()> {
    let qweight = array1::<i32>(qweight, "qweight", "int32")?;
    let qzeros = array1::<i32>(qzeros, "qzeros", "int32")?;
    let g_idx = array1::<i32>(g_idx, "g_idx", "int32")?;
    let scales = ScaleArray::extract(scales, scales_f16)?;
    let layout = GptqLayout {
        bits,
        in_features,
        out_features,
        n_groups,
        zero_offset,
    };
    let (qw, qz, gi, sc) = (
        slice(&qweight, "qweight")?,
        slice(&qzeros, "qzeros")?,
        slice(&g_idx, "g_idx")?,
        scales.scales()?,
    );
    let n = out_features.saturating_mul(in_features);
    with_out(py, out, dtype, n, |dst| {
        gptq::dequantize_gptq(
            &GptqTensors {
                qweight: qw,
                qzeros: qz,
                scales: sc,
                g_idx: gi,
            },
            &layout,
            dst,
            n_threads,
            reused,
        )
    })
}

/// AWQ GEMM (`qweight` `[in · out/8]`, `qzeros` `[G · out/8]` int32, `scales` `[G·out]`) into
/// `out` (`[out, in]`).
#[pyfunction]
#[pyo3(signature = (
    qweight, qzeros, scales, in_features, out_features, group_size, out, dtype="float32",
    scales_f16=false, n_threads=0, reused=false
))]
fn awq_dequantize<'py>(
    py: Python<'py>,
    qweight: &Bound<'py, PyAny>,
    qzeros: &Bound<'py, PyAny>,
    scales: &Bound<'py, PyAny>,
    in_features: usize,
    out_features: usize,
    group_size: usize,
    out: &Bound<'py, PyAny>,
    dtype: &str,
    scales_f16: bool,
    n_threads: usize,
    reused: bool,
) -> PyResult<()> {
    let qweight = array1::<i32>(qweight, "qweight", "int32")?;
    let qzeros = array1::<i32>(qzeros, "qzeros", "int32")?;
    let scales = ScaleArray::extract(scales, scales_f16)?;
    let layout = AwqLayout {
        in_features,
        out_features,
        group_size,
    };
    let (qw, qz, sc) = (
        slice(&qweight, "qweight")?,
        slice(&qzeros, "qzeros")?,
        scales.scales()?,
    );
    let n = out_features.saturating_mul(in_features);
    with_out(py, out, dtype, n, |dst| {
        gptq::dequantize_awq(qw, qz, sc, &layout, dst, n_threads, reused)
    })
}

/// Add this module's functions to the native module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bnb_dequantize_4bit, m)?)?;
    m.add_function(wrap_pyfunction!(bnb_dequantize_4bit_nested, m)?)?;
    m.add_function(wrap_pyfunction!(bnb_dequantize_int8, m)?)?;
    m.add_function(wrap_pyfunction!(gptq_dequantize, m)?)?;
    m.add_function(wrap_pyfunction!(awq_dequantize, m)?)?;
    Ok(())
}
