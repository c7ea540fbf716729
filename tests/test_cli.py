"""The ``capscale fit`` command: the embedded default job and CSV input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from capscale.cli.fit import EXAMPLE_PARAMS, read_csv, write_example_csv
from capscale.cli.main import main


def test_default_job_fits_the_generated_example(capsys, tmp_path) -> None:
    path = tmp_path / "example.csv"
    assert main(["fit", "--write-example", str(path), "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    assert "converged" in out and "saturating_power_law" in out
    header, data = read_csv(str(path))
    assert header == ["params", "loss"] and data.shape == (12, 2)
    # The printed intervals bracket the true exponent the data was generated from.
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("b ") and "[" in ln)
    lo, hi = (float(v) for v in line.split("[")[1].split("]")[0].split(","))
    assert lo <= EXAMPLE_PARAMS["b"] <= hi


def test_fit_of_a_user_csv_with_two_inputs_and_log_y(capsys, tmp_path) -> None:
    rng = np.random.default_rng(3)
    n = 10 ** rng.uniform(7, 10, 60)
    d = 10 ** rng.uniform(9, 12, 60)
    loss = 1.8 + 480 / n**0.34 + 2100 / d**0.37
    path = tmp_path / "runs.csv"
    rows = "\n".join(f"{a:.8g},{b:.8g},{c:.10g}" for a, b, c in zip(n, d, loss, strict=True))
    path.write_text("N,D,L\n" + rows + "\n")
    code = main(
        [
            "fit",
            str(path),
            "--law",
            "chinchilla_lse",
            "--log-y",
            "--loss",
            "huber",
            "--f-scale",
            "1e-3",
            "--bootstrap",
            "0",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "log(L) vs N, D" in out
    assert "alpha" in out and "0.34" in out


def test_errors_are_reported_without_a_traceback(capsys, tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n3,oops\n")
    assert main(["fit", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv:3" in err and "non-numeric" in err
    missing = tmp_path / "missing.csv"
    assert main(["fit", str(missing)]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_unknown_law_suggests_a_name(capsys, tmp_path) -> None:
    path = tmp_path / "e.csv"
    write_example_csv(str(path))
    assert main(["fit", str(path), "--law", "saturating_powerlaw"]) == 2
    assert "saturating_power_law" in capsys.readouterr().err


def test_console_script_lists_laws() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "capscale.cli.main", "fit", "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in ("power_law", "chinchilla", "chinchilla_lse", "logistic4", "log_linear"):
        assert name in out


@pytest.mark.parametrize("argv", [[], ["--version"]])
def test_top_level_usage(argv, capsys) -> None:
    if argv:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
        assert "capscale" in capsys.readouterr().out
    else:
        assert main(argv) == 2
