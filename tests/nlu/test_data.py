"""bot.nlu.data and bot.nlu.markup: Rasa-format training data and its errors."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.nlu import load_training_data
from bot.nlu.data import missing_retrieval_responses
from bot.nlu.markup import parse_markup

from .conftest import PROJECT, write


def test_fixture_project_loads_every_kind_of_item(fixture_data):
    assert fixture_data.intents == {
        "greet",
        "goodbye",
        "ask_tour_dates",
        "buy_merch",
        "birthday_shoutout",
        "faq",
        "human_handoff",
        "out_of_scope",
    }
    assert fixture_data.retrieval_intents == {"faq/ask_tickets", "faq/ask_vip"}
    assert fixture_data.entities == {"city", "birthday"}  # regexes and lookups are no entities
    assert fixture_data.unused_patterns == {"order_number"}
    assert fixture_data.synonyms["the big apple"] == "New York"
    assert fixture_data.synonyms["la"] == "Los Angeles"  # from [LA](city:Los Angeles)
    assert fixture_data.lookups["city"][0] == "Chicago"
    assert "utter_faq/ask_vip" in fixture_data.responses
    merch = [e for e in fixture_data.examples if e.intent == "buy_merch"]
    assert len(merch) == 10  # list form of examples
    assert merch[0].location.file.endswith("nlu.yml") and merch[0].location.line == 43


def test_example_lines_point_at_their_line(fixture_data):
    lines = (PROJECT / "data" / "nlu.yml").read_text().splitlines()
    for example in fixture_data.examples:
        assert example.text.split()[0] in lines[example.location.line - 1]


def test_markup_round_and_curly_forms():
    text, ents = parse_markup(
        'fly from [Berlin](city) to [nyc]{"entity": "city", "value": "New York", "role": "to"}'
    )
    assert text == "fly from Berlin to nyc"
    assert [(e.entity, e.value, text[e.start : e.end], e.role) for e in ents] == [
        ("city", "Berlin", "Berlin", None),
        ("city", "New York", "nyc", "to"),
    ]
    text, ents = parse_markup("see you in [LA](city:Los Angeles)!")
    assert text == "see you in LA!" and ents[0].value == "Los Angeles"


def test_missing_retrieval_response_is_reported(fixture_data):
    assert missing_retrieval_responses(fixture_data, set()) == []
    problems = missing_retrieval_responses(
        fixture_data.__class__(examples=fixture_data.examples), set()
    )
    assert {p.message.split("'")[1] for p in problems} == {"faq/ask_tickets", "faq/ask_vip"}


def test_duplicate_example_across_intents_is_a_warning(tmp_path):
    path = write(
        tmp_path,
        "nlu.yml",
        'version: "3.1"\nnlu:\n- intent: a\n  examples: |\n    - hello\n- intent: b\n  examples: |\n    - Hello\n',
    )
    data = load_training_data([path])
    assert len(data.warnings) == 1 and data.warnings[0].warning
    assert data.warnings[0].location.line == 8


BAD = {
    "version": ('version: "9.0"\nnlu: []\n', 1, "version"),
    "no examples": ('version: "3.1"\nnlu:\n- intent: greet\n', 3, "examples"),
    "dash missing": (
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    hello\n',
        6,
        "examples",
    ),
    "bad json": (
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    - I am [Bo]{"entity": name}\n',
        6,
        "examples",
    ),
    "unknown key": (
        'version: "3.1"\nnlu:\n- intent: greet\n  exmples: |\n    - hi\n',
        4,
        "exmples",
    ),
    "two kinds": (
        'version: "3.1"\nnlu:\n- intent: greet\n  synonym: x\n  examples: |\n    - hi\n',
        3,
        None,
    ),
    "bad regex": (
        'version: "3.1"\nnlu:\n- regex: zip\n  examples: |\n    - "[0-9"\n',
        5,
        "examples",
    ),
    "yaml syntax": ('version: "3.1"\nnlu:\n- intent: greet\n  examples: [a, b\n', 5, None),
    "nlu not a list": ('version: "3.1"\nnlu:\n  greet: hi\n', 3, "nlu"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_data_names_file_line_and_key(tmp_path, case):
    text, line, key = BAD[case]
    path = write(tmp_path, "nlu.yml", text)
    with pytest.raises(ConfigError) as info:
        load_training_data([path])
    assert info.value.location.file == str(path)
    assert info.value.location.line == line
    assert info.value.location.key == key
    assert str(path) in str(info.value)


def test_directory_skips_non_nlu_files_and_missing_path_errors(tmp_path):
    write(tmp_path, "stories.yml", 'version: "3.1"\nstories: []\n')
    write(tmp_path, "nlu.yaml", 'version: "3.1"\nnlu:\n- intent: hi\n  examples: |\n    - hey\n')
    assert load_training_data([tmp_path]).intents == {"hi"}
    with pytest.raises(ConfigError, match="does not exist"):
        load_training_data([tmp_path / "nope"])


def test_fingerprint_follows_content_not_layout(tmp_path):
    a = write(
        tmp_path,
        "a.yml",
        'version: "3.1"\nnlu:\n- intent: hi\n  examples: |\n    - hey\n    - hello\n',
    )
    b = write(
        tmp_path,
        "b.yml",
        'version: "3.1"\n\n\nnlu:\n- intent: hi\n  examples:\n    - hello\n    - hey\n',
    )
    c = write(
        tmp_path,
        "c.yml",
        'version: "3.1"\nnlu:\n- intent: hi\n  examples: |\n    - hey\n    - hello there\n',
    )
    fa, fb, fc = (load_training_data([p]).fingerprint for p in (a, b, c))
    assert fa == fb != fc
