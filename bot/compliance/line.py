"""The line's own phrase model: the shipped phrases, the background and this line's NLU examples.

Content time. `fanline train` (and a teach's retraining) trains it beside the NLU model, in the
same model directory (`compliance.json` + `compliance.npz`, no pickle); the server loads it
with the NLU model, and the reloader picks up a new one with it. A model directory without one
(a model trained before this existed, a Rasa NLU server) gets it trained at load from the
content, as a start-up build. `classify` stays pure: the pipeline passes the model in.

The line's examples are negatives ("other"): where fans say "tell me about rasa", that is the
line's question, not an opt-out. Intents that are themselves STOP / START / HELP requests
("unsubscribe", "opt_in", or whose examples the keywords and explicit wording take) are left
out of the negatives and reported (`audit`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from bot.compliance import phrases
from bot.compliance.phrases import PhraseModel

log = logging.getLogger(__name__)

VERSION = 2  # bumped when training changes what the model decides (2: the line's examples kept)
META, ARRAYS = "compliance.json", "compliance.npz"
KINDS = {"opt_out": "STOP", "opt_in": "START", "help": "HELP", "confirm_opt_out": "Reply STOP?"}
# intent names that are themselves a compliance request (tokens of the name)
_NAME_KIND = (
    ("opt_out", re.compile(r"^(.* )?(unsubscribe|unsub|optout|opt out|stop (texts?|messages?|"
                           r"messaging|sms|notifications?|subscription|contact)|stop)( .*)?$")),
    ("opt_in", re.compile(r"^(.* )?(subscribe|resubscribe|optin|opt in|start texts?)( .*)?$")),
    ("help", re.compile(r"^(ask |get |need )?help$")),
)  # fmt: skip
LAYER_SHARE = 0.5  # an intent whose examples the keyword layers take this often is one of them


def intent_tokens(intent: str) -> str:
    """ "ask_unsubscribe", "faq/optOut" -> "ask unsubscribe", "faq opt out"."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", intent)
    return " ".join(re.split(r"[_/\-.\s]+", spaced.lower())).strip()


def compliance_intents(data: Any) -> dict[str, tuple[str, str]]:
    """Intents that are themselves STOP / START / HELP requests: intent -> (kind, why)."""
    from bot.compliance import classify

    found: dict[str, tuple[str, str]] = {}
    by_intent: dict[str, list[str]] = {}
    for e in data.examples:
        by_intent.setdefault(e.intent, []).append(e.text)
    for intent, texts in sorted(by_intent.items()):
        name = intent_tokens(intent)
        kind = next((k for k, pattern in _NAME_KIND if pattern.match(name)), None)
        if kind is not None:
            found[intent] = (kind, "by its name")
            continue
        layers = Counter(
            d.kind for d in (classify(t, subscription="subscribed", policy=_KEYWORDS_ONLY)
                             for t in texts) if d is not None
        )  # fmt: skip
        if layers and (top := layers.most_common(1)[0])[1] >= max(2, LAYER_SHARE * len(texts)):
            found[intent] = (top[0], f"{top[1]} of its {len(texts)} examples are keywords "
                                     "or explicit wording")  # fmt: skip
    return found


def negatives(data: Any) -> list[str]:
    """The line's examples that must not read as STOP / START / HELP, in data order."""
    excluded = compliance_intents(data)
    return [e.text for e in data.examples if e.intent not in excluded]


def fingerprint(line_negatives: Iterable[str]) -> str:
    h = hashlib.sha256(f"{VERSION}:{phrases.NEGATIVE_WEIGHT}:{phrases.LINE_WEIGHT}".encode())
    for p in phrases.load_phrases():
        h.update(f"\0{p.label}\0{p.text}".encode())
    for text in (*phrases.load_background(), "\0line", *line_negatives):
        h.update(f"\0{text}".encode())
    return h.hexdigest()[:16]


def train(data: Any) -> PhraseModel:
    """The line's phrase model (a few seconds)."""
    own = negatives(data) if data is not None else []
    return PhraseModel(phrases.load_phrases(), phrases.load_background(), own)


def save(model: PhraseModel, model_dir: Path, fp: str) -> None:
    """Beside the NLU model, atomically: the reloader never sees half of it."""
    meta, arrays = model.state()
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-compliance-", dir=model_dir))
    try:
        np.savez(tmp / ARRAYS, **arrays)
        (tmp / META).write_text(json.dumps({**meta, "fingerprint": fp}, ensure_ascii=False))
        os.replace(tmp / ARRAYS, model_dir / ARRAYS)
        os.replace(tmp / META, model_dir / META)  # last: its presence means complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load(model_dir: Path, fp: str) -> PhraseModel | None:
    """The saved model for exactly these examples, else None."""
    try:
        meta = json.loads((model_dir / META).read_text())
        if meta.get("fingerprint") != fp:
            return None
        with np.load(model_dir / ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError):
        return None
    return PhraseModel.restore(meta, arrays)


def ensure(data: Any, model_dir: Path) -> bool:
    """Train and save the line's model unless the directory has it; True when trained."""
    fp = fingerprint(negatives(data))
    if load(model_dir, fp) is not None:
        return False
    save(train(data), model_dir, fp)
    return True


def load_or_train(data: Any, model_dir: Path | None) -> PhraseModel:
    """What a server uses: the model `fanline train` saved, or (none there, or made for other
    examples) one trained now from the content, in memory."""
    if data is None:
        return phrases.model()
    if model_dir is not None:
        found = load(Path(model_dir), fingerprint(negatives(data)))
        if found is not None:
            return found
    log.info("no compliance model for this content in the model directory; training it now")
    return train(data)


# ---- the report: which of the line's examples the layer would take -------------------------


def audit(data: Any, model: PhraseModel | None, policy: Any = None) -> list[Any]:
    """Warnings (ConfigError, file:line) for every training example the compliance layer would
    take as STOP / START / HELP (a fan who sends it never reaches its intent), and for each
    intent found to be a compliance request itself."""
    from bot.compliance import classify
    from bot.compliance.policy import DEFAULT
    from bot.errors import ConfigError, Location

    policy = policy or DEFAULT
    excluded = compliance_intents(data)
    out = []
    first: dict[str, Any] = {}
    for e in data.examples:
        first.setdefault(e.intent, e.location)
        if e.intent in excluded:
            continue
        d = classify(e.text, subscription="subscribed", model=model, policy=policy)
        if d is None:
            continue
        by = {"model": "the phrase model"}.get(d.keyword, "a keyword or explicit wording")
        loc = e.location or Location("data", None, "examples")
        out.append(ConfigError(
            f"example {e.text!r} of intent {e.intent!r} is taken as {KINDS[d.kind]} by {by}: "
            "a fan who sends it never reaches the intent",
            loc, warning=True,
        ))  # fmt: skip
    for intent, (kind, why) in excluded.items():
        loc = first.get(intent) or Location("data", None, "intent")
        out.append(ConfigError(
            f"intent {intent!r} is itself a {KINDS[kind]} request ({why}): compliance answers "
            "it before the NLU, and its examples are not negatives of the phrase model",
            loc, warning=True,
        ))  # fmt: skip
    return out


class _KeywordsOnly:
    phrase_model = False
    opt_out_sure = opt_out_ask = help_start_sure = 1.0


_KEYWORDS_ONLY: Any = _KeywordsOnly()


def report(data: Any, model_dir: Path | None, policy: Any, *, save: bool = False) -> list[Any]:
    """`fanline train` (`save`: the model trained and saved beside the NLU model) and `fanline
    validate`: the audit's warnings, with the line's own phrase model (unless turned off)."""
    if data is None:
        return []
    model = None
    if policy.phrase_model:
        if save and model_dir is not None and Path(model_dir).is_dir():
            ensure(data, Path(model_dir))
        model = load_or_train(data, model_dir)
    return audit(data, model, policy)
