"""The inbox's report charts, drawn in a child process and kept by the figures they show.

A matplotlib draw is Python that holds the GIL for a second or two: on a thread of the web
process it would still stall the event loop (webhooks, the inbox, live feeds) for that long.
So the drawing runs in one child process of its own (`python -m bot.audience.chart_pool`,
started at the first draw, niced so it yields the CPU to the server, exiting when its pipe
closes), fed pickled figures and answering with SVG; the server never imports matplotlib.
The SVGs are kept by a digest of the report: the same figures (a page reloaded, a period
where nothing changed) are never drawn twice, and two requests for them wait for one drawing.

(Not multiprocessing: its spawned children import the parent's `__main__` again, and
`python -m bot` is the whole `fanline` command.)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pickle
import struct
import sys
from collections import OrderedDict
from typing import Any

from bot.audience.report_model import LineReport

KEEP = 16  # reports' pictures kept (a page's SVG is about 10-100 kB)
NICE = 5  # the drawing child's niceness, added to the server's: the server's turns go first
DRAW_TIMEOUT_S = 120.0
_SIZE = struct.Struct(">I")


class ChartError(RuntimeError):
    """The charts could not be drawn (the child failed or died)."""


class ChartPool:
    """`await draw(report)`: each chart as an <svg> element by its stem, drawn off the server."""

    def __init__(self, keep: int = KEEP):
        self.keep = keep
        self.drawings = 0  # reports the child drew (the rest came from what is kept)
        self._drawn: OrderedDict[str, asyncio.Future[dict[str, str]]] = OrderedDict()
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()  # one drawing at a time: the child reads one request

    async def draw(self, report: LineReport) -> dict[str, str]:
        key = hashlib.sha256(pickle.dumps(report, protocol=5)).hexdigest()
        found = self._drawn.get(key)
        if found is not None:
            self._drawn.move_to_end(key)
            return await asyncio.shield(found)
        future: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._drawn[key] = future
        while len(self._drawn) > self.keep:
            self._drawn.popitem(last=False)
        try:
            charts = await self._in_child(report)
        except BaseException as exc:
            self._drawn.pop(key, None)  # not kept: the next request draws again
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: the waiters get it, nobody else is told
            raise
        future.set_result(charts)
        self.drawings += 1
        return charts

    async def _in_child(self, report: LineReport) -> dict[str, str]:
        payload = pickle.dumps(report, protocol=5)
        async with self._lock:
            for attempt in (1, 2):
                proc = await self._child()
                assert proc.stdin is not None and proc.stdout is not None
                try:
                    proc.stdin.write(_SIZE.pack(len(payload)) + payload)
                    await proc.stdin.drain()
                    answer = await asyncio.wait_for(_read(proc.stdout), DRAW_TIMEOUT_S)
                except (BrokenPipeError, ConnectionResetError, asyncio.IncompleteReadError):
                    await self._stop_child()  # it died: a new one, once
                    if attempt == 2:
                        raise ChartError("the chart process died") from None
                    continue
                except BaseException:  # cancelled or timed out mid-answer: the pipe is out
                    await self._stop_child()  # of step, so that child goes
                    raise
                ok, value = pickle.loads(answer)
                if not ok:
                    raise ChartError(f"drawing the charts failed: {value}")
                return value  # type: ignore[no-any-return]
        raise AssertionError("unreachable")

    async def _child(self) -> asyncio.subprocess.Process:
        if self._proc is None or self._proc.returncode is not None:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.audience.chart_pool",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            )  # fmt: skip
        return self._proc

    async def _stop_child(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()

    async def aclose(self) -> None:
        """The child exits when its pipe closes; killed if it does not within a few seconds."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _read(stream: asyncio.StreamReader) -> bytes:
    (size,) = _SIZE.unpack(await stream.readexactly(_SIZE.size))
    return await stream.readexactly(size)


def _serve(inp: Any, out: Any) -> None:
    """The child: one pickled report in, (True, SVGs) or (False, the error's name) out, until
    the pipe closes."""
    import matplotlib.figure  # noqa: F401  (loaded before the first request, not during it)

    from bot.audience import report_charts

    while head := inp.read(_SIZE.size):
        (size,) = _SIZE.unpack(head)
        report = pickle.loads(inp.read(size))
        try:
            answer: tuple[bool, Any] = (True, report_charts.svgs(report))
        except Exception as exc:  # the top of the child's one job: the server says it failed
            answer = (False, type(exc).__name__)
        data = pickle.dumps(answer, protocol=5)
        out.write(_SIZE.pack(len(data)) + data)
        out.flush()


if __name__ == "__main__":
    os.nice(NICE)
    _serve(sys.stdin.buffer, sys.stdout.buffer)
