"""`nlu:` in endpoints.yml: parses from a Rasa NLU server, replayed by a stand-in on 127.0.0.1
(recorded `/model/parse` bodies), with a timeout and a fallback to Fanline's own model."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.nlu import load_interpreter, load_training_data, train
from bot.nlu.batching import EncodingBatcher
from bot.nlu.config import shipped_config
from bot.rasa.nlu_server import NluEndpoint, RasaNluInterpreter, read_endpoint
from tests.conftest import ROOT

from .helpers import project

RECORDED = {
    body["text"]: body
    for body in (
        json.loads(p.read_text()) for p in (ROOT / "tests/fixtures/rasa/model_parse").glob("*.json")
    )
}


class StandIn:
    """A Rasa-shaped NLU server on 127.0.0.1: `/model/parse` replays RECORDED by text."""

    def __init__(self) -> None:
        self.hold = asyncio.Event()  # "slow": never answered, so the client's timeout fires
        self.texts: list[str] = []
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/model/parse", self._parse)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def _parse(self, request: web.Request) -> web.Response:
        text = (await request.json())["text"]
        self.texts.append(text)
        if text == "slow":
            await self.hold.wait()
        if text in RECORDED:
            return web.json_response(RECORDED[text])
        if text == "not json":
            return web.Response(text="<html>proxy error</html>")
        return web.json_response({"error": "boom"}, status=500)

    async def close(self) -> None:
        self.hold.set()
        await self.runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[StandIn]:
    s = StandIn()
    await s.start()
    yield s
    await s.close()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory):
    root = project(tmp_path_factory.mktemp("p"), {})
    data = load_training_data([root / "data"])
    out = tmp_path_factory.mktemp("m")
    return load_interpreter(train(shipped_config("default"), data, out, progress=False))


@pytest.fixture
def rasa(server: StandIn, local) -> Iterator[RasaNluInterpreter]:
    interp = RasaNluInterpreter(NluEndpoint(server.url, timeout_s=0.3), local)
    yield interp
    interp.close()


async def test_intents_entities_and_retrieval_intents_come_from_the_rasa_server(rasa) -> None:
    batcher = EncodingBatcher(rasa)  # the pipeline's NLU step
    greet = await batcher.parse("wassup")
    assert (greet.intent, greet.confidence) == ("greet", 0.9731)
    booking = await batcher.parse("a table for 4 in chicago")
    assert [(e.entity, e.value, e.start, e.extractor) for e in booking.entities] == [
        ("number", "4", 12, "rasa:DIETClassifier"),
        ("city", "Chicago", 17, "rasa:DIETClassifier"),
    ]
    faq = await batcher.parse("how do i get tickets")
    assert (faq.intent, faq.retrieval_intent) == ("faq", "faq/ask_tickets")
    assert rasa.failures == 0


async def test_rasa_fallback_and_out_of_scope_are_out_of_scope(rasa) -> None:
    for text in ("what is the capital of peru", "write my essay"):
        p = await EncodingBatcher(rasa).parse(text)
        assert p.intent == "out_of_scope" and p.ranking, text
    strict = RasaNluInterpreter(NluEndpoint(rasa.endpoint.url, threshold=0.95), rasa.local)
    p = await asyncio.to_thread(strict.parse, "a table for 4 in chicago")  # outside the batcher
    assert p.intent == "out_of_scope"  # 0.88 < 0.95
    strict.close()


@pytest.mark.parametrize("text", ["slow", "boom", "not json"])
async def test_a_slow_or_broken_server_falls_back_to_fanlines_own_model(
    rasa, server: StandIn, text: str
) -> None:
    p = await EncodingBatcher(rasa).parse(text)
    assert p == rasa.local.parse(text) and rasa.failures == 1
    assert text in server.texts


async def test_a_fan_line_with_an_nlu_endpoint_answers_from_the_rasa_model(
    server: StandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import _conversation_tests
    from bot.settings import load_settings

    root = project(
        tmp_path,
        {
            "config.yml": "pipeline: default\n",
            "endpoints.yml": "nlu:\n  url: ${RASA_NLU_URL}\n  timeout: 0.5\n",
            "tests/conversations/rasa.yml": "test_cases:\n- test_case: rasa_knows_wassup\n"
            "  steps:\n  - user: wassup\n  - intent: greet\n  - bot: Hello!\n",
        },
    )
    os.environ["RASA_NLU_URL"] = server.url
    try:
        assert read_endpoint(root) == NluEndpoint(server.url, 0.5)
        assert await _conversation_tests(load_settings(root), []) == 0
    finally:
        del os.environ["RASA_NLU_URL"]
    assert "1 passed, 0 failed" in capsys.readouterr().out


def test_a_bad_nlu_endpoint_is_a_config_error(tmp_path: Path) -> None:
    from bot.errors import ConfigError

    root = project(tmp_path, {"endpoints.yml": "nlu:\n  url: localhost:5005\n"})
    with pytest.raises(ConfigError, match="nlu needs a url"):
        read_endpoint(root)


@pytest.mark.skipif(
    not os.environ.get("FANLINE_TEST_RASA_URL"),
    reason="no real Rasa server: set FANLINE_TEST_RASA_URL to a running `rasa run --enable-api` "
    "(Rasa needs Python 3.8-3.10 and minutes to train; CI uses the recorded stand-in)",
)
def test_a_real_rasa_server(local) -> None:
    interp = RasaNluInterpreter(NluEndpoint(os.environ["FANLINE_TEST_RASA_URL"], 5.0), local)
    p = interp.parse("hello")
    assert interp.failures == 0 and p.intent and 0 <= p.confidence <= 1
    interp.close()
