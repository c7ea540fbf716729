"""capscale.eval.tasks.metrics: hand-computed cases and lm-eval 0.4.13's own functions."""

from __future__ import annotations

import math
import re
import string

import numpy as np
import pytest

from capscale.errors import InvalidInputError
from capscale.eval.tasks import metrics as m

# --------------------------------------------------------------------------- multiple choice

# Three choices whose lengths differ in characters and bytes (Bogotá: 6 chars, 7 bytes):
#   acc       argmax(-6.3, -10.2, -4.5)                   -> 2 (Lima)
#   acc_norm  argmax(-6.3/6, -10.2/10, -4.5/4) = (-1.05, -1.02, -1.125)  -> 1 (Nouakchott)
#   acc_bytes argmax(-6.3/7, -10.2/10, -4.5/4) = (-0.90, -1.02, -1.125)  -> 0 (Bogotá)
CHOICES = ["Bogotá", "Nouakchott", "Lima"]
LLS = [-6.3, -10.2, -4.5]


@pytest.mark.parametrize(
    ("gold", "expected"),
    [
        (0, {"acc": 0.0, "acc_norm": 0.0, "acc_bytes": 1.0}),
        (1, {"acc": 0.0, "acc_norm": 1.0, "acc_bytes": 0.0}),
        (2, {"acc": 1.0, "acc_norm": 0.0, "acc_bytes": 0.0}),
        ("Nouakchott", {"acc": 0.0, "acc_norm": 1.0, "acc_bytes": 0.0}),
        ([0, 2], {"acc": 1.0, "acc_norm": 0.0, "acc_bytes": 1.0}),
    ],
)
def test_acc_norm_counts_characters_and_acc_bytes_counts_bytes(gold, expected):
    assert m.multiple_choice_scores(LLS, CHOICES, gold) == expected


def test_ties_go_to_the_first_choice():
    assert m.multiple_choice_scores([-2.0, -2.0], ["ab", "cd"], 0)["acc"] == 1.0
    assert m.multiple_choice_scores([-2.0, -2.0], ["ab", "cd"], 1)["acc"] == 0.0
    # equal per-character scores: -2/2 == -4/4 -> the first wins acc_norm as well
    assert m.multiple_choice_scores([-2.0, -4.0], ["ab", "cdef"], 0)["acc_norm"] == 1.0
    assert m.multiple_choice_scores([-2.0, -4.0], ["ab", "cdef"], 1)["acc_norm"] == 0.0


def test_string_gold_uses_the_first_occurrence():
    assert m.resolve_gold("x", ["y", "x", "x"]) == (1,)


@pytest.mark.parametrize(
    ("gold", "match"),
    [
        (3, r"answer index 3 is out of range for 3 choices"),
        (-1, r"answer index -1 is out of range"),
        ("Quito", r"'Quito' is not one of the choices"),
        ([], r"answer list is empty"),
        ([0, 5], r"answer index 5 is out of range"),
        (True, r"must be an int, a str or a list of ints"),
        (1.0, r"must be an int, a str or a list of ints"),
    ],
)
def test_bad_gold_raises(gold, match):
    with pytest.raises(InvalidInputError, match=match):
        m.resolve_gold(gold, CHOICES)


def test_wrong_number_of_loglikelihoods_raises():
    with pytest.raises(InvalidInputError, match="got 2 log-likelihoods for 3 choices"):
        m.multiple_choice_scores([-1.0, -2.0], CHOICES, 0)


# --------------------------------------------------------------------------- generation


@pytest.mark.parametrize(
    ("pred", "ref", "kwargs", "expected"),
    [
        (" 432", "432", {}, 0.0),
        (" 432", "432", {"strip": True}, 1.0),
        ("Paris.", "paris", {"ignore_case": True}, 0.0),
        ("Paris.", "paris", {"ignore_case": True, "ignore_punctuation": True}, 1.0),
        ("abc123", "abc", {"ignore_numbers": True}, 1.0),
        ("The answer is 7", "7", {"regexes_to_ignore": [r"^The answer is "]}, 1.0),
    ],
)
def test_exact_match(pred, ref, kwargs, expected):
    assert m.exact_match(pred, ref, **kwargs) == expected


def test_exact_match_equals_lm_eval_without_strip():
    lm_metrics = pytest.importorskip("lm_eval.api.metrics")
    cases = [("Paris.", "paris"), ("A-b c", "ab C"), ("x1y2", "xy"), ("same", "same"), (" a", "a")]
    for pred, ref in cases:
        for flags in [
            {},
            {"ignore_case": True},
            {"ignore_punctuation": True},
            {"ignore_case": True, "ignore_punctuation": True, "ignore_numbers": True},
            {"regexes_to_ignore": [r"\s"]},
        ]:
            want = lm_metrics.exact_match_hf_evaluate(
                predictions=[pred], references=[ref], **flags
            )["exact_match"]
            assert m.exact_match(pred, ref, **flags) == float(want), (pred, ref, flags)


@pytest.mark.parametrize(
    ("pred", "ref", "expected"),
    [
        (" 432", "432", 1.0),
        (" 432.\nQuestion: 5", "432", 1.0),
        ("The total is 1,234 apples", "1234", 1.0),
        (" -338", "-338", 1.0),
        ("338", "-338", 0.0),
        ("432.0", "432", 1.0),
        ("four hundred", "400", 0.0),
        ("12 then 432", "432", 0.0),
    ],
)
def test_numeric_match(pred, ref, expected):
    assert m.numeric_match(pred, ref) == expected


def test_first_number():
    assert m.first_number("abc") is None
    assert str(m.first_number("x = +7.50, y")) == "7.50"


# --------------------------------------------------------------------------- perplexity


def test_count_words_and_bytes_match_lm_eval():
    # lm-eval: len(re.split(r"\s+", doc)) (leading/trailing whitespace adds empty "words")
    for text in ["a b", " a  b ", "Bogotá is big.", "x"]:
        assert m.count_words(text) == len(re.split(r"\s+", text))
    assert m.count_bytes("Bogotá") == 7


def test_perplexity_aggregations_are_ratios_of_sums():
    lls, words, nbytes = [-10.0, -20.0], [2, 3], [10, 15]
    assert m.word_perplexity(lls, words) == pytest.approx(math.exp(30 / 5))
    assert m.byte_perplexity(lls, nbytes) == pytest.approx(math.exp(30 / 25))
    assert m.bits_per_byte(lls, nbytes) == pytest.approx(30 / 25 / math.log(2))
    # not the mean of per-document ratios
    assert m.word_perplexity(lls, words) != pytest.approx(math.exp((10 / 2 + 20 / 3) / 2))
    per_doc = [
        {"loglikelihood": ll, "n_words": w, "n_bytes": b}
        for ll, w, b in zip(lls, words, nbytes, strict=True)
    ]
    agg = m.aggregate(per_doc, ["word_perplexity", "byte_perplexity", "bits_per_byte"])
    assert agg["bits_per_byte"] == pytest.approx(30 / 25 / math.log(2))


def test_perplexity_aggregations_equal_lm_eval():
    lm_metrics = pytest.importorskip("lm_eval.api.metrics")
    rng = np.random.default_rng(0)
    lls = list(-rng.uniform(1, 100, size=7))
    words = list(rng.integers(1, 30, size=7))
    nbytes = list(rng.integers(5, 200, size=7))
    assert m.word_perplexity(lls, words) == pytest.approx(
        lm_metrics.weighted_perplexity(list(zip(lls, words, strict=True))), rel=1e-12
    )
    assert m.bits_per_byte(lls, nbytes) == pytest.approx(
        lm_metrics.bits_per_byte(list(zip(lls, nbytes, strict=True))), rel=1e-12
    )


def test_aggregate_means_and_errors():
    per_doc = [{"acc": 1.0}, {"acc": 0.0}, {"acc": 1.0}, {"acc": 1.0}]
    assert m.aggregate(per_doc, ["acc"]) == {"acc": 0.75}
    with pytest.raises(InvalidInputError, match="cannot aggregate zero documents"):
        m.aggregate([], ["acc"])
    with pytest.raises(InvalidInputError, match="needs the per-document key 'acc_norm'"):
        m.aggregate(per_doc, ["acc_norm"])
    with pytest.raises(InvalidInputError, match="unknown metric 'f1'"):
        m.aggregate([{"loglikelihood": -1.0}], ["f1"])
    with pytest.raises(InvalidInputError, match="total count must be > 0"):
        m.word_perplexity([-1.0], [0])


def test_punctuation_table_is_string_punctuation():
    assert m.exact_match(string.punctuation + "a", "a", ignore_punctuation=True) == 1.0
