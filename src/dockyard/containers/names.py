"""Container names: validation and dockerd-style generated names (adjective_surname)."""

from __future__ import annotations

import random
import re

from .. import errors

VALID = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")  # dockerd's, whole-string (fullmatch)

ADJECTIVES = ("admiring", "agitated", "amazing", "angry", "awesome", "blissful", "bold", "brave", "busy", "charming",
              "clever", "compassionate", "competent", "confident", "cool", "dazzling", "determined", "distracted",
              "dreamy", "eager", "ecstatic", "elastic", "elated", "elegant", "epic", "festive", "focused",
              "friendly", "funny", "gallant", "gifted", "goofy", "gracious", "happy", "hardcore", "heuristic",
              "hopeful", "hungry", "infallible", "inspiring", "jolly", "jovial", "keen", "kind", "laughing",
              "loving", "lucid", "magical", "modest", "musing", "mystifying", "naughty", "nervous", "nice",
              "nifty", "nostalgic", "objective", "optimistic", "peaceful", "pedantic", "pensive", "practical",
              "priceless", "quirky", "quizzical", "relaxed", "reverent", "romantic", "sad", "serene", "sharp",
              "silly", "sleepy", "stoic", "strange", "stupefied", "suspicious", "sweet", "tender", "thirsty",
              "trusting", "upbeat", "vibrant", "vigilant", "vigorous", "wizardly", "wonderful", "xenodochial",
              "youthful", "zealous", "zen")
SURNAMES = ("albattani", "allen", "archimedes", "babbage", "banach", "bardeen", "bell", "bhabha", "blackwell",
            "bohr", "booth", "borg", "bose", "brahmagupta", "brown", "buck", "burnell", "cannon", "carson",
            "cerf", "chandrasekhar", "chatelet", "clarke", "curie", "darwin", "davinci", "dijkstra", "driscoll",
            "edison", "einstein", "elion", "engelbart", "euclid", "euler", "faraday", "fermat", "fermi",
            "feynman", "franklin", "galileo", "gauss", "goldberg", "goodall", "hamilton", "hawking",
            "heisenberg", "hertz", "hodgkin", "hopper", "hypatia", "jackson", "jang", "johnson", "kalam",
            "kepler", "khorana", "knuth", "kowalevski", "lamarr", "lamport", "leakey", "lovelace", "lumiere",
            "mayer", "mccarthy", "mclean", "meitner", "mendel", "merkle", "minsky", "montalcini", "morse",
            "napier", "newton", "nobel", "noether", "pare", "pascal", "pasteur", "perlman", "pike", "poincare",
            "ptolemy", "raman", "ramanujan", "ride", "ritchie", "rosalind", "sammet", "shannon", "shockley",
            "sinoussi", "stallman", "swanson", "swartz", "tesla", "thompson", "torvalds", "turing", "varahamihira",
            "volhard", "wescoff", "wiles", "williams", "wilson", "wing", "wozniak", "wright", "yalow", "yonath")


def normalize(name: str) -> str:
    """``foo`` or ``/foo`` → ``/foo``; refuses names dockerd refuses."""
    if not VALID.fullmatch(name):
        raise errors.InvalidParameter(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name if name.startswith("/") else "/" + name


def generate(taken: set[str]) -> str:
    for attempt in range(10):
        name = f"/{random.choice(ADJECTIVES)}_{random.choice(SURNAMES)}"
        if attempt > 2:
            name += str(random.randint(0, 9))
        if name not in taken:
            return name
    return f"/{random.choice(ADJECTIVES)}_{random.choice(SURNAMES)}{random.randint(10, 99999)}"
