"""Several questions in one text: splitting into clauses, choosing which to answer, packing replies."""

from __future__ import annotations

import pytest

from bot.messages import Prediction
from bot.nlu.questions import Reading, pack_replies, pick_questions, split_questions


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("when is the presale and how much are tickets",
         ["when is the presale", "how much are tickets"]),
        ("when is the tour? how much are tix?", ["when is the tour?", "how much are tix?"]),
        ("when is the presale, and also where is merch", ["when is the presale", "where is merch"]),
        ("omg the show was amazing. my friend cried. when is the next tour?",
         ["omg the show was amazing.", "my friend cried.", "when is the next tour?"]),
        ("is there a vip and what does it include", ["is there a vip", "what does it include"]),
        ("when is the tour\nwhere do i buy merch", ["when is the tour", "where do i buy merch"]),
        # not split: "and" inside one question, one-word parts stay with their neighbour
        ("do you sell hoodies and tshirts", ["do you sell hoodies and tshirts"]),
        ("rock and roll is my life", ["rock and roll is my life"]),
        ("hi! when is the tour", ["hi! when is the tour"]),
        ("when is the tour? thanks", ["when is the tour? thanks"]),
        ("ok", ["ok"]),
    ],
)  # fmt: skip
def test_split_questions(text, clauses):
    assert split_questions(text) == clauses


def reading(text: str, answer: str | None, hands_off: bool = False) -> Reading:
    return Reading(text, Prediction(text=text, intent=answer, confidence=0.9), answer, hands_off)


def test_two_sure_answers_are_both_answered():
    whole = reading("when is the presale and how much are tickets", "faq_presale")
    parts = [
        reading("when is the presale", "faq_presale"),
        reading("how much are tickets", "faq_tickets"),
    ]
    assert [p.answer for p in pick_questions(whole, parts)] == ["faq_presale", "faq_tickets"]


def test_at_most_three_and_never_the_same_answer_twice():
    whole = reading("...", None)
    parts = [reading(f"q{i}", a) for i, a in enumerate(["a", "a", "b", "c", "d"])]
    assert [p.answer for p in pick_questions(whole, parts)] == ["a", "b", "c"]


def test_the_question_of_a_long_text_is_found():
    whole = reading("omg the show was amazing. my friend cried. when is the next tour?", None)
    parts = [reading("omg the show was amazing.", None), reading("my friend cried.", None),
             reading("when is the next tour?", "faq_tour_dates")]  # fmt: skip
    assert [p.text for p in pick_questions(whole, parts)] == ["when is the next tour?"]


def test_otherwise_the_whole_text_is_one_turn():
    # the whole text already reads as its one answer: nothing to split
    same = reading("hey. when is the tour?", "faq_tour_dates")
    assert (
        pick_questions(
            same, [reading("hey.", None), reading("when is the tour?", "faq_tour_dates")]
        )
        == []
    )
    # one clause, or one sure part that is not a question
    assert pick_questions(reading("x", None), [reading("when is the tour", "t")]) == []
    assert (
        pick_questions(reading("x", None), [reading("meh.", None), reading("tour dates.", "t")])
        == []
    )


def test_a_part_a_person_must_see_keeps_the_text_whole():
    whole = reading("my order never came and when is the tour", None)
    parts = [reading("my order never came", None, hands_off=True), reading("when is the tour", "t"),
             reading("where is merch", "m")]  # fmt: skip
    assert pick_questions(whole, parts) == []


def test_replies_share_a_text_while_it_fits_the_segment_budget():
    short = ["Presale: Tuesday 10am.", "Tickets from $45."]
    assert pack_replies(short, 1) == ["Presale: Tuesday 10am.\n\nTickets from $45."]
    long = ["x" * 150, "y" * 150]
    assert pack_replies(long, 1) == long  # each alone is one segment; together two
    assert pack_replies(long, 2) == ["x" * 150 + "\n\n" + "y" * 150]
