"""Taught FAQs written into the fan line's own content files, as a change the content team reviews.

A new intent goes to `data/taught.yml` (Rasa NLU format), its answer `utter_<intent>` to
`domain/taught.yml`, a one-step flow triggered by it to `flows/taught.yml`. Each is plain YAML
text appended at the end, never a re-dump: comments, order and quoting of everything already
there stay as they were, and `git diff` shows only the new lines. The whole content is then
validated with the loader the server uses (`bot.content.load_content`); on any error every file
is restored byte for byte (a created file is removed) and InvalidContent names file:line.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.errors import BadRequest, ConfigError, Conflict, ValidationFailed
from bot.flows.responses import placeholders
from bot.flows.validate import FAN_FIELDS

NLU_FILE, DOMAIN_FILE, FLOWS_FILE = "data/taught.yml", "domain/taught.yml", "flows/taught.yml"
HEADERS = {
    NLU_FILE: '# FAQs taught from the inbox (`fanline teach`, "make this an FAQ"), from fans\'\n'
    "# texts scrubbed of numbers, emails and names. Edit freely: new ones are appended below.\n"
    'version: "3.1"\n\nnlu:\n',
    DOMAIN_FILE: "# Answers of FAQs taught from the inbox (flows/taught.yml says when they are sent).\n"
    "# Edit freely: new ones are appended below.\n\nresponses:\n",
    FLOWS_FILE: "# One flow per FAQ taught from the inbox: its intent, its answer (domain/taught.yml).\n"
    "# Edit freely: new ones are appended below.\n\nflows:\n",
}
TOP_KEY = {NLU_FILE: "nlu", DOMAIN_FILE: "responses", FLOWS_FILE: "flows"}
INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
RESERVED = {"out_of_scope", "nlu_fallback", "greet", "stop", "start", "help"}
MAX_EXAMPLES = 200
_LOCK = threading.Lock()  # one edit at a time in this process; `_editing` adds other processes


class InvalidContent(BadRequest):
    """The edit would break the content; nothing was changed. `problems`: file:line each."""

    def __init__(self, problems: list[ConfigError]):
        self.problems = problems
        errors = [p for p in problems if not p.warning]
        super().__init__("the taught FAQ would make the content invalid; nothing was changed:\n"
                         + "\n".join(f"  {p}" for p in errors))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Written:
    files: tuple[str, ...]  # project-relative paths changed
    examples: tuple[str, ...]  # the example texts written (known ones are left out)


@dataclass(frozen=True, slots=True)
class Existing:
    """The names a project's content already uses."""

    intents: frozenset[str]
    responses: frozenset[str]
    flows: frozenset[str]
    slots: frozenset[str]
    examples: frozenset[str]  # every intent's example texts, lowercased


def check_intent_name(intent: str) -> str:
    if not INTENT_NAME.match(intent or ""):
        raise BadRequest(
            "an intent name is 2-63 lowercase letters, digits and '_', starting with a letter "
            "(e.g. ask_denver_weather)"
        )
    if intent in RESERVED:
        raise BadRequest(f"{intent!r} is a reserved intent name")
    return intent


def add_faq(
    project_dir: Path,
    intent: str,
    response: str,
    examples: Iterable[str],
    *,
    actions: set[str] | None = None,
    max_segments: int = 3,
    label: str | None = None,
    broadcast: str | None = None,
) -> Written:
    """Append the intent, its response and its flow. `broadcast`: the text of the broadcast
    whose replies taught it, kept in the response's `metadata` (the answer knows its news)."""
    check_intent_name(intent)
    response = (response or "").strip()
    if not response:
        raise BadRequest("the response is empty")
    texts = clean_examples(examples)
    with _editing(project_dir):
        known = existing_names(project_dir, actions, max_segments)
        # a text the bot already knows as another intent's example would teach a contradiction
        texts = [t for t in texts if t.lower() not in known.examples]
        if len(texts) < 2:
            raise BadRequest("an FAQ needs at least 2 distinct example texts the bot does not "
                             f"know yet; {len(texts)} left")  # fmt: skip
        utter, flow_id = f"utter_{intent}", f"taught_{intent}"
        if intent in known.intents:
            raise Conflict(f"intent {intent!r} exists already: add examples to it instead")
        if utter in known.responses or flow_id in known.flows:
            raise Conflict(f"{utter!r} or flow {flow_id!r} exists already")
        unknown = placeholders(response) - known.slots - FAN_FIELDS
        if unknown:
            raise BadRequest(
                f"unknown placeholder(s) in the response: {', '.join(sorted(unknown))} "
                f"(known: slots and fan fields such as {{first_name}})"
            )
        edits = {
            NLU_FILE: _intent_block(intent, texts),
            DOMAIN_FILE: f"  {utter}:\n    - text: {_quoted(response)}\n"
            + (f"      metadata:\n        broadcast: {_quoted(broadcast)}\n" if broadcast else ""),
            FLOWS_FILE: _flow_block(flow_id, intent, utter, label or texts[0]),
        }
        return Written(_apply(project_dir, edits, actions, max_segments), tuple(texts))


def add_examples(
    project_dir: Path,
    intent: str,
    examples: Iterable[str],
    *,
    actions: set[str] | None = None,
    max_segments: int = 3,
) -> tuple[str, ...]:
    """Add examples to an intent: into its block in data/taught.yml when it has one there,
    else as a new block for it at the end of that file. () when all are known already."""
    texts = clean_examples(examples)
    if not texts:
        raise BadRequest("no example text left to add")
    with _editing(project_dir):
        known = existing_names(project_dir, actions, max_segments)
        if intent not in known.intents:
            raise BadRequest(f"unknown intent {intent!r}")
        have = _examples_of(project_dir, intent)
        texts = [t for t in texts if t.lower() not in have]
        if not texts:
            return ()
        path = project_dir / NLU_FILE
        original = path.read_text(encoding="utf-8") if path.is_file() else None
        spot = _block_end(original, intent) if original is not None else None
        if spot is None:
            return _apply(project_dir, {NLU_FILE: _intent_block(intent, texts)}, actions,
                          max_segments)  # fmt: skip
        assert original is not None
        lines = "".join(f"      - {t}\n" for t in texts)
        edited = original[:spot] + lines + original[spot:]
        return _apply(project_dir, {NLU_FILE: edited}, actions, max_segments, whole=True)


def clean_examples(examples: Iterable[str]) -> list[str]:
    """One line each, without Rasa's entity markup characters, distinct (case-insensitive).
    A text with words loses its emoji and other symbols: "where do i park 🙏" teaches parking,
    and with the 🙏 the FAQ learnt to answer a bare "🙏" (issue 15's storm: 0.73 for parking)."""
    seen: dict[str, str] = {}
    for text in examples:
        one = re.sub(r"\s+", " ", _words_only(str(text or ""))).strip()
        one = one.replace("[", "(").replace("]", ")").replace("{", "(").replace("}", ")")
        one = one.lstrip("-#>|!&*%@` ").strip()
        if one and one.lower() not in seen:
            seen[one.lower()] = one
    return list(seen.values())[:MAX_EXAMPLES]


def _words_only(text: str) -> str:
    """The text without symbols (Unicode So, and the marks that join them) when it has a letter."""
    if text.isascii() or not any(c.isalpha() for c in text):
        return text
    return "".join(" " if unicodedata.category(c) == "So" or c in _JOINERS else c for c in text)


_JOINERS = {"\ufe0e", "\ufe0f", "\u200d", "\u20e3"} | {chr(c) for c in range(0x1F3FB, 0x1F400)}


def existing_names(project_dir: Path, actions: set[str] | None, max_segments: int) -> Existing:
    """What the content defines now; content that does not load cannot be taught into."""
    from bot.content import load_content

    try:
        content = load_content(project_dir, actions=actions, max_segments=max_segments)
    except ValidationFailed as exc:
        raise InvalidContent(exc.problems) from None
    return Existing(
        frozenset(content.intents) | {i.split("/")[0] for i in content.intents},
        frozenset(content.domain.responses),
        frozenset(content.flows),
        frozenset(content.domain.slots),
        frozenset(e.text.strip().lower() for e in getattr(content.nlu_data, "examples", ())),
    )


@contextlib.contextmanager
def _editing(project_dir: Path) -> Iterator[None]:
    """One edit of a project's files at a time, across threads and processes (the server's
    workers, `fanline teach`): each reads the files as the previous edit left them. The lock
    file lives outside the project, so it never shows in `git status`."""
    key = hashlib.sha256(str(project_dir.resolve()).encode()).hexdigest()[:16]
    with _LOCK, open(Path(tempfile.gettempdir()) / f"fanline-teach-{key}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ---- text edits ----------------------------------------------------------------------------


def _intent_block(intent: str, texts: list[str]) -> str:
    return f"\n  - intent: {intent}\n    examples: |\n" + "".join(f"      - {t}\n" for t in texts)


def _flow_block(flow_id: str, intent: str, utter: str, description: str) -> str:
    return (
        f"\n  {flow_id}:\n"
        f"    description: {_quoted('Taught FAQ: ' + description[:100])}\n"
        f"    nlu_trigger:\n"
        f"      - intent:\n"
        f"          name: {intent}\n"
        f"    steps:\n"
        f"      - action: {utter}\n"
    )


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON's escapes are YAML's)."""
    return json.dumps(text, ensure_ascii=False)


def _examples_of(project_dir: Path, intent: str) -> set[str]:
    from bot.nlu.data import load_training_data

    data = load_training_data([project_dir / "data"])
    return {e.text.strip().lower() for e in data.examples if e.intent.split("/")[0] == intent}


def _block_end(text: str, intent: str) -> int | None:
    """Offset just after the last example line of `intent`'s block, if the file has one in
    the shape this module writes (`- intent: X` then `examples: |` lines)."""
    lines = text.splitlines(keepends=True)
    offset, start = 0, None
    for i, line in enumerate(lines):
        if re.match(rf"^\s*-\s*intent:\s*{re.escape(intent)}\s*$", line):
            start = i
            break
        offset += len(line)
    if start is None:
        return None
    end = offset + len(lines[start])
    indent = None
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if re.match(r"^\s*examples:\s*\|", line):
            end += len(line)
            continue
        if stripped.startswith("- ") and (indent is None or _indent(line) == indent):
            if indent is None:
                indent = _indent(line)
            end += len(line)
            continue
        break
    return end if indent is not None else None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _apply(
    project_dir: Path,
    edits: dict[str, str],
    actions: set[str] | None,
    max_segments: int,
    *,
    whole: bool = False,
) -> tuple[str, ...]:
    """Append each edit (or, `whole`, write it as the file's new text), validate, or restore."""
    from bot.content import load_content

    saved: dict[Path, tuple[bytes, int] | None] = {}
    made_dirs: list[Path] = []
    try:
        for rel, text in edits.items():
            path = project_dir / rel
            st = path.stat() if path.is_file() else None
            saved[path] = (path.read_bytes(), st.st_mtime_ns) if st else None
            if not path.parent.is_dir():
                made_dirs.append(path.parent)
                path.parent.mkdir(parents=True)
            old = saved[path][0].decode("utf-8") if saved[path] else HEADERS[rel]
            new = text if whole else _appended(old, text, rel)
            path.write_text(new, encoding="utf-8")
        load_content(project_dir, actions=actions, max_segments=max_segments)
    except ValidationFailed as exc:
        _restore(saved, made_dirs)
        raise InvalidContent(exc.problems) from None
    except BaseException:
        _restore(saved, made_dirs)
        raise
    return tuple(edits)


def _appended(old: str, block: str, rel: str) -> str:
    key = TOP_KEY[rel]
    tops = re.findall(r"^([A-Za-z_][\w-]*):", old, flags=re.MULTILINE)
    if not tops or tops[-1] != key:
        raise BadRequest(f"{rel}: `{key}:` must be the file's last top-level key to add to it")
    if not re.search(rf"^{key}:\s*(#.*)?$", old, flags=re.MULTILINE):
        raise BadRequest(f"{rel}: `{key}:` must be a block (its items on the lines below)")
    if not old.endswith("\n"):
        old += "\n"
    if re.search(rf"^{key}:\s*(#.*)?\n\Z", old, flags=re.MULTILINE):
        block = block.lstrip("\n")  # the first item right under the key
    # the file's own indentation of its items (ours is 2: `  - intent:`, `  utter_x:`)
    first = re.search(rf"^{key}:[^\n]*\n(?:[ \t]*(?:#[^\n]*)?\n)*( *)\S", old, flags=re.MULTILINE)
    shift = len(first.group(1)) - 2 if first else 0
    if shift:
        block = "".join(
            (line[2:] if shift < 0 else " " * shift + line) if line.strip() else line
            for line in block.splitlines(keepends=True)
        )
    return old + block


def _restore(saved: dict[Path, tuple[bytes, int] | None], made_dirs: list[Path]) -> None:
    for path, before in saved.items():
        if before is None:
            path.unlink(missing_ok=True)
            continue
        path.write_bytes(before[0])
        os.utime(path, ns=(before[1], before[1]))
    for folder in reversed(made_dirs):
        with contextlib.suppress(OSError):  # not empty: someone else's files
            folder.rmdir()
