"""Nova Vale's "Northern Lights" tour: the static show table and a nearest-show lookup.

Read by `actions.actions.ActionNextShowNearFan`. Locations are approximate on purpose: a ZIP or
postal code is placed at its metro (when a show's own prefixes match), its state (a few large
states by ZIP3 range) or the centre of its region (first ZIP digit, first postal-code letter), which is enough to pick the closest city.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date

from bot.flows import places

TOUR_URL = "https://novavale.example/tour"


@dataclass(frozen=True, slots=True)
class Show:
    city: str
    venue: str
    day: date
    ticket_url: str
    lat: float
    lon: float
    prefixes: tuple[str, ...]  # US ZIP3 prefixes or Canadian FSA letters served by this metro


def _show(city, venue, day, slug, lat, lon, *prefixes) -> Show:
    return Show(city, venue, date.fromisoformat(day), f"{TOUR_URL}/{slug}", lat, lon, prefixes)


# Keep in sync with domain.yml's facts: Feb 12 (Seattle) to Mar 28 (New York), 12 cities.
SHOWS: tuple[Show, ...] = (
    _show("Seattle", "Climate Pledge Arena", "2027-02-12", "sea", 47.62, -122.35, "980", "981"),
    _show("Vancouver", "Rogers Arena", "2027-02-14", "yvr", 49.28, -123.11, "V"),
    _show("San Francisco", "Chase Center", "2027-02-17", "sfo", 37.77, -122.39, "940", "941"),
    _show("Los Angeles", "Kia Forum", "2027-02-19", "lax", 33.96, -118.34, "900", "902", "913"),
    _show("Denver", "Ball Arena", "2027-02-23", "den", 39.75, -105.01, "800", "801", "802"),
    _show("Austin", "Moody Center", "2027-02-26", "aus", 30.28, -97.73, "786", "787"),
    _show("Atlanta", "State Farm Arena", "2027-03-03", "atl", 33.76, -84.40, "300", "303"),
    _show("Chicago", "United Center", "2027-03-07", "chi", 41.88, -87.67, "606", "607", "608"),
    _show("Toronto", "Scotiabank Arena", "2027-03-12", "yyz", 43.64, -79.38, "M"),
    _show("Montreal", "Bell Centre", "2027-03-15", "yul", 45.50, -73.57, "H"),
    _show("Boston", "TD Garden", "2027-03-21", "bos", 42.37, -71.06, "021", "022"),
    _show("New York", "Madison Square Garden", "2027-03-28", "nyc", 40.75, -73.99, "100", "101"),
)


# Where one ZIP digit covers too much ground: ZIP3 ranges -> rough centre of the state.
_US_STATES: tuple[tuple[int, int, tuple[float, float]], ...] = (
    (330, 349, (28.0, -81.7)),  # FL
    (550, 567, (45.0, -93.3)),  # MN
    (590, 599, (46.9, -110.4)),  # MT
    (750, 799, (31.0, -97.5)),  # TX
    (820, 831, (42.9, -107.3)),  # WY
    (832, 838, (43.6, -116.2)),  # ID
    (840, 847, (40.8, -111.9)),  # UT
    (850, 865, (33.4, -112.0)),  # AZ
    (870, 884, (35.1, -106.6)),  # NM
    (889, 898, (36.2, -115.1)),  # NV
    (900, 961, (36.8, -119.4)),  # CA
    (967, 968, (21.3, -157.9)),  # HI
    (970, 979, (44.0, -120.5)),  # OR
    (980, 994, (47.4, -120.5)),  # WA
    (995, 999, (61.2, -149.9)),  # AK
)
# Rough centres of the regions a US ZIP's first digit stands for.
_US_REGIONS: dict[str, tuple[float, float]] = {
    "0": (42.0, -72.0),  # New England, NJ
    "1": (41.5, -76.0),  # NY, PA, DE
    "2": (37.0, -78.5),  # DC, MD, VA, WV, NC, SC
    "3": (32.5, -85.0),  # FL, GA, AL, TN, MS
    "4": (40.5, -84.5),  # IN, KY, MI, OH
    "5": (45.0, -96.0),  # IA, MN, MT, ND, SD, WI
    "6": (40.0, -93.0),  # IL, KS, MO, NE
    "7": (32.0, -96.0),  # AR, LA, OK, TX
    "8": (39.0, -110.0),  # AZ, CO, ID, NM, NV, UT, WY
    "9": (38.5, -121.0),  # CA, OR, WA, AK, HI
}
# Rough centres of the areas a Canadian postal code's first letter stands for.
_CA_REGIONS: dict[str, tuple[float, float]] = {
    "A": (48.5, -56.0),  # NL
    "B": (45.0, -63.0),  # NS
    "C": (46.3, -63.1),  # PE
    "E": (46.5, -66.0),  # NB
    "G": (47.0, -71.0),  # eastern QC
    "H": (45.5, -73.6),  # Montreal
    "J": (46.0, -74.0),  # western QC
    "K": (45.0, -76.0),  # eastern ON
    "L": (43.5, -80.0),  # central ON
    "M": (43.7, -79.4),  # Toronto
    "N": (43.0, -81.0),  # south-western ON
    "P": (47.0, -82.0),  # northern ON
    "R": (50.0, -97.0),  # MB
    "S": (52.0, -106.0),  # SK
    "T": (52.0, -114.0),  # AB
    "V": (49.3, -123.0),  # BC
    "X": (62.5, -114.4),  # NT, NU
    "Y": (60.7, -135.0),  # YT
}
# What fans call the tour cities ("nyc", "san fran", "the bay"); matched as whole words.
CITY_ALIASES: dict[str, str] = {
    "seattle": "Seattle", "sea": "Seattle",
    "vancouver": "Vancouver", "yvr": "Vancouver",
    "san francisco": "San Francisco", "sf": "San Francisco", "san fran": "San Francisco",
    "the bay": "San Francisco", "bay area": "San Francisco",
    "los angeles": "Los Angeles", "la": "Los Angeles", "l.a.": "Los Angeles", "lax": "Los Angeles",
    "denver": "Denver", "austin": "Austin", "atlanta": "Atlanta", "atl": "Atlanta",
    "chicago": "Chicago", "chi town": "Chicago", "chitown": "Chicago",
    "toronto": "Toronto", "the six": "Toronto", "the 6ix": "Toronto", "yyz": "Toronto",
    "montreal": "Montreal", "montréal": "Montreal", "mtl": "Montreal",
    "boston": "Boston", "new york": "New York", "nyc": "New York", "new york city": "New York",
    "ny": "New York", "manhattan": "New York",
}  # fmt: skip
_CITY = re.compile(
    r"(?<![\w.])("
    + "|".join(sorted(map(re.escape, CITY_ALIASES), key=len, reverse=True))
    + r")(?!\w)",
    re.IGNORECASE,
)
_US_ZIP = re.compile(r"^(\d{5})(?:-?\d{4})?$")
_CA_POSTAL = re.compile(r"^([ABCEGHJ-NPRSTVXY]\d[A-Z])(\d[A-Z]\d)$")


def normalise_postal_code(raw: str) -> str | None:
    """`"m5v 2t6"` -> `"M5V 2T6"`, `"10001-1234"` -> `"10001"`; None when it is neither."""
    text = re.sub(r"[\s]", "", str(raw)).upper()
    if match := _US_ZIP.match(text):
        return match.group(1)
    if match := _CA_POSTAL.match(text):
        return f"{match.group(1)} {match.group(2)}"
    return None


def locate(postal_code: str) -> tuple[float, float] | None:
    """Approximate coordinates of a US ZIP or Canadian postal code, or of a city the engine's
    gazetteer knows (a `location` slot holds either)."""
    code = normalise_postal_code(postal_code)
    if code is None:
        return places.coordinates(postal_code)
    key = code[:3] if code.isdigit() else code[0]
    for show in SHOWS:
        if key in show.prefixes:
            return show.lat, show.lon
    if not code.isdigit():
        return _CA_REGIONS.get(code[0])
    zip3 = int(key)
    for low, high, centre in _US_STATES:
        if low <= zip3 <= high:
            return centre
    return _US_REGIONS.get(code[0])


def nearest_show(postal_code: str, today: date) -> Show | None:
    """The closest show on or after `today`; None for an unknown code or a finished tour."""
    where = locate(postal_code)
    upcoming = [show for show in SHOWS if show.day >= today]
    if where is None or not upcoming:
        return None
    return min(upcoming, key=lambda show: _km(where, (show.lat, show.lon)))


def show_in_city(text: str) -> Show | None:
    """The show in the tour city `text` names ("what about denver", "NYC?"), if any."""
    match = _CITY.search(str(text))
    if match is None:
        return None
    city = CITY_ALIASES[match.group(1).lower()]
    return next(show for show in SHOWS if show.city == city)


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2
    h += math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))
