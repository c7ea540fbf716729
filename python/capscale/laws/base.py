"""The :class:`Law` base class, the law registry and shared input checks.

A law is a class, never instantiated, that bundles everything a fitter needs about one
parametric model: its parameter names, a NumPy ``func`` (the documentation and the test
oracle), an analytic ``jac``, a data-driven ``guess`` and default bounds. ``name`` is the
registry key and also the id under which the native core implements the same law.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import (
    CapscaleError,
    InvalidInputError,
    NonFiniteError,
    ShapeError,
    UnknownNameError,
    did_you_mean,
)

__all__ = ["Law", "get_law", "list_laws", "register_law"]

FloatArray = NDArray[np.float64]
Bounds = tuple[tuple[float, ...], tuple[float, ...]]

_REGISTRY: dict[str, type[Law]] = {}

#: Largest number of points a ``guess`` looks at; larger data sets are thinned evenly.
GUESS_MAX_POINTS = 2000


class Law:
    """Base class of the parametric laws (never instantiated; all members are class-level).

    Subclasses define the class attributes below and the static methods ``func`` and ``jac``,
    then register themselves with :func:`register_law`.

    Attributes
    ----------
    name : str
        Registry name, set by :func:`register_law`; also the native (Rust) law id.
    param_names : tuple of str
        Parameter names, in the order ``func``, ``jac`` and ``guess`` use.
    n_inputs : int
        1: ``x`` has shape ``(m,)``; 2: ``x`` has shape ``(2, m)``, one row per input.
    input_names : tuple of str
        Names of the inputs (rows of ``x``), used in error messages.
    positive_inputs : bool
        Whether every input must be > 0 (the law takes its logarithm).
    formula : str
        Human-readable equation.
    default_bounds : tuple (lower, upper)
        Default parameter bounds, each a tuple of ``n_params`` floats (may be ``±inf``).
    n_params : int
        ``len(param_names)``, set automatically.
    """

    name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]] = ()
    n_params: ClassVar[int] = 0
    n_inputs: ClassVar[int] = 1
    input_names: ClassVar[tuple[str, ...]] = ("x",)
    positive_inputs: ClassVar[bool] = False
    formula: ClassVar[str] = ""
    default_bounds: ClassVar[Bounds] = ((), ())

    #: ``func(x, *p) -> y``: the model, ``x`` as in :meth:`check_inputs`, ``y`` shape ``(m,)``.
    func: ClassVar[Callable[..., FloatArray]]
    #: ``jac(x, *p) -> J``: the analytic Jacobian ``dy/dp``, shape ``(m, n_params)``.
    jac: ClassVar[Callable[..., FloatArray]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.n_params = len(cls.param_names)

    def __init__(self) -> None:
        raise TypeError(f"{type(self).__name__} is a law class; use its class methods")

    # -- inputs ------------------------------------------------------------------------------

    @classmethod
    def _label(cls) -> str:
        return getattr(cls, "name", cls.__name__)

    @classmethod
    def check_inputs(cls, x: ArrayLike) -> FloatArray:
        """Validate and convert the independent variable(s).

        Parameters
        ----------
        x : array_like
            Shape ``(m,)`` (or ``(1, m)``) for one-input laws, ``(2, m)`` (rows
            ``input_names``) for two-input laws; m >= 1.

        Returns
        -------
        ndarray of float64
            C-contiguous copy or view of ``x``, shape ``(m,)`` or ``(2, m)``.

        Raises
        ------
        InvalidInputError
            ``x`` is not real numeric data, or (``positive_inputs``) has a value <= 0.
        ShapeError
            ``x`` has the wrong shape or is empty.
        NonFiniteError
            ``x`` contains NaN or infinity.
        """
        law = cls._label()
        arr = _as_real_array(x, f"{law}: x")
        if cls.n_inputs == 1:
            if arr.ndim == 2 and arr.shape[0] == 1:
                arr = arr[0]  # the uniform (n_inputs, m) layout
            if arr.ndim != 1:
                raise ShapeError(
                    f"{law}: x must be 1-D with shape (m,) or (1, m); got shape {arr.shape}"
                )
        else:
            k = cls.n_inputs
            if arr.ndim != 2 or arr.shape[0] != k:
                rows = ", ".join(cls.input_names)
                hint = " (pass x.T)" if arr.ndim == 2 and arr.shape[1] == k else ""
                raise ShapeError(
                    f"{law}: x must have shape ({k}, m) with rows ({rows}); "
                    f"got shape {arr.shape}{hint}"
                )
        if arr.shape[-1] == 0:
            raise ShapeError(f"{law}: x is empty; at least one point is needed")
        finite = np.isfinite(arr)
        if not finite.all():
            bad = np.argwhere(~finite)
            where = _where(cls, tuple(int(i) for i in bad[0]))
            raise NonFiniteError(
                f"{law}: x contains {bad.shape[0]} non-finite value(s) (NaN or inf); "
                f"first at {where} = {float(arr[tuple(bad[0])])!r}"
            )
        if cls.positive_inputs:
            nonpos = arr <= 0
            if nonpos.any():
                bad = np.argwhere(nonpos)
                where = _where(cls, tuple(int(i) for i in bad[0]))
                names = " and ".join(cls.input_names)
                its = "their" if cls.n_inputs > 1 else "its"
                raise InvalidInputError(
                    f"{law}: {names} must be > 0 (the law takes {its} logarithm); "
                    f"{bad.shape[0]} value(s) <= 0, "
                    f"first {where} = {float(arr[tuple(bad[0])])!r}"
                )
        return np.ascontiguousarray(arr)

    @classmethod
    def check_data(cls, x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Validate ``x`` with :meth:`check_inputs` and ``y`` as finite float64 of length m.

        Parameters
        ----------
        x : array_like
            See :meth:`check_inputs`.
        y : array_like, shape (m,)
            Observations, in the units of the law's output.

        Returns
        -------
        x, y : ndarray of float64
        """
        law = cls._label()
        xa = cls.check_inputs(x)
        ya = _as_real_array(y, f"{law}: y")
        m = xa.shape[-1]
        if ya.shape != (m,):
            raise ShapeError(f"{law}: y must have shape ({m},) to match x; got shape {ya.shape}")
        finite = np.isfinite(ya)
        if not finite.all():
            i = int(np.argmin(finite))
            raise NonFiniteError(
                f"{law}: y contains {int((~finite).sum())} non-finite value(s) (NaN or inf); "
                f"first at y[{i}] = {float(ya[i])!r}"
            )
        return xa, np.ascontiguousarray(ya)

    # -- starting points ---------------------------------------------------------------------

    @classmethod
    def guess(cls, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Data-driven starting point for a fit.

        The base implementation ignores the data and returns :meth:`generic_start`;
        built-in laws override it.

        Parameters
        ----------
        x : array_like
            See :meth:`check_inputs`.
        y : array_like, shape (m,)
            Observations.

        Returns
        -------
        ndarray of float64, shape (n_params,)
            Finite, strictly inside ``default_bounds``.
        """
        cls.check_data(x, y)
        return cls.generic_start()

    @classmethod
    def generic_start(cls) -> FloatArray:
        """Data-independent start: 1 where unbounded, else a point inside the bounds.

        Returns
        -------
        ndarray of float64, shape (n_params,)
        """
        p = np.ones(cls.n_params)
        return cls.clip_to_bounds(p)

    @classmethod
    def clip_to_bounds(cls, p: ArrayLike) -> FloatArray:
        """Replace non-finite entries and move ``p`` strictly inside ``default_bounds``.

        Parameters
        ----------
        p : array_like, shape (n_params,)

        Returns
        -------
        ndarray of float64, shape (n_params,)
            Each entry at least ``1e-6 * max(1, |bound|)`` (or 1 % of the interval width,
            whichever is smaller) away from a finite bound.
        """
        q = np.array(p, dtype=np.float64).reshape(cls.n_params)
        lo = np.asarray(cls.default_bounds[0], dtype=np.float64)
        hi = np.asarray(cls.default_bounds[1], dtype=np.float64)
        bad = ~np.isfinite(q)
        if bad.any():
            q[bad] = 1.0
        flo, fhi = np.isfinite(lo), np.isfinite(hi)
        lo0, hi0 = np.where(flo, lo, 0.0), np.where(fhi, hi, 0.0)
        margin = 1e-6 * np.maximum(1.0, np.maximum(np.abs(lo0), np.abs(hi0)))
        margin = np.where(flo & fhi, np.minimum(margin, 0.01 * (hi0 - lo0)), margin)
        lo_in = np.where(flo, lo0 + margin, -np.inf)
        hi_in = np.where(fhi, hi0 - margin, np.inf)
        return np.asarray(np.clip(q, lo_in, hi_in), dtype=np.float64)


def as_inputs(law: type[Law], x: ArrayLike) -> FloatArray:
    """Light conversion for ``func``/``jac``: float64, and the ``(n_inputs, ...)`` row check.

    No finiteness or domain checks (use :meth:`Law.check_inputs` for those); one-input laws
    accept any shape and broadcast.
    """
    arr = np.asarray(x, dtype=np.float64)
    if law.n_inputs > 1 and (arr.ndim < 1 or arr.shape[0] != law.n_inputs):
        rows = ", ".join(law.input_names)
        raise ShapeError(
            f"{law._label()}: x must have shape ({law.n_inputs}, m) with rows ({rows}); "
            f"got shape {arr.shape}"
        )
    return arr


def _where(law: type[Law], index: tuple[int, ...]) -> str:
    """Format an index into ``x`` as ``x[i]`` or ``N (x[0, i])``."""
    if len(index) == 1:
        return f"x[{index[0]}]"
    return f"{law.input_names[index[0]]} (x[{index[0]}, {index[1]}])"


def _as_real_array(a: ArrayLike, what: str) -> FloatArray:
    """Convert to float64, rejecting complex, object and string data with a clear message."""
    try:
        raw = np.asarray(a)
    except Exception as exc:  # ragged nested sequences and the like
        raise InvalidInputError(f"{what} is not an array of numbers: {exc}") from exc
    if raw.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"{what} must contain real numbers; got dtype {raw.dtype} ({raw.dtype.kind!r})"
        )
    return np.asarray(raw, dtype=np.float64)


def thin(
    x: FloatArray, y: FloatArray, max_points: int = GUESS_MAX_POINTS
) -> tuple[FloatArray, FloatArray]:
    """Keep at most ``max_points`` evenly spaced points (deterministic), last axis of ``x``."""
    m = y.shape[0]
    if m <= max_points:
        return x, y
    idx = np.linspace(0, m - 1, max_points).round().astype(np.intp)
    return x[..., idx], y[idx]


def y_scale(y: FloatArray) -> float:
    """``max|y|`` (1 if zero): guesses work on ``y / y_scale(y)`` so squares never overflow."""
    s = float(np.max(np.abs(y)))
    return s if s > 0 and np.isfinite(s) else 1.0


def linear_fit(u: FloatArray, v: FloatArray) -> tuple[float, float] | None:
    """Least-squares line ``v ≈ c0 + c1 * u``; None when undetermined or non-finite."""
    if u.shape[0] < 2:
        return None
    uc = u - u.mean()
    suu = float(uc @ uc)
    if not np.isfinite(suu) or suu <= 1e-300:
        return None
    c1 = float(uc @ (v - v.mean())) / suu
    c0 = float(v.mean()) - c1 * float(u.mean())
    if not (np.isfinite(c0) and np.isfinite(c1)):
        return None
    return c0, c1


LawT = TypeVar("LawT", bound=type[Law])


def register_law(name: str) -> Callable[[LawT], LawT]:
    """Class decorator: set ``cls.name = name`` and add the law to the registry.

    Parameters
    ----------
    name : str
        Registry name (also the native law id); must be a Python identifier.

    Returns
    -------
    callable
        The decorator, which returns the class unchanged apart from ``name``.

    Raises
    ------
    CapscaleError
        ``name`` is already registered, or the class is not a consistent :class:`Law`
        (missing ``func``/``jac``, bounds whose length differs from ``param_names``, ...).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise CapscaleError(f"law name must be an identifier string; got {name!r}")

    def decorator(cls: LawT) -> LawT:
        if not (isinstance(cls, type) and issubclass(cls, Law)):
            raise CapscaleError(f"register_law({name!r}) applies to Law subclasses; got {cls!r}")
        if name in _REGISTRY:
            raise CapscaleError(
                f"a law named {name!r} is already registered ({_REGISTRY[name].__qualname__})"
            )
        _validate_definition(cls, name)
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def _validate_definition(cls: type[Law], name: str) -> None:
    problems = []
    if not cls.param_names:
        problems.append("param_names is empty")
    for attr in ("func", "jac"):
        if not callable(getattr(cls, attr, None)):
            problems.append(f"{attr} is not defined")
    if cls.n_inputs not in (1, 2):
        problems.append(f"n_inputs must be 1 or 2, not {cls.n_inputs!r}")
    if len(cls.input_names) != cls.n_inputs:
        problems.append(f"input_names has {len(cls.input_names)} names for {cls.n_inputs} inputs")
    lo, hi = cls.default_bounds
    if len(lo) != cls.n_params or len(hi) != cls.n_params:
        problems.append(
            f"default_bounds has lengths ({len(lo)}, {len(hi)}) for {cls.n_params} parameters"
        )
    elif not all(a < b for a, b in zip(lo, hi, strict=True)):
        problems.append("default_bounds needs lower < upper for every parameter")
    if problems:
        raise CapscaleError(f"cannot register law {name!r}: " + "; ".join(problems))


def get_law(name_or_law: str | type[Law]) -> type[Law]:
    """Look up a law by registry name, or pass a :class:`Law` subclass through.

    Parameters
    ----------
    name_or_law : str or type[Law]
        A registered name such as ``"chinchilla"``, or a law class.

    Returns
    -------
    type[Law]

    Raises
    ------
    UnknownNameError
        No law has that name (the message suggests close matches and lists the known names).
    TypeError
        ``name_or_law`` is neither a string nor a Law subclass.
    """
    if isinstance(name_or_law, type) and issubclass(name_or_law, Law):
        return name_or_law
    if not isinstance(name_or_law, str):
        raise TypeError(f"expected a law name or a Law subclass; got {name_or_law!r}")
    try:
        return _REGISTRY[name_or_law]
    except KeyError:
        pass
    known = ", ".join(list_laws())
    hint = did_you_mean(name_or_law, _REGISTRY)
    if hint:
        msg = f"unknown law {name_or_law!r}; {hint} Known: {known}"
    else:
        msg = f"unknown law {name_or_law!r}. Known: {known}"
    raise UnknownNameError(msg)


def list_laws() -> list[str]:
    """Names of the registered laws, sorted.

    Returns
    -------
    list of str
    """
    return sorted(_REGISTRY)
