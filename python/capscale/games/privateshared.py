"""privateshared (clembench 1.x): slot filling with probes about what is private and what shared.

One model player, the *answerer*, is given a scenario (a trip to book, a job interview, a
restaurant order) with one value per slot. A programmatic *questioner* (inside the game master)
asks for the slots one at a time in a fixed order. Before the first request and after each
answer the game master *probes* the answerer, aside, whether the questioner already knows each
slot. Rules, as clembench defines them:

* A slot answer must start with ``ANSWER:`` and be one line (trailing newlines allowed);
  otherwise the episode is aborted at once.
* A probe answer must start with ``ASIDE:``, be one line, and its text (tag removed) must begin
  with ``yes`` or ``no`` (case-insensitive). An invalid probe answer is asked again with a
  reprompt, up to five attempts in all; the fifth invalid answer aborts the episode.
* A slot is filled when its value occurs (case-insensitively) in the answer. A value given
  before it is asked for makes that slot shared from that turn on (the ground truth moves).
* Probe ground truth: slot ``s`` is shared in probe round ``t`` when ``t > turn(s)``, where
  ``turn(s)`` is the index of the request that revealed it.
* Main Score = 100 × harmonic mean(slot-filling accuracy, max(0, Cohen's κ of the probe answers
  over all rounds)); 0 when both are 0; NaN when aborted. Success when every probe answer and
  every slot is right, else Lose.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from capscale.errors import FormatError

from .master import GameMaster, ParseError, register_game

__all__ = [
    "ASIDE",
    "EXPERIMENTS",
    "GAME_NAME",
    "REPROMPTS",
    "SCENARIOS",
    "TAG_ANSWER",
    "PrivateShared",
    "cohen_kappa",
    "generate_experiments",
    "main_score",
    "parse_probe",
    "parse_slot_answer",
    "probe_ground_truth",
    "validate_instance",
]

GAME_NAME = "privateshared"
TAG_ANSWER = "ANSWER:"
ASIDE = "ASIDE:"
ME = "ME:"
YES, NO = "yes", "no"
PROBE = ME + " {} Answer this question with yes or no and then stop."
CODA = "{} Answer only this question in one short sentence and then stop."
DUMMY_PROMPT = "What is the next request?"
OK = "Ok."
#: Inserted after ``ME:`` on the k-th attempt of a probe (five attempts in all).
REPROMPTS: tuple[str, ...] = (
    "",
    "Please answer this carefully.",
    "Please follow my instructions.",
    "Please be precise.",
    "Please think about it again.",
)

REASON_SLOT = "Abort: invalid format in slot filling."
REASON_PROBE = "Abort: invalid format in probing."

_PROMPT_TAIL = """
Questions from the {who} start with "{tag}:". Reply to them in the form: ANSWER: <one sentence>

I will also ask you questions of my own. They start with "ME:". Reply to those in the form: \
ASIDE: <one sentence>

Important: keep your answers short and direct!

Let us start."""

#: Scenario texts (written for capscale; the structure follows clembench's resources).
SCENARIOS: dict[str, dict[str, Any]] = {
    "travel-booking": {
        "tag": "TRAVEL-AGENT",
        "what": "Travel",
        "who": "travel agent",
        "intro": "You are a customer of a travel agency. These are the details of the trip you "
        "want to book:",
        "outro": "The travel agent does not know any of this yet.",
        "slots": {
            "from": ["Oslo", "Vienna", "Lyon", "Leeds", "Porto", "Krakow"],
            "to": ["Seville", "Helsinki", "Bologna", "Ghent", "Tallinn", "Zagreb"],
            "by": ["train", "plane", "overnight bus", "ferry", "rental car"],
            "class": ["first class", "economy", "business", "cheapest available"],
            "when": ["next Friday", "on June 3", "early in May", "in two weeks"],
        },
        "requests": {
            "from": ["Where will your trip start?", "Which city are you leaving from?"],
            "to": ["Where would you like to go?", "What is your destination?"],
            "by": ["How would you like to travel?", "Which means of transport do you prefer?"],
            "class": ["Which class should I book?", "Do you have a preference for the class?"],
            "when": ["When do you want to travel?", "On which date should the trip start?"],
        },
        "probes": {
            "from": [
                "Does the travel agent know where your trip starts?",
                "Have you told the travel agent the city you are leaving from?",
            ],
            "to": [
                "Does the travel agent know your destination?",
                "Have you told the travel agent where you want to go?",
            ],
            "by": [
                "Does the travel agent know how you want to travel?",
                "Is the travel agent aware of your preferred means of transport?",
            ],
            "class": [
                "Does the travel agent know which class you want?",
                "Have you told the travel agent your class preference?",
            ],
            "when": [
                "Does the travel agent know when you want to travel?",
                "Is the travel agent aware of the date of your trip?",
            ],
        },
    },
    "job-interview": {
        "tag": "RECRUITER",
        "what": "Job Application",
        "who": "recruiter",
        "intro": "You are applying for a job and are talking to a recruiter. These are the "
        "facts about you and the job you want:",
        "outro": "The recruiter does not know any of this yet.",
        "slots": {
            "position": ["data analyst", "nurse", "carpenter", "sales manager", "chef"],
            "experience": ["two years", "five years", "eight months", "ten years"],
            "education": ["bachelor's degree", "master's degree", "vocational diploma", "PhD"],
            "start": ["immediately", "in March", "after the summer", "next month"],
            "language": ["Spanish", "German", "French", "Japanese"],
        },
        "requests": {
            "position": ["Which position are you applying for?", "What job do you want?"],
            "experience": [
                "How much work experience do you have?",
                "How long have you worked in this field?",
            ],
            "education": ["What is your highest degree?", "What education do you have?"],
            "start": ["When could you start?", "From when are you available?"],
            "language": [
                "Which foreign language do you speak?",
                "Do you speak another language?",
            ],
        },
        "probes": {
            "position": [
                "Does the recruiter know which position you are applying for?",
                "Have you told the recruiter the job you want?",
            ],
            "experience": [
                "Does the recruiter know how much experience you have?",
                "Have you told the recruiter about your work experience?",
            ],
            "education": [
                "Does the recruiter know your highest degree?",
                "Is the recruiter aware of your education?",
            ],
            "start": [
                "Does the recruiter know when you could start?",
                "Have you told the recruiter when you are available?",
            ],
            "language": [
                "Does the recruiter know which foreign language you speak?",
                "Is the recruiter aware of the languages you speak?",
            ],
        },
    },
    "restaurant": {
        "tag": "WAITER",
        "what": "Restaurant",
        "who": "waiter",
        "intro": "You are a guest in a restaurant and are about to order. This is what you want:",
        "outro": "The waiter does not know any of this yet.",
        "slots": {
            "drink": ["sparkling water", "lemonade", "red wine", "iced tea"],
            "starter": ["tomato soup", "green salad", "garlic bread", "bruschetta"],
            "main": ["mushroom risotto", "grilled salmon", "vegetable curry", "beef burger"],
            "dessert": ["apple pie", "chocolate mousse", "lemon sorbet", "cheesecake"],
        },
        "requests": {
            "drink": ["What would you like to drink?", "Can I bring you something to drink?"],
            "starter": ["Which starter would you like?", "Would you like a starter?"],
            "main": ["What would you like as main course?", "Which main dish do you choose?"],
            "dessert": ["What would you like for dessert?", "Any dessert for you?"],
        },
        "probes": {
            "drink": [
                "Does the waiter know what you want to drink?",
                "Have you told the waiter your drink?",
            ],
            "starter": [
                "Does the waiter know which starter you want?",
                "Is the waiter aware of your choice of starter?",
            ],
            "main": [
                "Does the waiter know your main course?",
                "Have you told the waiter which main dish you want?",
            ],
            "dessert": [
                "Does the waiter know which dessert you want?",
                "Is the waiter aware of your dessert?",
            ],
        },
    },
}
EXPERIMENTS: tuple[str, ...] = tuple(SCENARIOS)


# --------------------------------------------------------------------------- parsing


def _has_continuation(reply: str) -> bool:
    """A line break with text after it (trailing newlines do not count)."""
    return "\n" in reply.strip("\n")


def parse_slot_answer(reply: str) -> str | None:
    """The answer text (tag removed), or ``None`` when the reply is invalid.

    Valid: starts with ``ANSWER:`` (exact case) and is a single line.
    """
    if not reply.startswith(TAG_ANSWER) or _has_continuation(reply):
        return None
    return reply.replace(TAG_ANSWER, "").strip()


def parse_probe(reply: str) -> str | None:
    """``"yes"`` or ``"no"``, or ``None`` when the reply is invalid.

    Valid: starts with ``ASIDE:`` (exact case), a single line, and the rest begins with
    ``yes`` or ``no`` (any case).
    """
    if not reply.startswith(ASIDE) or _has_continuation(reply):
        return None
    text = reply.replace(ASIDE, "").strip().lower()
    if text.startswith(YES):
        return YES
    if text.startswith(NO):
        return NO
    return None


# --------------------------------------------------------------------------- scoring


def cohen_kappa(gold: Sequence[int], pred: Sequence[int]) -> float:
    """Cohen's κ of two labelings (as ``sklearn.metrics.cohen_kappa_score``, unweighted).

    NaN when chance agreement is 1 (both labelings constant and equal), where κ is undefined.
    """
    if len(gold) != len(pred) or not gold:
        raise ValueError("gold and pred must be non-empty and of equal length")
    n = len(gold)
    labels = sorted(set(gold) | set(pred))
    p_o = sum(g == p for g, p in zip(gold, pred, strict=False)) / n
    p_e = sum((list(gold).count(c) / n) * (list(pred).count(c) / n) for c in labels)
    if p_e == 1.0:
        return math.nan
    return (p_o - p_e) / (1.0 - p_e)


def main_score(slot_accuracy: float, kappa: float) -> float:
    """100 × harmonic mean(slot-filling accuracy, max(0, κ)); NaN when either is NaN.

    An undefined κ (NaN from a degenerate labeling) is truncated to 0, as ``max(0, nan)`` is
    in clembench; pass ``math.nan`` for ``slot_accuracy`` for an aborted episode.
    """
    if math.isnan(slot_accuracy):
        return math.nan
    k = 0.0 if math.isnan(kappa) else max(0.0, kappa)
    if slot_accuracy + k == 0:
        return 0.0
    return 100.0 * (2 * slot_accuracy * k / (slot_accuracy + k))


def probe_ground_truth(turn: int, revealed_at: Mapping[str, int], slot: str) -> int:
    """1 when ``slot`` is shared in probe round ``turn`` (``turn > revealed_at[slot]``)."""
    return 1 if turn > revealed_at[slot] else 0


# --------------------------------------------------------------------------- instances


def generate_experiments(
    seed: int = 0, n_instances: int = 5, experiments: Sequence[str] = EXPERIMENTS
) -> dict[str, Any]:
    """Generate ``{"experiments": [...]}`` with ``n_instances`` per scenario.

    Each instance draws one value per slot, a request order (a permutation of the slots), one
    request wording per slot and, for every probe round ``0..n_slots``, one probe wording per
    slot; all from ``random.Random`` seeded by (seed, experiment).
    """
    if n_instances < 1:
        raise ValueError(f"n_instances must be >= 1, got {n_instances}")
    out = []
    for name in experiments:
        sc = SCENARIOS[name]
        rng = random.Random(f"{GAME_NAME}:{seed}:{name}")
        instances = []
        for game_id in range(n_instances):
            slots = {k: rng.choice(v) for k, v in sc["slots"].items()}
            order = rng.sample(list(sc["slots"]), len(sc["slots"]))
            requests = {k: rng.randrange(len(v)) for k, v in sc["requests"].items()}
            probes = {
                str(t): {k: rng.randrange(len(v)) for k, v in sc["probes"].items()}
                for t in range(len(slots) + 1)
            }
            instances.append(
                {
                    "game_id": game_id,
                    "tag": sc["tag"],
                    "slots": slots,
                    "request_order": order,
                    "requests": requests,
                    "probes": probes,
                }
            )
        out.append({"name": name, "game_instances": instances})
    return {"experiments": out}


def validate_instance(instance: Mapping[str, Any], experiment: str | None) -> dict[str, Any]:
    """Check an instance against its scenario; returns the scenario. :class:`FormatError`."""
    if not isinstance(instance, Mapping):
        raise FormatError("privateshared instance must be a mapping")
    if experiment not in SCENARIOS:
        raise FormatError(
            f"privateshared: unknown scenario (experiment name) {experiment!r}; "
            f"known: {', '.join(SCENARIOS)}"
        )
    sc = SCENARIOS[experiment]
    for key in ("game_id", "tag", "slots", "request_order", "requests", "probes"):
        if key not in instance:
            raise FormatError(f"privateshared instance lacks the key {key!r}")
    slots = instance["slots"]
    if not isinstance(slots, Mapping) or set(slots) != set(sc["slots"]):
        raise FormatError(f"privateshared instance: slots must have the keys {sorted(sc['slots'])}")
    for k, v in slots.items():
        if not isinstance(v, str) or not v.strip():
            raise FormatError(f"privateshared instance: slot {k!r} needs a non-empty string")
    order = instance["request_order"]
    if not isinstance(order, list) or sorted(order) != sorted(slots):
        raise FormatError(
            "privateshared instance: request_order must be a permutation of the slots"
        )
    reqs = instance["requests"]
    if not isinstance(reqs, Mapping) or set(reqs) != set(slots):
        raise FormatError("privateshared instance: requests must index every slot")
    for k, i in reqs.items():
        if not isinstance(i, int) or not 0 <= i < len(sc["requests"][k]):
            raise FormatError(f"privateshared instance: request index for {k!r} out of range")
    probes = instance["probes"]
    if not isinstance(probes, Mapping) or set(map(str, probes)) != {
        str(t) for t in range(len(slots) + 1)
    }:
        raise FormatError(f"privateshared instance: probes must have rounds 0..{len(slots)}")
    for t, row in probes.items():
        if not isinstance(row, Mapping) or not set(row) <= set(slots) or not row:
            raise FormatError(f"privateshared instance: probes[{t}] must index slots")
        for k, i in row.items():
            if not isinstance(i, int) or not 0 <= i < len(sc["probes"][k]):
                raise FormatError(f"privateshared instance: probe index {t}/{k} out of range")
    return sc


def initial_prompt(scenario: Mapping[str, Any], slots: Mapping[str, str], tag: str) -> str:
    """The answerer's instructions with the scenario's slot values."""
    lines = [f"WHAT: {scenario['what']}"] + [f"{k.upper()}: {v}" for k, v in slots.items()]
    body = "\n".join(lines)
    return f"{scenario['intro']}\n\n{body}\n\n{scenario['outro']}\n" + _PROMPT_TAIL.format(
        who=scenario["who"], tag=tag
    )


# --------------------------------------------------------------------------- game master


@register_game(GAME_NAME)
class PrivateShared(GameMaster):
    """privateshared: one model player (the answerer); the questioner is programmatic."""

    roles: ClassVar[tuple[str, ...]] = ("Answerer",)
    version: ClassVar[str] = "1.0"

    def __init__(self, players: Any, instance: Mapping[str, Any], experiment: Any = None):
        super().__init__(players, instance, experiment)
        self.scenario = validate_instance(self.instance, self.experiment.get("name"))

    @classmethod
    def generate_instances(cls, seed: int = 0, n: int = 5) -> dict[str, Any]:
        """Seeded instances: ``n`` per scenario (see :func:`generate_experiments`)."""
        return generate_experiments(seed, n)

    def setup(self, **instance: Any) -> None:
        self.slots: dict[str, str] = dict(instance["slots"])
        self.tag = str(instance["tag"])
        self.request_order: list[str] = list(instance["request_order"])
        self.request_idx: dict[str, int] = dict(instance["requests"])
        self.probe_idx: dict[str, dict[str, int]] = {
            str(t): dict(v) for t, v in instance["probes"].items()
        }
        # the turn (request index) at which each slot became shared
        self.revealed_at = {slot: i for i, slot in enumerate(self.request_order)}
        self.filled: list[bool] = []
        self.probe_log: list[list[dict[str, Any]]] = []
        self.played_probe_rounds = 0

    # -- the episode -------------------------------------------------------------------------

    def play(self) -> None:
        self.new_turn()
        self.add_user_message(0, initial_prompt(self.scenario, self.slots, self.tag))
        self.add_assistant_message(0, OK)  # a fixed turn, so roles alternate (as clembench)
        try:
            self._probe_round(0)
            for t, slot in enumerate(self.request_order):
                self.new_turn()
                self._slot_turn(t, slot)
                self._probe_round(t + 1)
        finally:
            self.log_key("probes", self.probe_log)
            self.log_key("realised_slots", dict(self.revealed_at))
            self.log_key("Filled Slots", list(self.filled))
            self.log_key("Played Probe Rounds", self.played_probe_rounds)
        if self._probe_accuracy() == 1.0 and all(self.filled):
            self.success = True
        else:
            self.lose = True

    def _slot_turn(self, t: int, slot: str) -> None:
        request = self.scenario["requests"][slot][self.request_idx[slot]]
        self.log_event("send message", DUMMY_PROMPT, to="Player 2")
        self.log_event("get message", request, from_="Player 2")
        self.add_user_message(0, CODA.format(f"{self.tag}: {request}"))
        reply = self.ask(0)

        def parser(r: str) -> str:
            value = parse_slot_answer(r)
            if value is None:
                raise ParseError(REASON_SLOT)
            return value

        answer = self.parse_or_abort(reply, parser)
        filled = self.slots[slot].lower() in reply.lower()
        self.filled.append(filled)
        self.log_event("metadata", f"Slot filled: {filled}")
        for other, value in self.slots.items():
            if value.lower() in reply.lower() and t < self.revealed_at[other]:
                self.log_event(
                    "metadata",
                    f"Value for {other.upper()} anticipated; ground truth turn updated from "
                    f"{self.revealed_at[other]} to {t}.",
                )
                self.revealed_at[other] = t
        self.log_event("send message", answer, to="Player 2")

    def _probe_round(self, t: int) -> None:
        self.log_event("info", "Begin probing")
        probes: list[dict[str, Any]] = []
        self.probe_log.append(probes)
        for slot, idx in self.probe_idx[str(t)].items():
            question = PROBE.format(self.scenario["probes"][slot][idx])
            probe: dict[str, Any] = {
                "target": slot.upper(),
                "question": question,
                "gt": probe_ground_truth(t, self.revealed_at, slot),
            }
            probes.append(probe)
            value = self._ask_probe(question, probe)
            probe["value"] = 1 if value == YES else 0
            ok = "" if probe["value"] == probe["gt"] else "in"
            self.log_event("check", f"Answer is {ok}correct.")
        self.played_probe_rounds += 1
        self.log_event("info", "End probing")

    def _ask_probe(self, question: str, probe: dict[str, Any]) -> str:
        """Ask a probe (aside: not kept in the dialogue history), retrying invalid answers."""
        for attempt, suffix in enumerate(REPROMPTS, start=1):
            text = question.replace(f"{ME} ", f"{ME} {suffix} ", 1) if suffix else question
            self.log_event("probe question", text, to="Player 1")
            n_kept = len(self.histories[0])
            self.add_user_message(0, text)
            try:
                reply = self.ask(0)
            finally:
                del self.histories[0][n_kept:]  # probes stay out of the dialogue history
            probe["answer"] = reply
            probe["tries"] = attempt
            value = parse_probe(reply)
            if value is not None:
                self.accept(value)
                self.log_event(
                    "metadata", f"Answer for {probe['target']} valid after {attempt} tries."
                )
                return value
            if attempt == len(REPROMPTS):
                self.log_event(
                    "metadata", f"Answer for {probe['target']} invalid after max attempts."
                )
                self.abort(REASON_PROBE)
            # an invalid answer that is asked again: a violated request, not an abort
            self.reject("invalid probe answer, asked again")
        raise AssertionError("unreachable")  # pragma: no cover

    # -- scores ------------------------------------------------------------------------------

    def _gold_pred(self) -> tuple[list[int], list[int]]:
        gold = [p["gt"] for rnd in self.probe_log for p in rnd]
        pred = [p["value"] for rnd in self.probe_log for p in rnd]
        return gold, pred

    def _probe_accuracy(self) -> float:
        gold, pred = self._gold_pred()
        return sum(g == p for g, p in zip(gold, pred, strict=False)) / len(gold)

    def _slot_accuracy(self) -> float:
        return sum(self.filled) / len(self.filled)

    def main_score(self) -> float:
        gold, pred = self._gold_pred()
        return main_score(self._slot_accuracy(), cohen_kappa(gold, pred))

    def extra_scores(self) -> dict[str, float]:
        gold, pred = self._gold_pred()
        kappa = cohen_kappa(gold, pred)
        mid = (len(self.slots) + 1) // 2 - 1
        rnd = self.probe_log[mid]
        return {
            "Accuracy": self._probe_accuracy(),
            "Kappa": kappa,
            "Truncated Kappa": 0.0 if math.isnan(kappa) else max(0.0, kappa),
            "Slot-Filling-Accuracy": self._slot_accuracy(),
            "Middle-Accuracy": sum(p["gt"] == p["value"] for p in rnd) / len(rnd),
        }
