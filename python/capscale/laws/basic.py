"""One-input laws: power, saturating power, four-parameter logistic, exponential, log-linear.

``func`` accepts complex parameters (it is analytic in them), so a complex-step derivative
can check ``jac``; ``x`` is always real.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .base import FloatArray, Law, as_inputs, linear_fit, register_law, thin, y_scale

__all__ = [
    "Exponential",
    "LogLinear",
    "Logistic4",
    "PowerLaw",
    "SaturatingPowerLaw",
    "doubling_time",
]

_INF = float("inf")


def _geomean(x: FloatArray) -> np.float64:
    """Geometric mean of positive values (a scale for ``x`` that keeps powers in range).

    A NumPy scalar, so that powers of it overflow to inf (under ``errstate``) rather than
    raising ``OverflowError`` as Python floats do.
    """
    g: np.float64 = np.float64(np.exp(np.mean(np.log(x))))
    return g


def _powers(x: FloatArray, exponents: FloatArray) -> FloatArray:
    """``x ** (-b)`` for each ``b`` in ``exponents``: shape ``(len(exponents), m)``.

    Log-powers are clipped to the float64 range, so nothing overflows (rows that would are
    wrong but finite, and lose on residual anyway).
    """
    with np.errstate(under="ignore"):
        out: FloatArray = np.exp(np.clip(-np.outer(exponents, np.log(x)), -745.0, 709.0))
    return out


def _regress_rows(u: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Line ``y ≈ c0 + c1 * u[g]`` for each row g of ``u`` (shape ``(G, m)``).

    Returns ``(c0, c1, rss)``, each shape ``(G,)``; rows with a constant or non-finite ``u``
    get ``c1 = 0``, ``c0 = mean(y)`` and ``rss = inf``.
    """
    with np.errstate(all="ignore"):
        um = u.mean(axis=1, keepdims=True)
        uc = u - um
        yc = y - y.mean()
        suu = np.einsum("gm,gm->g", uc, uc)
        suy = uc @ yc
        syy = float(yc @ yc)
        ok = np.isfinite(suu) & np.isfinite(suy) & (suu > 0)
        c1 = np.where(ok, suy / np.where(ok, suu, 1.0), 0.0)
        c0 = y.mean() - c1 * um[:, 0]
        rss = np.where(ok, syy - c1 * suy, np.inf)
    ok &= np.isfinite(c0) & np.isfinite(c1) & np.isfinite(rss)
    return np.where(ok, c0, y.mean()), np.where(ok, c1, 0.0), np.where(ok, rss, np.inf)


def stable_sigmoid(z: Any) -> Any:
    """Logistic function ``1 / (1 + exp(-z))`` without overflow for any ``|z|``.

    Evaluates ``exp(-|z|)`` only (``|Re z|`` for complex ``z``, which keeps it analytic).

    Parameters
    ----------
    z : array_like (real or complex)

    Returns
    -------
    ndarray
        Same shape as ``z``, values in (0, 1) for real ``z``.
    """
    z = np.asarray(z)
    pos = np.real(z) >= 0
    e = np.exp(np.where(pos, -z, z))
    return np.where(pos, 1.0 / (1.0 + e), e / (1.0 + e))


def doubling_time(b: ArrayLike) -> Any:
    """Doubling time ``ln 2 / b`` of the ``exponential`` law ``y = a * exp(b * x)``.

    Parameters
    ----------
    b : float or array_like
        Growth rate, in 1 / (units of x).

    Returns
    -------
    float or ndarray
        Doubling time in the units of ``x`` (e.g. days when ``x`` is a date in days);
        negative for a decaying law (the halving time, negated), ``inf`` for ``b = 0``.
    """
    with np.errstate(divide="ignore"):
        t = np.log(2.0) / np.asarray(b, dtype=np.float64)
    return float(t) if t.ndim == 0 else t


@register_law("power_law")
class PowerLaw(Law):
    """Power law ``y = a * x**(-b)``.

    Parameters ``(a, b)``: ``a`` in the units of ``y`` (the value at ``x = 1``), ``b``
    dimensionless (positive for a decreasing law). ``x > 0``. Bounds are unbounded by
    default because sign conventions vary (``b < 0`` is a growing law, ``a < 0`` a negative
    quantity).
    """

    param_names = ("a", "b")
    positive_inputs = True
    formula = "y = a * x**(-b)"
    default_bounds = ((-_INF, -_INF), (_INF, _INF))

    @staticmethod
    def func(x: ArrayLike, a: Any, b: Any) -> FloatArray:
        """Evaluate the law.

        Parameters
        ----------
        x : array_like, shape (m,)
            Positive inputs.
        a, b : float
            Parameters.

        Returns
        -------
        ndarray, shape (m,)
        """
        xa = as_inputs(PowerLaw, x)
        return a * xa ** (-b)  # type: ignore[no-any-return]

    @staticmethod
    def jac(x: ArrayLike, a: float, b: float) -> FloatArray:
        """Jacobian ``[dy/da, dy/db]``, shape (m, 2)."""
        xa = as_inputs(PowerLaw, x)
        xb = xa ** (-b)
        return np.stack([xb, -a * xb * np.log(xa)], axis=-1)

    @classmethod
    def guess(cls, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Start from a line fit of ``log|y|`` on ``log x`` when ``y`` has one sign.

        Otherwise (mixed signs, zeros, one distinct ``x``) the best ``b`` on a grid in
        [-4, 4] with ``a`` solved by least squares. Returns shape (2,).
        """
        xa, ya = cls.check_data(x, y)
        xa, ya = thin(xa, ya)
        lx = np.log(xa)
        if np.all(ya > 0) or np.all(ya < 0):
            s = float(np.sign(ya[0]))
            line = linear_fit(lx, np.log(s * ya))
            if line is not None:
                with np.errstate(over="ignore"):
                    a = s * float(np.exp(line[0]))
                if np.isfinite(a):
                    return cls.clip_to_bounds([a, -line[1]])
        ys = y_scale(ya)
        ya = ya / ys
        x0 = _geomean(xa)
        grid = np.linspace(-4.0, 4.0, 161)
        u = _powers(xa / x0, grid)
        with np.errstate(all="ignore"):
            suu = np.einsum("gm,gm->g", u, u)
            a_s = (u @ ya) / suu
            rss = np.einsum("gm,gm->g", ya - a_s[:, None] * u, ya - a_s[:, None] * u)
        rss = np.where(np.isfinite(rss) & np.isfinite(a_s) & (suu > 0), rss, np.inf)
        g = int(np.argmin(rss))
        if not np.isfinite(rss[g]):
            return cls.clip_to_bounds([ys * (float(np.mean(ya)) or 1.0), 0.0])
        b = float(grid[g])
        with np.errstate(over="ignore"):
            a = float(ys * a_s[g] * x0**b)
        return cls.clip_to_bounds([a, b])


@register_law("saturating_power_law")
class SaturatingPowerLaw(Law):
    """Saturating power law ``y = a * x**(-b) + c``.

    Parameters ``(a, b, c)``: ``a`` in the units of ``y``, ``b`` dimensionless, ``c`` the
    asymptote (irreducible loss) in the units of ``y``. ``x > 0``. Default bounds
    ``a >= 0``, ``0 <= b <= 10``, ``c`` free (``c >= 0`` holds for losses only).
    """

    param_names = ("a", "b", "c")
    positive_inputs = True
    formula = "y = a * x**(-b) + c"
    default_bounds = ((0.0, 0.0, -_INF), (_INF, 10.0, _INF))

    @staticmethod
    def func(x: ArrayLike, a: Any, b: Any, c: Any) -> FloatArray:
        """Evaluate the law.

        Parameters
        ----------
        x : array_like, shape (m,)
            Positive inputs (e.g. parameters or tokens).
        a, b, c : float
            Parameters.

        Returns
        -------
        ndarray, shape (m,)
        """
        xa = as_inputs(SaturatingPowerLaw, x)
        return a * xa ** (-b) + c  # type: ignore[no-any-return]

    @staticmethod
    def jac(x: ArrayLike, a: float, b: float, c: float) -> FloatArray:
        """Jacobian ``[dy/da, dy/db, dy/dc]``, shape (m, 3)."""
        xa = as_inputs(SaturatingPowerLaw, x)
        xb = xa ** (-b)
        return np.stack([xb, -a * xb * np.log(xa), np.ones_like(xb)], axis=-1)

    @classmethod
    def guess(cls, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Best ``b`` on a grid in (0, 10), with ``(a, c)`` solved by least squares.

        (Variable projection: for fixed ``b`` the law is linear in ``a`` and ``c``.) Only
        grid points with ``a > 0`` count; if none has one (``y`` not decreasing) the start is
        ``b = 0.5``, a small ``a`` and ``c = mean(y)``. Returns shape (3,).
        """
        xa, ya = cls.check_data(x, y)
        xa, ya = thin(xa, ya)
        ys = y_scale(ya)
        ya = ya / ys
        x0 = _geomean(xa)
        grid = np.geomspace(1e-3, 9.5, 240)
        c0, c1, rss = _regress_rows(_powers(xa / x0, grid), ya)
        rss = np.where(c1 > 0, rss, np.inf)
        g = int(np.argmin(rss))
        with np.errstate(over="ignore"):
            if np.isfinite(rss[g]):
                b = float(grid[g])
                a, c = float(c1[g] * x0**b), float(c0[g])
            else:
                b = 0.5
                scale = float(np.std(ya)) or abs(float(np.mean(ya))) or 1.0
                a = float(1e-3 * scale * x0**b)
                c = float(np.mean(ya)) - 1e-3 * scale * float(np.mean((xa / x0) ** (-b)))
        return cls.clip_to_bounds([ys * a, b, ys * c])


@register_law("logistic4")
class Logistic4(Law):
    """Four-parameter logistic ``y = c / (1 + exp(-k * (x - x0))) + d``.

    Parameters ``(c, k, x0, d)``: height ``c`` and floor ``d`` in the units of ``y``, rate
    ``k`` in 1 / (units of x), midpoint ``x0`` in the units of ``x``. Any finite ``x``.
    Evaluated with an overflow-free sigmoid. ``(c, k, x0, d)`` and ``(-c, -k, x0, d + c)``
    are the same curve; :meth:`guess` returns ``c > 0``.
    """

    param_names = ("c", "k", "x0", "d")
    formula = "y = c / (1 + exp(-k * (x - x0))) + d"
    default_bounds = ((-_INF,) * 4, (_INF,) * 4)

    @staticmethod
    def func(x: ArrayLike, c: Any, k: Any, x0: Any, d: Any) -> FloatArray:
        """Evaluate the law.

        Parameters
        ----------
        x : array_like, shape (m,)
            Inputs (e.g. log compute).
        c, k, x0, d : float
            Parameters.

        Returns
        -------
        ndarray, shape (m,)
        """
        xa = as_inputs(Logistic4, x)
        return c * stable_sigmoid(k * (xa - x0)) + d  # type: ignore[no-any-return]

    @staticmethod
    def jac(x: ArrayLike, c: float, k: float, x0: float, d: float) -> FloatArray:
        """Jacobian ``[dy/dc, dy/dk, dy/dx0, dy/dd]``, shape (m, 4)."""
        xa = as_inputs(Logistic4, x)
        z = k * (xa - x0)
        s = stable_sigmoid(z)
        e = np.exp(-np.abs(z))
        ds = e / (1.0 + e) ** 2  # sigma * (1 - sigma), without cancellation
        return np.stack([s, c * ds * (xa - x0), -c * k * ds, np.ones_like(s)], axis=-1)

    @classmethod
    def guess(cls, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Best ``(k, x0)`` on a grid, with ``(c, d)`` solved by least squares.

        ``x0`` runs over the data range (extended by a quarter on each side) and ``|k|``
        from ``1/R`` to ``128/R`` (``R`` the range of ``x``), both signs. Falls back to
        ``c, d`` from the range of ``y``, ``x0`` at the median of ``x`` and ``k = ±4/R``.
        Returns shape (4,) with ``c > 0``.
        """
        xa, ya = cls.check_data(x, y)
        xa, ya = thin(xa, ya)
        ys = y_scale(ya)
        ya = ya / ys
        lo, hi = float(xa.min()), float(xa.max())
        r = hi - lo
        if not (r > 0 and np.isfinite(r)):
            r = max(1.0, abs(lo))
        mags = np.geomspace(1.0, 128.0, 8) / r
        ks = np.concatenate([-mags[::-1], mags])
        x0s = np.linspace(lo - 0.25 * r, hi + 0.25 * r, 49)
        kk, xx = (a.ravel() for a in np.meshgrid(ks, x0s, indexing="ij"))
        s = stable_sigmoid(kk[:, None] * (xa[None, :] - xx[:, None]))
        d_, c_, rss = _regress_rows(s, ya)
        g = int(np.argmin(rss))
        if np.isfinite(rss[g]) and c_[g] != 0:
            c, k, x0, d = float(c_[g]), float(kk[g]), float(xx[g]), float(d_[g])
        else:
            line = linear_fit(xa, ya)
            slope = line[1] if line is not None else 1.0
            c = float(ya.max() - ya.min()) or 1.0
            d = float(ya.min())
            k = (4.0 if slope >= 0 else -4.0) / r
            x0 = float(np.median(xa))
        if c < 0:
            c, k, d = -c, -k, d + c
        return cls.clip_to_bounds([ys * c, k, x0, ys * d])


@register_law("exponential")
class Exponential(Law):
    """Exponential ``y = a * exp(b * x)``.

    Parameters ``(a, b)``: ``a`` the value at ``x = 0`` in the units of ``y``; ``b`` the rate
    in 1 / (units of x); :func:`doubling_time` gives ``ln 2 / b``. Any finite ``x``.
    """

    param_names = ("a", "b")
    formula = "y = a * exp(b * x)"
    default_bounds = ((-_INF, -_INF), (_INF, _INF))

    @staticmethod
    def func(x: ArrayLike, a: Any, b: Any) -> FloatArray:
        """Evaluate the law.

        Parameters
        ----------
        x : array_like, shape (m,)
            Inputs (e.g. release date in days).
        a, b : float
            Parameters.

        Returns
        -------
        ndarray, shape (m,)
        """
        xa = as_inputs(Exponential, x)
        return a * np.exp(b * xa)  # type: ignore[no-any-return]

    @staticmethod
    def jac(x: ArrayLike, a: float, b: float) -> FloatArray:
        """Jacobian ``[dy/da, dy/db]``, shape (m, 2)."""
        xa = as_inputs(Exponential, x)
        e = np.exp(b * xa)
        return np.stack([e, a * xa * e], axis=-1)

    @classmethod
    def guess(cls, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Start from a line fit of ``log|y|`` on ``x`` when ``y`` has one sign.

        Otherwise the best ``b`` on a grid of ``±(0.01 … 20) / R`` and 0 (``R`` the range of
        ``x``), with ``a`` solved by least squares. Returns shape (2,).
        """
        xa, ya = cls.check_data(x, y)
        xa, ya = thin(xa, ya)
        if np.all(ya > 0) or np.all(ya < 0):
            s = float(np.sign(ya[0]))
            line = linear_fit(xa, np.log(s * ya))
            if line is not None:
                with np.errstate(over="ignore"):
                    a = s * float(np.exp(line[0]))
                if np.isfinite(a):
                    return cls.clip_to_bounds([a, line[1]])
        ys = y_scale(ya)
        ya = ya / ys
        xc = float(np.mean(xa))
        r = float(np.ptp(xa)) or 1.0
        mags = np.geomspace(0.01, 20.0, 40) / r
        grid = np.concatenate([-mags[::-1], [0.0], mags])
        with np.errstate(all="ignore"):
            u = np.exp(np.clip(np.outer(grid, xa - xc), -745.0, 709.0))
            a_s = (u @ ya) / np.einsum("gm,gm->g", u, u)
            res = ya - a_s[:, None] * u
            rss = np.einsum("gm,gm->g", res, res)
        rss = np.where(np.isfinite(rss) & np.isfinite(a_s), rss, np.inf)
        g = int(np.argmin(rss))
        b = float(grid[g])
        with np.errstate(over="ignore", under="ignore"):
            a = float(a_s[g]) * float(np.exp(-b * xc))
        if not (np.isfinite(a) and np.isfinite(rss[g])):
            a, b = float(np.mean(ya)) or 1.0, 0.0
        return cls.clip_to_bounds([ys * a, b])


@register_law("log_linear")
class LogLinear(Law):
    """Log-linear law ``y = a + b * ln(x)``.

    Parameters ``(a, b)`` in the units of ``y`` (``b`` per e-fold of ``x``). ``x > 0``.
    """

    param_names = ("a", "b")
    positive_inputs = True
    formula = "y = a + b * ln(x)"
    default_bounds = ((-_INF, -_INF), (_INF, _INF))

    @staticmethod
    def func(x: ArrayLike, a: Any, b: Any) -> FloatArray:
        """Evaluate the law.

        Parameters
        ----------
        x : array_like, shape (m,)
            Positive inputs.
        a, b : float
            Parameters.

        Returns
        -------
        ndarray, shape (m,)
        """
        xa = as_inputs(LogLinear, x)
        return a + b * np.log(xa)  # type: ignore[no-any-return]

    @staticmethod
    def jac(x: ArrayLike, a: float, b: float) -> FloatArray:
        """Jacobian ``[dy/da, dy/db]``, shape (m, 2)."""
        lx = np.log(as_inputs(LogLinear, x))
        return np.stack([np.ones_like(lx), lx], axis=-1)

    @classmethod
    def guess(cls, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Ordinary least squares of ``y`` on ``ln x`` (the exact solution); with a single
        distinct ``x``, ``(mean(y), 0)``. Returns shape (2,)."""
        xa, ya = cls.check_data(x, y)
        line = linear_fit(np.log(xa), ya)
        if line is None:
            return cls.clip_to_bounds([float(np.mean(ya)), 0.0])
        return cls.clip_to_bounds([line[0], line[1]])
