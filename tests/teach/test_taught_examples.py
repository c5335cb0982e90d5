"""What a taught FAQ learns from fans' texts is their words: the emoji they add are left out.

In issue 15's storm, texts such as "where do i park 🙏" taught the parking FAQ, which then
answered a bare "🙏" (0.73) and "😭😭😭" (0.65) with parking directions.
"""

from __future__ import annotations

from pathlib import Path

from bot.content import load_content
from bot.teach.content_writer import NLU_FILE, add_faq, clean_examples
from tests.teach.conftest import project  # noqa: F401  (fixture)


def test_a_text_with_words_is_taught_without_its_emoji() -> None:
    assert clean_examples(["where do i park 🙏", "is it still on?? 😭😭", "ok 👍🏽 thx",
                           "café ☕ near the venue"]) == [
        "where do i park", "is it still on??", "ok thx", "café near the venue"]  # fmt: skip
    assert clean_examples(["❤️❤️"]) == ["❤️❤️"]  # nothing but symbols: kept as it is
    assert clean_examples(["where do i park 🙏", "where do i park"]) == ["where do i park"]


def test_a_taught_faq_is_written_without_the_fans_emoji(project: Path) -> None:  # noqa: F811
    add_faq(project, "ask_parking", "Lot B, $20.", ["where do i park 🙏", "parking?? 😭😭"])
    nlu = (project / NLU_FILE).read_text()
    assert "      - where do i park\n" in nlu and "      - parking??\n" in nlu
    assert "🙏" not in nlu and "😭" not in nlu
    assert "ask_parking" in load_content(project).intents
