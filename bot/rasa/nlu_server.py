"""`nlu:` in endpoints.yml: intents and entities from a running Rasa NLU server (`/model/parse`).

Step 5 of the message path (NLU), when a team keeps the model it trained with Rasa. The
pipeline's `EncodingBatcher` asks `needs_encoding(text)`, runs `prefetch(texts)` in a worker
thread (so the HTTP calls never block the event loop) and then `parse(text)`. A failed call
(timeout, connection refused, an error status, a body that is not Rasa's) falls back to
Fanline's own model for that text. Out of scope is decided as for Fanline's own model: Rasa's
`nlu_fallback`, `out_of_scope` and `out_of_scope/*`, or a confidence under `threshold`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bot.errors import ConfigError, Location
from bot.messages import Entity, Prediction

log = logging.getLogger(__name__)
OUT_OF_SCOPE = "out_of_scope"
RASA_FALLBACK = "nlu_fallback"
CACHE_SIZE = 1024
FRESH_S = 30.0  # a parse is reused this long: the Rasa server may load another model


@dataclass(frozen=True, slots=True)
class NluEndpoint:
    url: str  # the server's base URL, e.g. http://localhost:5005
    timeout_s: float = 1.0
    threshold: float = 0.0  # Rasa's confidences are not calibrated: its own nlu_fallback decides
    token: str | None = None


def read_endpoint(project_dir: Path) -> NluEndpoint | None:
    """The `nlu:` entry of endpoints.yml, or None; errors name the file and key."""
    from bot.settings import _read  # the same `${VAR}` expansion as every other setting

    path = project_dir / "endpoints.yml"
    spec = _read(path, dict(os.environ)).get("nlu")
    if not spec:
        return None
    if not isinstance(spec, dict) or not str(spec.get("url") or "").startswith("http"):
        raise ConfigError("nlu needs a url: http://host:port", Location(str(path), None, "nlu.url"))
    try:
        return NluEndpoint(str(spec["url"]).rstrip("/"), float(spec.get("timeout", 1.0)),
                           float(spec.get("threshold", 0.0)), spec.get("token"))  # fmt: skip
    except (TypeError, ValueError):
        raise ConfigError(
            "nlu.timeout and nlu.threshold are numbers", Location(str(path), None, "nlu")
        ) from None


class RasaNluInterpreter:
    """Looks like `bot.nlu.Interpreter` to the pipeline; parses with the Rasa server first."""

    def __init__(self, endpoint: NluEndpoint, local: Any, transport: Any = None):
        self.endpoint = endpoint
        self.local = local  # Fanline's own model: the fallback
        self._client = httpx.Client(timeout=endpoint.timeout_s, transport=transport)
        self._parsed: OrderedDict[str, tuple[float, Prediction | None]] = OrderedDict()
        self.failures = 0  # calls that fell back (tests, metrics)
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # threshold, fingerprint, metadata, model ...
        return getattr(self.local, name)

    def needs_encoding(self, text: str) -> bool:
        found = self._parsed.get(text)
        return found is None or time.monotonic() - found[0] > FRESH_S

    def prefetch(self, texts: list[str]) -> None:
        for text in texts:
            self._remember(text, self._call(text))
        failed = [t for t in texts if self._parsed.get(t, (0, None))[1] is None]
        if failed:
            self.local.prefetch(failed)  # the fallback model's encoder, batched as usual

    def parse(self, text: str) -> Prediction:
        if self.needs_encoding(text):
            self._remember(text, self._call(text))  # a caller outside the pipeline's batcher
        remote = self._parsed[text][1]
        return remote if remote is not None else self.local.parse(text)

    def _remember(self, text: str, prediction: Prediction | None) -> None:
        with self._lock:  # prefetch runs in a worker thread, parse on the event loop
            self._parsed[text] = (time.monotonic(), prediction)
            self._parsed.move_to_end(text)
            while len(self._parsed) > CACHE_SIZE:
                self._parsed.popitem(last=False)

    def _call(self, text: str) -> Prediction | None:
        params = {"token": self.endpoint.token} if self.endpoint.token else None
        try:
            response = self._client.post(f"{self.endpoint.url}/model/parse", json={"text": text},
                                         params=params)  # fmt: skip
            response.raise_for_status()
            return from_rasa(response.json(), text, self.endpoint.threshold)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self.failures += 1
            # never the text: message bodies stay out of the logs
            log.warning(
                "Rasa NLU server failed (%s); using Fanline's own model", type(exc).__name__
            )
            return None

    def close(self) -> None:
        self._client.close()


def from_rasa(body: dict[str, Any], text: str, threshold: float = 0.0) -> Prediction:
    """A Rasa `/model/parse` body -> Prediction, with Fanline's out-of-scope rules."""
    intent = body["intent"] or {}
    name, confidence = intent.get("name"), float(intent.get("confidence") or 0.0)
    ranking = tuple((str(r["name"]), round(float(r["confidence"]), 4))
                    for r in body.get("intent_ranking") or [])  # fmt: skip
    entities = tuple(_entity(e) for e in body.get("entities") or [])
    retrieval = _retrieval(body, name)
    said_out = name is None or name in (RASA_FALLBACK, OUT_OF_SCOPE)
    said_out = said_out or str(name).startswith(f"{OUT_OF_SCOPE}/")
    if said_out or confidence < threshold:
        # the confidence that the text is out of scope, as Fanline's own model reports it
        sure = confidence if said_out and name is not None else 1.0 - confidence
        return Prediction(text, OUT_OF_SCOPE, round(sure, 4), ranking, entities)
    return Prediction(text, str(name).split("/")[0], round(confidence, 4), ranking, entities,
                      retrieval)  # fmt: skip


def _retrieval(body: dict[str, Any], name: str | None) -> str | None:
    if name and "/" in name:
        return name
    selector = (body.get("response_selector") or {}).get(name or "") or {}
    key = (selector.get("response") or {}).get("intent_response_key")
    return str(key) if key else None


def _entity(e: dict[str, Any]) -> Entity:
    return Entity(str(e["entity"]), e.get("value"), e.get("start"), e.get("end"), e.get("role"),
                  e.get("group"), f"rasa:{e.get('extractor') or 'unknown'}")  # fmt: skip


def with_rasa_nlu(project_dir: Path, local: Any) -> Any:
    """The local interpreter, or a RasaNluInterpreter over it when endpoints.yml names `nlu:`."""
    endpoint = read_endpoint(project_dir)
    return local if endpoint is None else RasaNluInterpreter(endpoint, local)
