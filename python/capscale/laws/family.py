"""Law families: the fitted models of the source papers (Chinchilla allocation, observational
scaling, capability density, context-aware, precision, clembench size regressions).

Each family is a registered class with one contract, so the CLI, the HTML report and the store
integration treat them alike::

    fitted = get_family("densing").fit(table, **options)   # a pandas DataFrame in
    fitted.predict(new_rows, ci=0.95)                       # DataFrame: prediction, ci_low, ci_high
    print(fitted.summary())
    fitted.plot(ax)                                         # matplotlib, imported lazily
    fitted.save("fit.json"); load_fit("fit.json")           # JSON round trip

Families build on :mod:`capscale.fit` (the native solver; bootstrap and multi-start as batch
calls) and :mod:`capscale.stats`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..errors import CapscaleError, FormatError, InvalidInputError, UnknownNameError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LawFamily",
    "get_family",
    "list_families",
    "load_fit",
    "register_family",
    "require_columns",
]

_FAMILIES: dict[str, type[LawFamily]] = {}
F = TypeVar("F", bound="type[LawFamily]")


class LawFamily(ABC):
    """A fitted law of one family. Subclasses set :attr:`name` via :func:`register_family`.

    Subclasses implement :meth:`fit` (a classmethod returning a fitted instance),
    :meth:`predict`, :meth:`summary`, :meth:`to_dict` / :meth:`from_dict` and :meth:`plot`.
    """

    name: ClassVar[str] = ""
    #: Columns :meth:`fit` needs in its input table (documentation and CLI help).
    required_columns: ClassVar[tuple[str, ...]] = ()
    #: One-line description for ``capscale laws list``.
    description: ClassVar[str] = ""

    @classmethod
    @abstractmethod
    def fit(cls, data: pd.DataFrame, **options: Any) -> LawFamily:
        """Fit the family to a table (one row per model/run/observation)."""

    @classmethod
    def from_store(
        cls, path: str | Path, metric: str | None = None, task: str | None = None, **options: Any
    ) -> pd.DataFrame:
        """The table :meth:`fit` takes, built from a results store. Default: one row per
        (model, precision, task, context length) cell — ``score`` (mean of ``metric``),
        ``stderr``, CI, ``n_items`` — with the model card and precision columns
        (:func:`capscale.laws.data.table_from_store`). Families override it to map those
        columns onto their own (e.g. ``N``, ``D``, ``L``)."""
        from .data import table_from_store

        return table_from_store(path, metric=metric, task=task)

    @abstractmethod
    def predict(self, data: pd.DataFrame, *, ci: float = 0.95) -> pd.DataFrame:
        """Predictions for new rows: the input columns plus ``prediction``, ``ci_low``,
        ``ci_high`` (CIs from the fit's bootstrap or covariance)."""

    @abstractmethod
    def summary(self) -> str:
        """A readable report of the fitted constants with their uncertainty."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (enough for :meth:`from_dict` to predict again)."""

    @classmethod
    @abstractmethod
    def from_dict(cls, state: Mapping[str, Any]) -> LawFamily:
        """Rebuild a fitted instance from :meth:`to_dict`'s output."""

    @abstractmethod
    def plot(self, ax: Any = None) -> Any:
        """Draw the family's characteristic figure on ``ax`` (new figure if None); return
        the matplotlib Axes."""

    def save(self, path: str | Path) -> None:
        """Write the fit as JSON (``{"family": name, "state": to_dict()}``)."""
        Path(path).write_text(
            json.dumps({"family": self.name, "state": self.to_dict()}, indent=2, sort_keys=True)
        )

    def __str__(self) -> str:
        return self.summary()


def register_family(name: str) -> Callable[[F], F]:
    """Class decorator registering a :class:`LawFamily` under ``name``."""

    def decorator(cls: F) -> F:
        if name in _FAMILIES and _FAMILIES[name] is not cls:
            raise CapscaleError(f"law family {name!r} is already registered")
        cls.name = name
        _FAMILIES[name] = cls
        return cls

    return decorator


def _ensure_builtin() -> None:
    # Importing the family modules registers them (kept lazy: pandas/matplotlib users only).
    from . import families  # noqa: F401


def get_family(name: str) -> type[LawFamily]:
    """The registered family ``name`` (UnknownNameError with a suggestion otherwise)."""
    _ensure_builtin()
    if name not in _FAMILIES:
        hint = did_you_mean(name, _FAMILIES)
        raise UnknownNameError(
            f"unknown law family {name!r}; {hint + ' ' if hint else ''}"
            f"known: {', '.join(sorted(_FAMILIES))}"
        )
    return _FAMILIES[name]


def list_families() -> list[str]:
    """Names of the registered law families."""
    _ensure_builtin()
    return sorted(_FAMILIES)


def load_fit(path: str | Path) -> LawFamily:
    """Read a fit written by :meth:`LawFamily.save`."""
    try:
        blob = json.loads(Path(path).read_text())
        family, state = blob["family"], blob["state"]
    except (ValueError, KeyError, TypeError):
        raise FormatError(
            f"{path}: not a capscale law fit (JSON with 'family' and 'state')"
        ) from None
    return get_family(family).from_dict(state)


def require_columns(data: Any, columns: tuple[str, ...] | list[str], family: str) -> None:
    """Raise if ``data`` (a DataFrame) lacks any of ``columns``, naming the family."""
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        raise InvalidInputError(f"{family}: data must be a pandas DataFrame")
    missing = [c for c in columns if c not in data.columns]
    if missing:
        hints = [did_you_mean(c, [str(x) for x in data.columns]) for c in missing]
        hint = " ".join(h for h in hints if h)
        names = ", ".join(map(repr, missing))
        raise UnknownNameError(
            f"{family}: missing column(s) {names}; {hint + ' ' if hint else ''}"
            f"columns are {', '.join(map(str, data.columns))}"
        )
