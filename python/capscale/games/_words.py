"""Lexical resources of the built-in games, written by hand for capscale.

Honest note: clembench derives its word-frequency bands from corpus counts (taboo: the
English Web Treebank / wordfreq-style frequency lists; wordle: the official Wordle lists
split by frequency). Those resources need downloads, so these compact lists were curated here
instead: the bands (high / medium / low) are assigned by the author's judgement of everyday
English frequency, not measured. They are small (enough for 3 experiments × 10 instances)
and versioned with the instance files generated from them.
"""

from __future__ import annotations

# -- taboo: target word → three related (taboo) words, by frequency band ----------------------
TABOO: dict[str, dict[str, tuple[str, str, str]]] = {
    "high": {
        "water": ("drink", "liquid", "sea"),
        "house": ("home", "live", "building"),
        "money": ("cash", "bank", "pay"),
        "school": ("student", "teacher", "learn"),
        "music": ("song", "sound", "listen"),
        "family": ("parent", "child", "relative"),
        "car": ("drive", "vehicle", "road"),
        "book": ("read", "page", "author"),
        "city": ("town", "urban", "population"),
        "food": ("eat", "meal", "hungry"),
    },
    "medium": {
        "bridge": ("river", "cross", "span"),
        "garden": ("plant", "flower", "yard"),
        "winter": ("cold", "snow", "season"),
        "doctor": ("medicine", "hospital", "patient"),
        "island": ("ocean", "land", "surround"),
        "camera": ("photo", "picture", "lens"),
        "kitchen": ("cook", "room", "stove"),
        "mirror": ("reflection", "glass", "look"),
        "ladder": ("climb", "step", "rung"),
        "pillow": ("bed", "sleep", "head"),
    },
    "low": {
        "anvil": ("blacksmith", "hammer", "iron"),
        "quarry": ("stone", "mine", "prey"),
        "thimble": ("sew", "finger", "needle"),
        "lantern": ("light", "lamp", "candle"),
        "walrus": ("tusk", "seal", "arctic"),
        "trowel": ("garden", "dig", "tool"),
        "saddle": ("horse", "ride", "seat"),
        "compass": ("north", "direction", "needle"),
        "harpoon": ("whale", "spear", "throw"),
        "kettle": ("boil", "tea", "water"),
    },
}

# -- wordle: target → clue, by frequency band ---------------------------------------------------
WORDLE: dict[str, dict[str, str]] = {
    "high": {
        "house": "a place where people live",
        "water": "you drink it when thirsty",
        "music": "songs and melodies",
        "light": "opposite of dark",
        "money": "what you pay with",
        "night": "time when the sun is down",
        "world": "the planet and everyone on it",
        "table": "furniture you eat at",
        "plant": "a living thing that grows in soil",
        "paper": "you write on it",
    },
    "medium": {
        "crane": "a tall bird or a construction machine",
        "bread": "baked food made from flour",
        "storm": "bad weather with wind and rain",
        "chair": "you sit on it",
        "smile": "a happy expression",
        "grape": "a small fruit used for wine",
        "beach": "sandy shore by the sea",
        "cloud": "white or grey shape in the sky",
        "tiger": "a large striped cat",
        "spoon": "you eat soup with it",
    },
    "low": {
        "knack": "a special skill",
        "gauze": "thin fabric for bandages",
        "briny": "salty like the sea",
        "plumb": "exactly vertical",
        "quirk": "an odd habit",
        "vixen": "a female fox",
        "sprig": "a small stem with leaves",
        "tacit": "understood without being said",
        "wryly": "with dry humour",
        "gusto": "enthusiasm and enjoyment",
    },
}

# Words accepted as guesses in wordle (the targets plus common five-letter English words).
_EXTRA_GUESSES = """
about above actor adult after again agent agree ahead alarm album alert alike alive allow alone
along alter among anger angle angry apart apple apply arena argue arise array aside asset audio
audit avoid award aware badly baker basic basis beast begin being below bench birth black blade
blame blank blast blind block blood board boost booth bound brain brand brave break breed brief
bring broad broke brown build built buyer cable calm carry catch cause chain chalk charm chart
chase cheap check chest chief child china claim class clean clear click climb clock close coach
coast could count court cover craft crash cream crime cross crowd crown curve cycle daily dance
dated dealt death debut delay depth doing doubt dozen draft drama drawn dream dress drink drive
earth eight elite empty enemy enjoy enter entry equal error event every exact exist extra faith
false fault fiber field fifth fifty fight final first flash fleet floor fluid focus force forth
forty forum found frame frank fraud fresh front fruit fully funny giant given glass globe going
grace grade grand grant grass great green gross group grown guard guess guest guide happy heart
heavy hence horse hotel human ideal image index inner input issue joint judge known label large
laser later laugh layer learn lease least leave legal level limit lives local logic loose lower
lucky lunch major maker march match maybe mayor meant media metal might minor minus mixed model
month moral motor mount mouse mouth movie needs never newly noise north noted novel nurse occur
ocean offer often order other ought paint panel party peace phase phone photo piece pilot pitch
place plain plane plate point pound power press price pride prime print prior prize proof proud
prove queen quick quiet quite radio raise range rapid ratio reach ready refer right rival river
robin rough round route royal rural scale scene scope score sense serve seven shall shape share
sharp sheet shelf shell shift shirt shock shoot short shown sight since sixth sixty sized skill
sleep slide small smart smoke solid solve sorry sound south space spare speak speed spend spent
split spoke sport staff stage stake stand start state steam steel stick still stock stone stood
store story strip stuck study stuff style sugar suite super sweet taken taste taxes teach teeth
thank theft their theme there these thick thing think third those three threw throw tight times
tired title today topic total touch tough tower track trade train treat trend trial tried tries
truck truly trust truth twice under undue union unity until upper upset urban usage usual valid
value video virus visit vital voice waste watch wheel where which while white whole whose woman
women worry worse worst worth would wound write wrong wrote yield young youth
"""

VALID_GUESSES: frozenset[str] = frozenset(
    _EXTRA_GUESSES.split() + [w for band in WORDLE.values() for w in band]
)
