"""Shared fixtures: the reference data in ``../shared`` (never copied into the project)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ``../shared``; the test is skipped (with the reason) when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data {path} is absent (it lives in ../shared beside the repo)")
    return path


@pytest.fixture(scope="session")
def nist() -> ModuleType:
    """NIST StRD models, Jacobians and parser (``../shared/nist_strd/models.py``)."""
    path = shared_path("nist_strd", "models.py")
    spec = importlib.util.spec_from_file_location("nist_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while executing
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def chinchilla_runs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epoch AI's 245 Chinchilla runs less the 5 highest losses: (N, D, L), 240 each."""
    path = shared_path("chinchilla_epoch", "svg_extracted_data.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    n = np.array([float(r["Model Size"]) for r in rows])
    c = np.array([float(r["Training FLOP"]) for r in rows])
    loss = np.array([float(r["loss"]) for r in rows])
    keep = np.sort(np.argsort(loss)[:-5])
    d = c / (6 * n)
    return n[keep], d[keep], loss[keep]


def lre(estimate: np.ndarray, certified: np.ndarray) -> float:
    """Log relative error: correct significant digits, min over entries, in [0, 11]."""
    estimate = np.asarray(estimate, dtype=float)
    certified = np.asarray(certified, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        digits = -np.log10(np.abs(estimate - certified) / np.abs(certified))
    digits = np.nan_to_num(digits, nan=0.0, posinf=11.0)
    return float(np.clip(digits, 0.0, 11.0).min())


# Hypothesis: the "ci" profile (derandomized, so CI runs are reproducible; no deadline, the
# 2-core CI machine is noisy) is the default; `pytest --hypothesis-profile dev` explores more.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, max_examples=25, deadline=None)
_hypothesis_settings.register_profile("dev", max_examples=300, deadline=None)
_hypothesis_settings.load_profile("ci")
