"""The line's own phrase model and the subject check (issue 15): ordinary texts, the line's own
questions and questions about the star's content are never STOP / START / HELP by model. The
texts are the issue's (tried as fans would) or written here; none is a training phrase."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.compliance import classify, phrases
from bot.errors import ConfigError
from bot.nlu.data import load_training_data
from bot.settings import load_settings

# the modules this issue added are imported inside their tests, so that the texts above
# can be run against the code before it (each of those tests fails there)

# real texts other assistants' users sent, none asking to stop (issue 15, "Why" 1)
ORDINARY = [
    "tell me about rasa",
    "please tell me my todo list",
    "Kindly give me point list",
    "i do not want my phone synced anymore",
    "your security guards were so rude to me",
    "me podrían ayudar con un reembolso por favor",
]
# questions about the star's content ("Why" 2): never the HELP text
NOT_HELP = ["what songs will she play", "what is vale crew", "what do crew members get",
            "whats your real phone number"]  # fmt: skip
# never "You're already on the list!" (nor a re-subscription of someone who opted out)
NOT_START = ["whats the release date again", "can you follow me back on instagram"]


def kind(text: str, subscription: str = "subscribed", **kw) -> str | None:  # type: ignore[no-untyped-def]
    decision = classify(text, subscription=subscription, **kw)
    return decision.kind if decision else None


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_texts_neither_unsubscribe_nor_ask(text: str) -> None:
    assert kind(text) is None


@pytest.mark.parametrize("text", NOT_HELP)
def test_a_question_about_the_content_is_not_help(text: str) -> None:
    assert kind(text) != "help"


@pytest.mark.parametrize("subscription", ["subscribed", "unsubscribed"])
@pytest.mark.parametrize("text", NOT_START)
def test_a_question_with_again_or_back_is_not_start(text: str, subscription: str) -> None:
    assert kind(text, subscription) != "opt_in"


@pytest.mark.parametrize("text", ["birthday shout out pls", "can nova send my sister a video"])
def test_a_request_is_never_answered_with_the_stop_question(text: str) -> None:
    assert kind(text) is None


# messages and subscriptions that are someone else's (an assistant's users say these)
ELSEWHERE = ["text sam that i'm running ten minutes late", "please read me my newest text message",
             "do i have any new messages", "i want to cancel my subscription to the newspaper"]  # fmt: skip


@pytest.mark.parametrize("text", ELSEWHERE)
def test_a_message_or_subscription_that_is_not_ours_is_left_alone(text: str) -> None:
    assert kind(text) not in ("opt_out", "confirm_opt_out")


def test_help_and_start_in_words_about_the_texts_still_work() -> None:
    assert kind("um who is this??") == "help"
    assert kind("please put me back on your list", "unsubscribed") == "opt_in"
    assert kind("i'd rather not get these texts anymore") == "opt_out"


def _data(tmp_path: Path, intents: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    body = "\n".join(
        f"- intent: {name}\n  examples: |\n" + "".join(f"    - {t}\n" for t in texts)
        for name, texts in intents.items()
    )
    path = tmp_path / "data" / "nlu.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'version: "3.1"\nnlu:\n{body}', encoding="utf-8")
    return load_training_data([path.parent])


LINE = {
    "ask_about": ["tell me about the fan club", "tell me about the new album",
                  "tell me more about the merch drop", "tell me about the charity"],
    "cancel": ["cancel", "never mind", "forget it", "skip it"],
    "stop_texts": ["please stop the texts", "i want to stop getting messages"],
    "leave": ["stop", "unsubscribe", "stop texting me", "opt out"],
    "greet": ["hi", "hello there"],
}  # fmt: skip


def test_the_lines_own_examples_are_negatives_and_compliance_intents_are_found(
    tmp_path: Path,
) -> None:
    from bot.compliance import line

    data = _data(tmp_path, LINE)
    found = line.compliance_intents(data)
    assert found["stop_texts"] == ("opt_out", "by its name")
    assert found["leave"][0] == "opt_out" and "examples" in found["leave"][1]
    assert set(found) == {"stop_texts", "leave"}
    negatives = line.negatives(data)
    assert "tell me about the fan club" in negatives and "stop texting me" not in negatives
    own, shipped = line.train(data), phrases.model()
    text = "tell me about the tour"
    assert own.probabilities(text)["opt_out"] < shipped.probabilities(text)["opt_out"]
    assert kind(text, model=own) is None


def test_the_model_is_saved_beside_the_nlu_model_and_loaded_or_trained(tmp_path: Path) -> None:
    from bot.compliance import line

    data = _data(tmp_path, LINE)
    model_dir = tmp_path / "models" / "nlu-x"
    model_dir.mkdir(parents=True)
    assert line.ensure(data, model_dir) is True
    assert (model_dir / line.META).is_file() and (model_dir / line.ARRAYS).is_file()
    assert line.ensure(data, model_dir) is False  # unchanged: reused
    fp = line.fingerprint(line.negatives(data))
    loaded, trained = line.load(model_dir, fp), line.train(data)
    assert loaded is not None
    for text in ["please stop these texts", "tell me about the album", "who is this"]:
        assert loaded.probabilities(text) == pytest.approx(trained.probabilities(text))
    assert line.load(model_dir, "other-examples") is None
    empty = tmp_path / "models" / "nlu-old"
    empty.mkdir()
    fallback = line.load_or_train(data, empty)  # an older model directory: trained at load
    assert fallback.probabilities("hi") == pytest.approx(trained.probabilities("hi"))


def test_the_audit_names_file_and_line_of_every_example_the_layer_takes(tmp_path: Path) -> None:
    from bot.compliance import line

    data = _data(tmp_path, {**LINE, "ask_tour": ["when is the tour", "stop texting me lol"]})
    warnings = line.audit(data, line.train(data))
    texts = [str(w) for w in warnings]
    taken = [t for t in texts if "never reaches" in t]
    assert any("'cancel' of intent 'cancel' is taken as STOP" in t for t in taken)
    assert any("'stop texting me lol' of intent 'ask_tour'" in t for t in taken)
    assert all("nlu.yml:" in t for t in texts)
    assert any("intent 'leave' is itself a STOP request" in t for t in texts)
    assert all(w.warning for w in warnings)


def test_the_phrase_model_can_be_turned_off_but_never_the_keywords() -> None:
    from bot.compliance.policy import Policy

    off = Policy(phrase_model=False)
    assert kind("i'd rather not get these texts anymore", policy=off) is None
    assert kind("STOP", policy=off) == "opt_out"
    assert kind("stahp", policy=off) == "opt_out"
    assert kind("please stop texting me", policy=off) == "opt_out"
    assert kind("i'd rather not get these texts anymore", policy=Policy(opt_out_sure=1.0)) in (
        "confirm_opt_out", None)  # fmt: skip


def test_the_setting_is_validated_with_file_and_line(tmp_path: Path) -> None:
    from bot.compliance.policy import Policy, compliance_settings

    (tmp_path / "config.yml").write_text(
        "fanline:\n  compliance:\n    phrase_model: false\n    opt_out_sure: 0.8\n"
    )
    settings = load_settings(tmp_path, env={"FANLINE_SECRET_KEY": "k"})
    assert settings.compliance == Policy(phrase_model=False, opt_out_sure=0.8)
    for body, key, line_no in [
        ("  compliance:\n    opt_out_sure: 2\n", "opt_out_sure", 3),
        ("  compliance:\n    phrase_model: true\n    keywords: false\n", "keywords", 4),
        ("  compliance:\n    opt_out_sure: 0.3\n    opt_out_ask: 0.6\n", "opt_out_ask", 4),
    ]:
        (tmp_path / "config.yml").write_text("fanline:\n" + body)
        with pytest.raises(ConfigError) as err:
            load_settings(tmp_path, env={"FANLINE_SECRET_KEY": "k"})
        assert f"config.yml:{line_no}" in str(err.value) and key in str(err.value)
    with pytest.raises(ConfigError):
        compliance_settings([1], "config.yml")
