"""Fans' texts scrubbed of what points to a person, their question intact."""

from __future__ import annotations

import pytest

from bot.teach.scrub import profile_names, scrub


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("is the show still on? call me (555) 123-4567", "is the show still on? call me <phone>"),
        ("my cell is +1 555 123 4567", "my cell is <phone>"),
        ("text 555.123.4567 or 5551234567", "text <phone> or <phone>"),
        ("uk fan +44 20 7946 0958 here", "uk fan <phone> here"),
        ("refund to sarah.k+tix@gmail.com pls", "refund to <email> pls"),
        ("dm @sarahk_22 about it", "dm <handle> about it"),
        ("see https://instagram.com/sarah.k/ ok", "see instagram.com/<link> ok"),
        ("is www.tix-deals.biz/nova?ref=abc legit", "is tix-deals.biz/<link> legit"),
        ("buy at ticketmaster.com?", "buy at ticketmaster.com?"),
        ("my name is sarah and i want a refund", "my name is <name> and i want a refund"),
        ("I'm Jessica, is the denver show on", "I'm <name>, is the denver show on"),
        ("This is Mike, where is my order", "This is <name>, where is my order"),
        ("Mike here. doors at 7?", "<name> here. doors at 7?"),
        ("where is my hoodie?? thanks, Priya", "where is my hoodie?? thanks, <name>"),
    ],
)
def test_personal_details_become_placeholders(text: str, scrubbed: str) -> None:
    assert scrub(text) == scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "I'm going to the show, is it still on",
        "I'm So excited for the tour",
        "this is so exciting",
        "This is Tuesday right?",
        "is the 7pm show on march 14",
        "tickets are $120 for 2 people in 2025",
        "show on 2025-03-14?",
        "call me when the presale opens",
        "its raining in denver is the show on",
    ],
)
def test_questions_without_personal_details_are_kept(text: str) -> None:
    assert scrub(text) == text


def test_the_fans_own_names_go_wherever_they_appear() -> None:
    names = profile_names({"first_name": "Dana", "last_name": "Kowalski", "zip": "80202"})
    assert names == ["Dana", "Kowalski"]
    assert (
        scrub("dana kowalski asking: is denver on", names) == "<name> <name> asking: is denver on"
    )
    assert scrub("Kowalskis are fans", names) == "Kowalskis are fans"  # whole words only
