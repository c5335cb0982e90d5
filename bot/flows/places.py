"""Place names in fans' texts: the city a `location` slot's answer names, and cities mentioned
in passing ("PLEASE come to Denver") that the engine remembers for a few turns (step 7).

Cities come from the shipped gazetteer `cities.txt` (GeoNames: the US and Canada from 50,000
people, the world's cities from a million) and a few nicknames fans use ("nyc", "philly").
Pure; the file is read once, on first use.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

GAZETTEER = Path(__file__).with_name("cities.txt")
# What fans call big cities; the gazetteer knows only official names.
NICKNAMES = {
    "nyc": "New York City", "ny": "New York City", "new york": "New York City",
    "la": "Los Angeles", "l a": "Los Angeles", "sf": "San Francisco", "san fran": "San Francisco",
    "philly": "Philadelphia", "vegas": "Las Vegas", "dc": "Washington", "d c": "Washington",
    "washington dc": "Washington", "nola": "New Orleans", "atl": "Atlanta", "chi town": "Chicago",
    "chitown": "Chicago", "mtl": "Montréal", "montreal": "Montréal", "the six": "Toronto",
    "the 6ix": "Toronto", "yvr": "Vancouver", "yyz": "Toronto", "slc": "Salt Lake City",
    "bay area": "San Francisco", "the bay area": "San Francisco", "kc": "Kansas City", "htown": "Houston", "h town": "Houston", "nashvegas": "Nashville",
}  # fmt: skip
# Words around a place in an answer: "im in toronto", "near boston lol", "denver area".
_LEAD_WORDS = {"i", "im", "i'm", "am", "we", "we're", "were", "are", "live", "living", "lives",
               "in", "near", "around", "from", "by", "close", "to", "its", "it's", "it", "is",
               "the", "downtown", "outside", "of", "currently", "rn", "based", "uh", "um",
               "oh", "ok", "okay", "hmm", "so", "well", "just"}  # fmt: skip
_TAIL_WORDS = {"area", "lol", "haha", "pls", "please", "thanks", "thx", "rn", "now", "metro",
               "city", "downtown", "region", "usa", "us", "canada", "ca"}  # fmt: skip
# US states and Canadian provinces, by code and name: "austin tx", "london, ontario".
_REGIONS = {
    "al", "ak", "az", "ar", "ca", "co", "ct", "de", "fl", "ga", "hi", "id", "il", "in", "ia",
    "ks", "ky", "la", "me", "md", "ma", "mi", "mn", "ms", "mo", "mt", "ne", "nv", "nh", "nj",
    "nm", "ny", "nc", "nd", "oh", "ok", "or", "pa", "ri", "sc", "sd", "tn", "tx", "ut", "vt",
    "va", "wa", "wv", "wi", "wy", "dc", "ab", "bc", "mb", "nb", "nl", "ns", "on", "pe", "qc",
    "sk", "alabama", "alaska", "arizona", "arkansas", "california", "colorado", "connecticut",
    "delaware", "florida", "georgia", "hawaii", "idaho", "illinois", "indiana", "iowa",
    "kansas", "kentucky", "louisiana", "maine", "maryland", "massachusetts", "michigan",
    "minnesota", "mississippi", "missouri", "montana", "nebraska", "nevada", "new hampshire",
    "new jersey", "new mexico", "new york", "north carolina", "north dakota", "ohio", "oklahoma",
    "oregon", "pennsylvania", "rhode island", "south carolina", "south dakota", "tennessee",
    "texas", "utah", "vermont", "virginia", "washington", "west virginia", "wisconsin",
    "wyoming", "alberta", "british columbia", "manitoba", "new brunswick", "newfoundland",
    "nova scotia", "ontario", "quebec", "québec", "saskatchewan",
}  # fmt: skip
# A city mentioned in passing counts only after one of these: "come to Denver", "in austin".
_LOCATIVE = {"to", "in", "near", "from", "at", "around", "visit", "visiting", "play", "playing",
             "hit", "hitting"}  # fmt: skip
# Cities that are also everyday words: taken as an answer, never from a passing mention.
_WORDLIKE = {"paradise", "mobile", "surprise", "orange", "union", "normal", "spring", "temple",
             "mission", "enterprise", "independence", "vista", "concord", "sandy", "bend",
             "clay", "pest", "aba", "teni", "victoria", "joy"}  # fmt: skip
_MAX_WORDS = 4  # the longest city name worth looking up ("salt lake city", "ho chi minh city")


def fold(text: str) -> str:
    """Lower case, no accents, punctuation as spaces: "Montréal!" -> "montreal"."""
    text = unicodedata.normalize("NFKD", text.casefold().replace("’", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^\w\s']|_", " ", text).replace("'", "")
    return " ".join(text.split())


@functools.cache
def _rows() -> dict[str, tuple[str, float, float]]:
    """Folded name -> (the gazetteer's name, latitude, longitude); the most populous city wins
    a shared name."""
    rows: dict[str, tuple[str, float, float]] = {}
    for line in GAZETTEER.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _country, _admin, lat, lon = line.split("\t")
            rows.setdefault(fold(name), (name, float(lat), float(lon)))
    for nickname, name in NICKNAMES.items():
        rows.setdefault(nickname, rows[fold(name)])
    return rows


@functools.cache
def _index() -> dict[str, str]:
    return {key: row[0] for key, row in _rows().items()}


def coordinates(name: str) -> tuple[float, float] | None:
    """Latitude and longitude of a city `city()` returned (or any name it reads)."""
    found = city(name)
    row = _rows().get(fold(found)) if found else None
    return (row[1], row[2]) if row else None


def city(text: str) -> str | None:
    """The city a short answer names ("toronto?", "im in Austin TX", "denver area"), else None."""
    words = fold(text).split()
    for lead in range(len(words)):  # "im in denver": drop lead-in words one at a time
        if lead and words[lead - 1] not in _LEAD_WORDS:
            break
        rest = words[lead:]
        for end in range(len(rest), 0, -1):  # "denver area lol": and trailing ones
            if end < len(rest) and rest[end] not in _TAIL_WORDS:
                break
            if found := _lookup(rest[:end]):
                return found
    return None


def _lookup(words: list[str]) -> str | None:
    if len(words) > _MAX_WORDS + 2:
        return None
    for cut in (2, 1):  # a trailing state or province: "austin tx", "london ontario"
        region = len(words) > cut and " ".join(words[-cut:]) in _REGIONS
        if region and (found := _lookup(words[:-cut])):
            return found
    return _index().get(" ".join(words)) if len(words) <= _MAX_WORDS else None


@functools.lru_cache(maxsize=2048)  # pure, and read on every text: fans repeat their texts
def mentioned(text: str) -> str | None:
    """A city named after a locative word anywhere in a text: "PLEASE come to Denver!!"."""
    for sentence in re.split(r"[.!?\n]+", text):
        words = fold(sentence).split()
        for i, word in enumerate(words):
            if word not in _LOCATIVE:
                continue
            after = words[i + 1 : i + 1 + _MAX_WORDS]
            for size in range(len(after), 0, -1):  # longest first: "new york city"
                name = " ".join(after[:size])
                if name not in _LEAD_WORDS and name not in _WORDLIKE and (found := city(name)):
                    return found
    return None
