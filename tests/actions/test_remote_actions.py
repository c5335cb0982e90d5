"""ActionRunner against a real rasa-sdk action server (`python -m rasa_sdk`) on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.actions import ActionCall, ActionRunner
from bot.errors import ActionError

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
READY_ATTEMPTS = 150  # x 0.1 s of waiting on the process between /health polls


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(proc: subprocess.Popen, url: str, log: Path) -> None:
    for _ in range(READY_ATTEMPTS):
        try:
            if httpx.get(f"{url}/health", timeout=1.0, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:  # waits a little, and notices a server that died on start-up
            proc.wait(timeout=0.1)
            pytest.fail(f"action server exited with {proc.returncode}:\n{log.read_text()}")
        except subprocess.TimeoutExpired:
            continue
    pytest.fail(f"action server not healthy after {READY_ATTEMPTS} polls:\n{log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    # The server forks Sanic workers; its own session holds them all.
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def action_server(package: str, workdir: Path) -> Iterator[str]:
    port = free_port()
    env = os.environ | {
        "SANIC_HOST": "127.0.0.1",
        "SANIC_GRACEFUL_SHUTDOWN_TIMEOUT": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
    }
    env.pop("ACTION_SERVER_SANIC_WORKERS", None)
    log = workdir / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rasa_sdk", "--actions", package, "--port", str(port)],
            cwd=workdir,  # no endpoints.yml here: the server must not pick up the project's
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(proc, url, log)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory) -> Iterator[str]:
    yield from action_server("actions", tmp_path_factory.mktemp("demo_server"))


@pytest.fixture(scope="module")
def test_server(tmp_path_factory) -> Iterator[str]:
    yield from action_server("fanline_test_actions", tmp_path_factory.mktemp("test_server"))


@pytest.fixture
async def demo_remote(demo_server):
    runner = ActionRunner(package=None, endpoint_url=f"{demo_server}/webhook")
    yield runner
    await runner.aclose()


@pytest.fixture
async def test_remote(test_server):
    runner = ActionRunner(package=None, endpoint_url=f"{test_server}/webhook", timeout_s=0.5)
    yield runner
    await runner.aclose()


def call(name: str, slots: dict | None = None, **message) -> ActionCall:
    return ActionCall(name, "7", slots or {}, message or {"text": "hi"}, "demo")


DEMO_CALLS = [
    call("action_next_show_near_fan", {"zip": "10001"}),
    call("action_next_show_near_fan", text="tour?", metadata={"fan": {"zip": "T2P 1J9"}}),
    call("action_next_show_near_fan"),
    call("action_check_presale_code", {"presale_code": "NL123455"}),
    call("action_check_presale_code", {"presale_code": "NL123456"}),
    call("action_save_profile", {"birthday": "2001-05-17", "zip": "m5v2t6"}),
]


@pytest.mark.parametrize("action_call", DEMO_CALLS, ids=lambda c: c.name)
async def test_demo_actions_answer_the_same_remotely_and_in_process(demo_remote, action_call):
    local = ActionRunner(package="actions")

    remote_result = await demo_remote.run(action_call)

    assert remote_result == await local.run(action_call)
    assert remote_result.slots or action_call.name == "action_save_profile"


async def test_remote_runner_lists_the_servers_actions(demo_remote):
    assert demo_remote.known_actions() == set()
    assert await demo_remote.remote_actions() == {
        "action_next_show_near_fan",
        "action_check_presale_code",
        "action_save_profile",
    }


async def test_the_tracker_reaches_the_server_as_it_reaches_the_executor(test_remote, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    local = ActionRunner(package="fanline_test_actions")
    echo = ActionCall(
        "action_echo",
        "1042",
        {"zip": "80202"},
        {"text": "dates?", "intent": {"name": "ask_tour_dates", "confidence": 0.9}},
        "tour_dates",
        ({"event": "user", "text": "hi"},),
    )

    remote_result = await test_remote.run(echo)

    assert remote_result == await local.run(echo)
    assert remote_result.slots["seen_intent"] == "ask_tour_dates"
    assert remote_result.slots["seen_flows"] == ["tour_dates"]
    assert [e["event"] for e in remote_result.other_events] == ["followup"]


async def test_unknown_remote_action_is_an_action_error(test_remote):
    with pytest.raises(ActionError, match="unknown custom action 'action_nope' on the action"):
        await test_remote.run(call("action_nope"))


async def test_a_remote_action_that_raises_is_an_action_error(test_remote):
    with pytest.raises(ActionError, match="'action_explode' failed on the action server: the CRM"):
        await test_remote.run(call("action_explode"))


async def test_a_remote_rejection_is_an_action_error(test_remote):
    with pytest.raises(ActionError, match="'action_reject' rejected execution: not today"):
        await test_remote.run(call("action_reject"))


async def test_a_slow_remote_action_times_out(test_remote):
    with pytest.raises(ActionError, match=r"'action_hang' timed out after 0.5s"):
        await test_remote.run(call("action_hang"))


async def test_an_unreachable_server_is_an_action_error():
    runner = ActionRunner(package=None, endpoint_url=f"http://127.0.0.1:{free_port()}/webhook")
    with pytest.raises(ActionError, match="unreachable"):
        await runner.run(call("action_save_profile"))
    with pytest.raises(ActionError, match="could not list actions"):
        await runner.remote_actions()
    await runner.aclose()


async def test_remote_mode_does_not_import_the_package(demo_server):
    runner = ActionRunner(package="no_such_pkg", endpoint_url=f"{demo_server}/webhook")
    result = await runner.run(call("action_check_presale_code", {"presale_code": "NL000000"}))
    await runner.aclose()

    assert result.slots == {"presale_code_valid": True}
