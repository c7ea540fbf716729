"""Chinchilla laws of loss in model size ``N`` and training tokens ``D`` (Hoffmann et al. 2022).

``chinchilla`` is the law itself, ``L = E + A / N**alpha + B / D**beta``. ``chinchilla_lse``
is the parametrisation of Hoffmann et al.'s Approach 3, ``log L = LSE(a - alpha log N,
b - beta log D, e)`` with ``A = e^a``, ``B = e^b``, ``E = e^e``; it predicts ``log L`` and is
fit to ``y = log L`` with a Huber loss (delta 1e-3) from the grid :func:`hoffmann_grid`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InvalidInputError, ShapeError
from .base import FloatArray, Law, as_inputs, register_law, thin, y_scale

__all__ = ["Chinchilla", "ChinchillaLSE", "hoffmann_grid"]

_INF = float("inf")

# Exponent grid for the Chinchilla guess (variable projection over alpha, beta).
_EXPONENT_GRID = np.array(
    [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.85, 1.0, 1.25, 1.5, 2.0]
)
# The 7 non-empty subsets of the columns (1, N^-alpha, D^-beta): exact non-negative least
# squares for 3 unknowns is the best feasible unconstrained solution over these supports.
_SUPPORTS = ((0, 1, 2), (1, 2), (0, 2), (0, 1), (0,), (1,), (2,))


def hoffmann_grid() -> FloatArray:
    """Hoffmann et al.'s 4500 starting points for the ``chinchilla_lse`` fit.

    ``a, b`` in {0, 5, …, 25}, ``e`` in {-1, -0.5, …, 1}, ``alpha, beta`` in
    {0, 0.5, …, 2}; rows ordered as nested loops a → b → e → alpha → beta (beta fastest).

    Returns
    -------
    ndarray of float64, shape (4500, 5)
        Columns ``(a, b, e, alpha, beta)``.
    """
    ab = np.arange(0.0, 26.0, 5.0)
    e = np.arange(-1.0, 1.01, 0.5)
    ex = np.arange(0.0, 2.01, 0.5)
    mesh = np.meshgrid(ab, ab, e, ex, ex, indexing="ij")
    return np.stack([g.ravel() for g in mesh], axis=1)


def _fit_chinchilla(n: FloatArray, d: FloatArray, y: FloatArray) -> FloatArray | None:
    """Variable-projection start: best (alpha, beta) on a grid, (E, A, B) >= 0 by exact NNLS."""
    n0 = np.exp(np.mean(np.log(n)))  # NumPy scalars: powers overflow to inf, not raise
    d0 = np.exp(np.mean(np.log(d)))
    grid = _EXPONENT_GRID
    with np.errstate(under="ignore"):
        un = np.exp(np.clip(-np.outer(grid, np.log(n / n0)), -745.0, 709.0))  # (G, m)
        ud = np.exp(np.clip(-np.outer(grid, np.log(d / d0)), -745.0, 709.0))
    ia, ib = np.meshgrid(np.arange(grid.size), np.arange(grid.size), indexing="ij")
    ga, gb = ia.ravel(), ib.ravel()
    ones = np.ones((ga.size, y.size))
    cols = np.stack([ones, un[ga], ud[gb]], axis=1)  # (K, 3, m)
    best_rss, best = np.inf, None
    for support in _SUPPORTS:
        sub = cols[:, support, :]  # (K, s, m)
        scale = np.sqrt(np.einsum("ksm,ksm->ks", sub, sub))
        with np.errstate(all="ignore"):
            z = sub / scale[:, :, None]
            gram = np.einsum("ksm,ktm->kst", z, z)
            rhs = np.einsum("ksm,m->ks", z, y)
            gram += 1e-12 * np.eye(len(support))
            ok = np.isfinite(gram).all(axis=(1, 2)) & np.isfinite(rhs).all(axis=1)
            coef = np.full(rhs.shape, np.nan)
            if ok.any():
                coef[ok] = np.linalg.solve(gram[ok], rhs[ok][..., None])[..., 0]
            coef /= scale
            res = y - np.einsum("ksm,ks->km", sub, coef)
            rss = np.einsum("km,km->k", res, res)
        feasible = ok & np.isfinite(rss) & np.all(coef >= 0, axis=1)
        if not feasible.any():
            continue
        k = int(np.argmin(np.where(feasible, rss, np.inf)))
        if rss[k] < best_rss:
            full = np.zeros(3)
            full[list(support)] = coef[k]
            e_, a_, b_ = full
            alpha, beta = float(grid[ga[k]]), float(grid[gb[k]])
            with np.errstate(over="ignore"):
                best = np.array([e_, a_ * n0**alpha, b_ * d0**beta, alpha, beta])
            best_rss = float(rss[k])
    if best is None or not np.isfinite(best).all():
        return None
    return best


@register_law("chinchilla")
class Chinchilla(Law):
    """Chinchilla law ``L = E + A / N**alpha + B / D**beta``.

    Parameters ``(E, A, B, alpha, beta)``: ``E`` (irreducible loss) in nats per token, ``A``
    and ``B`` in nats·params^alpha and nats·tokens^beta, exponents dimensionless. ``x`` has
    shape ``(2, m)`` with rows ``N`` (parameters) and ``D`` (training tokens), both > 0.
    Default bounds: all parameters >= 0, exponents <= 3.
    """

    param_names = ("E", "A", "B", "alpha", "beta")
    n_inputs = 2
    input_names = ("N", "D")
    positive_inputs = True
    formula = "L = E + A / N**alpha + B / D**beta"
    default_bounds = ((0.0, 0.0, 0.0, 0.0, 0.0), (_INF, _INF, _INF, 3.0, 3.0))

    @staticmethod
    def func(x: ArrayLike, E: Any, A: Any, B: Any, alpha: Any, beta: Any) -> FloatArray:
        """Evaluate the law.

        Parameters
        ----------
        x : array_like, shape (2, m)
            Rows ``N`` (parameters) and ``D`` (tokens), both > 0.
        E, A, B, alpha, beta : float
            Parameters.

        Returns
        -------
        ndarray, shape (m,)
            Loss ``L`` (nats per token).
        """
        xa = as_inputs(Chinchilla, x)
        return E + A * xa[0] ** (-alpha) + B * xa[1] ** (-beta)  # type: ignore[no-any-return]

    @staticmethod
    def jac(x: ArrayLike, E: float, A: float, B: float, alpha: float, beta: float) -> FloatArray:
        """Jacobian ``[dL/dE, dL/dA, dL/dB, dL/dalpha, dL/dbeta]``, shape (m, 5)."""
        xa = as_inputs(Chinchilla, x)
        n, d = xa[0], xa[1]
        na = n ** (-alpha)
        db = d ** (-beta)
        return np.stack(
            [np.ones_like(na), na, db, -A * na * np.log(n), -B * db * np.log(d)], axis=-1
        )

    @classmethod
    def guess(cls, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Best ``(alpha, beta)`` on a grid in [0.05, 2] with ``(E, A, B) >= 0`` by least
        squares (variable projection).

        Falls back to ``E = 0.9 min(L)``, ``alpha = beta = 0.3`` and ``A, B`` splitting the
        mean excess ``L - E`` when no grid point fits (e.g. losses that rise with ``N``).
        Returns shape (5,), strictly inside ``default_bounds``.
        """
        xa, ya = cls.check_data(x, y)
        xa, ya = thin(xa, ya)
        ys = y_scale(ya)
        ya = ya / ys
        n_lo, d_lo = xa[0].min(), xa[1].min()
        p = _fit_chinchilla(xa[0], xa[1], ya)
        if p is None:
            e = max(0.9 * float(ya.min()), 0.0)
            excess = max(float(np.mean(ya)) - e, 1e-3)
            n0 = np.exp(np.mean(np.log(xa[0])))
            d0 = np.exp(np.mean(np.log(xa[1])))
            with np.errstate(over="ignore"):
                p = np.array([e, 0.5 * excess * n0**0.3, 0.5 * excess * d0**0.3, 0.3, 0.3])
        # keep the start off the E, A, B = 0 faces (a zero coefficient leaves its exponent
        # without gradient, and chinchilla_lse needs logs of all three): each term at least
        # 1e-3 of the typical |y| over the data
        floor = 1e-3 * max(float(np.mean(np.abs(ya))), 1e-12)
        with np.errstate(over="ignore"):
            p[0] = max(p[0], floor)
            p[1] = max(p[1], floor * n_lo ** p[3])
            p[2] = max(p[2], floor * d_lo ** p[4])
            p[:3] *= ys
        return cls.clip_to_bounds(p)


@register_law("chinchilla_lse")
class ChinchillaLSE(Law):
    """Chinchilla law in Hoffmann et al.'s log-sum-exp form, predicting ``log L``.

    ``log L = LSE(a - alpha * log N, b - beta * log D, e)``, i.e.
    ``L = E + A / N**alpha + B / D**beta`` with ``A = e^a``, ``B = e^b``, ``E = e^e``
    (which keeps ``A, B, E > 0`` without bounds). Parameters ``(a, b, e, alpha, beta)``.
    ``x`` has shape ``(2, m)`` with rows ``N`` and ``D``, both > 0. Fit it to
    ``y = log L`` (Approach 3 uses a Huber loss with delta 1e-3 from :func:`hoffmann_grid`).
    """

    param_names = ("a", "b", "e", "alpha", "beta")
    n_inputs = 2
    input_names = ("N", "D")
    positive_inputs = True
    formula = "log L = logsumexp(a - alpha*log N, b - beta*log D, e)"
    default_bounds = ((-_INF, -_INF, -_INF, 0.0, 0.0), (_INF, _INF, _INF, 3.0, 3.0))

    hoffmann_grid = staticmethod(hoffmann_grid)

    @staticmethod
    def func(x: ArrayLike, a: Any, b: Any, e: Any, alpha: Any, beta: Any) -> FloatArray:
        """Evaluate ``log L`` with a max-shifted (overflow-free) log-sum-exp.

        Parameters
        ----------
        x : array_like, shape (2, m)
            Rows ``N`` (parameters) and ``D`` (tokens), both > 0.
        a, b, e, alpha, beta : float
            Parameters.

        Returns
        -------
        ndarray, shape (m,)
            ``log L`` (log of nats per token).
        """
        xa = as_inputs(ChinchillaLSE, x)
        t1 = a - alpha * np.log(xa[0])
        t2 = b - beta * np.log(xa[1])
        t3 = e + np.zeros_like(t1)
        m = np.maximum(np.maximum(np.real(t1), np.real(t2)), np.real(t3))
        return m + np.log(np.exp(t1 - m) + np.exp(t2 - m) + np.exp(t3 - m))  # type: ignore[no-any-return]

    @staticmethod
    def jac(x: ArrayLike, a: float, b: float, e: float, alpha: float, beta: float) -> FloatArray:
        """Jacobian, shape (m, 5): softmax weights ``w1, w2, w3`` of the three terms give
        ``[w1, w2, w3, -w1 log N, -w2 log D]``."""
        xa = as_inputs(ChinchillaLSE, x)
        ln, ld = np.log(xa[0]), np.log(xa[1])
        t = np.stack([a - alpha * ln, b - beta * ld, np.full_like(ln, e)], axis=-1)
        w = np.exp(t - t.max(axis=-1, keepdims=True))
        w /= w.sum(axis=-1, keepdims=True)
        return np.stack(
            [w[..., 0], w[..., 1], w[..., 2], -w[..., 0] * ln, -w[..., 1] * ld], axis=-1
        )

    @classmethod
    def guess(cls, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """The :class:`Chinchilla` guess on ``L = exp(y)``, mapped to ``(log A, log B, log E,
        alpha, beta)``. Returns shape (5,)."""
        xa, ya = cls.check_data(x, y)
        with np.errstate(over="ignore"):
            loss = np.exp(ya)
        if not np.isfinite(loss).all():
            loss = np.exp(ya - ya.max())  # the scale is absorbed by a, b, e
            p = cls.from_chinchilla(Chinchilla.guess(xa, loss))
            p[:3] += ya.max()
            return cls.clip_to_bounds(p)
        return cls.clip_to_bounds(cls.from_chinchilla(Chinchilla.guess(xa, loss)))

    @classmethod
    def to_chinchilla(cls, p: ArrayLike) -> FloatArray:
        """Map ``(a, b, e, alpha, beta)`` to :class:`Chinchilla`'s ``(E, A, B, alpha, beta)``.

        Parameters
        ----------
        p : array_like, shape (5,) or (k, 5)

        Returns
        -------
        ndarray of float64, same shape as ``p``
        """
        q = _params(p, cls)
        out = np.empty_like(q)
        with np.errstate(over="ignore"):
            out[..., 0] = np.exp(q[..., 2])
            out[..., 1] = np.exp(q[..., 0])
            out[..., 2] = np.exp(q[..., 1])
        out[..., 3:] = q[..., 3:]
        return out

    @classmethod
    def from_chinchilla(cls, p: ArrayLike) -> FloatArray:
        """Map :class:`Chinchilla`'s ``(E, A, B, alpha, beta)`` to ``(a, b, e, alpha, beta)``.

        Parameters
        ----------
        p : array_like, shape (5,) or (k, 5)
            ``E, A, B`` must be > 0.

        Returns
        -------
        ndarray of float64, same shape as ``p``

        Raises
        ------
        InvalidInputError
            Some ``E``, ``A`` or ``B`` is <= 0 (no logarithm).
        """
        q = _params(p, cls)
        if not np.all(q[..., :3] > 0):
            raise InvalidInputError(
                "chinchilla_lse.from_chinchilla: E, A and B must be > 0 to take logs; "
                f"got {q[..., :3].tolist()}"
            )
        out = np.empty_like(q)
        out[..., 0] = np.log(q[..., 1])
        out[..., 1] = np.log(q[..., 2])
        out[..., 2] = np.log(q[..., 0])
        out[..., 3:] = q[..., 3:]
        return out


def _params(p: ArrayLike, law: type[Law]) -> FloatArray:
    q = np.array(p, dtype=np.float64)
    if q.ndim not in (1, 2) or q.shape[-1] != law.n_params:
        raise ShapeError(
            f"{law.name}: parameters must have shape ({law.n_params},) or (k, {law.n_params}); "
            f"got shape {q.shape}"
        )
    return q
