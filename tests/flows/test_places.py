"""City names in fans' texts, from the shipped gazetteer."""

from __future__ import annotations

from bot.flows import places


def test_a_short_answer_names_a_city_in_any_case_with_region_or_filler_words():
    assert places.city("TORONTO") == "Toronto"
    assert places.city("phoenix, az") == "Phoenix"
    assert places.city("london ontario") == "London"
    assert places.city("the six") == "Toronto"
    assert places.city("philly") == "Philadelphia"
    assert places.city("when is the tour") is None


def test_a_passing_mention_needs_a_locative_word_and_no_everyday_word():
    assert places.mentioned("PLEASE come to Denver!!") == "Denver"
    assert places.mentioned("omg i drove to new york city for this") == "New York City"
    assert places.mentioned("denver") is None  # an answer, not a mention
    assert places.mentioned("i love it in the morning") is None
    assert places.mentioned("i came to surprise her") is None


def test_coordinates_of_a_city():
    lat, lon = places.coordinates("Phoenix")  # type: ignore[misc]
    assert round(lat) == 33 and round(lon) == -112
    assert places.coordinates("Narnia") is None
