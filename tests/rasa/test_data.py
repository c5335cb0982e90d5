"""Rasa's data with Rasa's meaning: responses anywhere, retrieval and out-of-scope intents,
regexes and lookups as helpers of annotated entities, domain folders with forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content import load_content
from bot.errors import ValidationFailed
from bot.nlu import load_interpreter, load_nlu_config, load_training_data, train
from bot.nlu.config import shipped_config

from .helpers import project

FAQ = """\
version: "3.1"
nlu:
  - intent: faq/ask_tickets
    examples: |
      - how do I get tickets
      - where are tickets sold
  - intent: faq/ask_parking
    examples: |
      - is there parking
      - where do I park
  - intent: out_of_scope/other
    examples: |
      - what is the capital of france
      - write my homework
  - intent: out_of_scope/non_english
    examples: |
      - wie geht es dir
"""
RESPONSES = """\
version: "3.1"
responses:
  utter_faq/ask_tickets:
    - text: Tickets are at the link in our bio.
"""


def test_responses_in_data_files_are_loaded_and_answerless_retrieval_intents_are_errors(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, {"data/faq.yml": FAQ, "data/responses/responses.yml": RESPONSES})
    with pytest.raises(ValidationFailed) as info:
        load_content(root)
    errors = [p for p in info.value.problems if not p.warning]
    assert [str(p) for p in errors] == [
        f"{root / 'data/faq.yml'}:9 [examples]: retrieval intent 'faq/ask_parking' has no "
        "response utter_faq/ask_parking"
    ]
    (root / "data/responses/more.yaml").write_text(
        "responses:\n  utter_faq/ask_parking:\n    - text: Parking opens at 5pm.\n"
    )
    content = load_content(root)
    variant = content.domain.responses["utter_faq/ask_tickets"][0]
    assert variant.text.startswith("Tickets") and variant.where().line == 4
    assert "utter_faq/ask_parking" in content.domain.responses


def test_a_response_in_data_and_domain_twice_names_both_places(tmp_path: Path) -> None:
    dup = "responses:\n  utter_greet:\n    - text: Hi again\n"
    root = project(tmp_path, {"data/responses.yml": dup})
    with pytest.raises(ValidationFailed) as info:
        load_content(root)
    assert "utter_greet" in str(info.value) and "also defined" in str(info.value)


def test_rasa_out_of_scope_retrieval_intents_are_out_of_scope(tmp_path: Path) -> None:
    root = project(tmp_path, {"data/faq.yml": FAQ})
    data = load_training_data([root / "data"])
    assert {e.intent for e in data.examples if "france" in e.text or "geht" in e.text} == {
        "out_of_scope"
    }
    assert "out_of_scope/other" not in data.retrieval_intents
    interp = load_interpreter(
        train(shipped_config("default"), data, tmp_path / "m", progress=False)
    )
    assert interp.parse("what is the capital of france").intent == "out_of_scope"


def test_a_domain_folder_with_forms_e2e_actions_and_config_is_read(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {
            "domain/core.yml": 'version: "3.1"\nconfig:\n  store_entities_as_slots: true\n'
            "e2e_actions:\n  - Hi there\nslots:\n  email:\n    type: text\n",
            "domain/forms.yml": "forms:\n  signup_form:\n    required_slots:\n      - email\n"
            "responses:\n  utter_ask_email:\n    - text: Your email?\n",
        },
    )
    (root / "domain.yml").unlink()
    (root / "domain/core.yml").write_text(
        (root / "domain/core.yml").read_text() + "responses:\n  utter_greet:\n    - text: Hi\n"
    )
    content = load_content(root)
    assert "email" in content.domain.slots and "utter_ask_email" in content.domain.responses
    form = [w for w in content.warnings if "signup_form" in w.message]
    assert form and "fanline import rasa" in form[0].message
    assert form[0].location.file.endswith("forms.yml") and form[0].location.line == 2


PRODUCTS = """\
version: "3.1"
nlu:
  - intent: ask_product
    examples: |
      - tell me about [rasa x](product)
      - how does [nlu](product) work
      - I need help with [core](product)
      - what is [rasa x](product) for
      - can you explain [core](product)
      - I have a question about [nlu](product)
      - is [rasa x](product) free
  - intent: greet
    examples: |
      - hey there
      - hello
      - hi friend
      - good morning
  - lookup: product
    examples: |
      - rasa x
      - nlu
      - core
      - rasa enterprise
  - regex: greet
    examples: |
      - \\bhey\\b
  - regex: help
    examples: |
      - \\bhelp\\b
"""


def test_regexes_and_lookups_help_the_entity_they_name_and_create_no_other(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, {"data/nlu.yml": PRODUCTS})
    (root / "config.yml").write_text(
        "pipeline:\n- name: WhitespaceTokenizer\n- name: RegexFeaturizer\n"
        "- name: CountVectorsFeaturizer\n- name: DIETClassifier\n- name: RegexEntityExtractor\n"
        "- name: EntitySynonymMapper\n"
    )
    data = load_training_data([root / "data"])
    assert data.entities == {"product"} and data.unused_patterns == {"greet", "help"}
    cfg = load_nlu_config(root / "config.yml")
    interp = load_interpreter(train(cfg, data, tmp_path / "m", progress=False))
    assert interp.parse("hey there").entities == ()  # Rasa: a feature, not `greet: hey`
    found = {(e.entity, e.value) for e in interp.parse("I need help with rasa enterprise").entities}
    assert found == {("product", "rasa enterprise")}  # the lookup helps the annotated entity
    tagger = interp.model.tagger
    assert tagger is not None and set(tagger.patterns) == {"product", "greet", "help"}
