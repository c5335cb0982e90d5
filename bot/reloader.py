"""Hot reload: a running server picks up edited content and a newly trained model between turns.

It polls file stamps (cheap, portable, no extra dependency). Invalid new content is refused
with its errors logged, and the server keeps answering with what it had: no restart, no
dropped message, no turn that sees half of each.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot.content import content_paths, load_content
from bot.errors import ConfigError, FanlineError, ModelOutdated
from bot.runtime import Runtime, build_engine, ensure_model, line_phrases

log = logging.getLogger(__name__)


def stamp(project_dir: Path, model_dir: Path) -> tuple[tuple[str, int, int], ...]:
    files = [p for group in content_paths(project_dir).values() for p in group]
    files += [project_dir / "config.yml"]
    if model_dir.is_dir():
        # a model being written (`.tmp-*`, published by one rename) is no change yet
        files += sorted(
            p
            for p in model_dir.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(model_dir).parts)
        )
    out = []
    for path in files:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


class Reloader:
    def __init__(self, runtime: Runtime, *, interval_s: float = 2.0):
        self.runtime = runtime
        self.interval_s = interval_s
        settings = runtime.settings
        self._stamp = stamp(settings.project_dir, settings.model_dir)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.interval_s)
            except TimeoutError:
                try:
                    await self.check()
                except Exception as exc:  # the loop must outlive any one bad edit
                    log.error("content reload failed (%s); will try again on the next edit",
                              type(exc).__name__)  # fmt: skip

    async def check(self) -> bool:
        """Reload if anything changed; True when new content is now live."""
        settings = self.runtime.settings
        current = await asyncio.to_thread(stamp, settings.project_dir, settings.model_dir)
        if current == self._stamp:
            return False
        self._stamp = current
        return await self.reload()

    async def reload(self) -> bool:
        settings = self.runtime.settings
        try:
            known = self.runtime.actions.known_actions() or None
            content = await asyncio.to_thread(
                load_content, settings.project_dir, actions=known,
                max_segments=settings.max_segments,
            )  # fmt: skip
            # never train inside the server: it loads what `fanline train` produced
            interpreter = await asyncio.to_thread(ensure_model, settings, content, False)
            phrases = await asyncio.to_thread(line_phrases, content, interpreter)
        except ModelOutdated:  # a teach's retraining (or `fanline train`) is on its way
            log.warning(
                "content changed; it goes live once its model is trained "
                "(`fanline train`, or the retraining a teach started)"
            )
            return False
        except (ConfigError, FanlineError) as exc:
            log.error(
                "content changed but is not valid; still serving the previous version:\n%s", exc
            )
            return False
        self.runtime.content = content
        engine = build_engine(content, interpreter, settings)
        self.runtime.pipeline.reload(engine, interpreter, phrases)
        log.info("reloaded content and model (%s)", getattr(interpreter, "fingerprint", "?")[:12])
        return True
