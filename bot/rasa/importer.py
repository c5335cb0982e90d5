"""`fanline import rasa RASA_DIR NEW_DIR`: a Rasa project becomes a new Fanline fan line.

Content time only, run once by a team moving in. NLU data, responses and config.yml are read by
Fanline as Rasa wrote them and are copied; the domain is merged into one `domain.yml` with
Rasa-only slot details adjusted; forms, rules and stories become `flows/rasa.yml`
(`bot.rasa.convert`); test stories become `tests/conversations/`; custom actions are copied
and `action_endpoint` kept, so a rasa-sdk action server keeps serving them. Every part ends
up in the report as converted, approximated or left out, with file and line.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError, Location
from bot.flows.loader import read_yaml
from bot.rasa.convert import convert
from bot.rasa.report import ImportReport
from bot.rasa.stories import Story, is_test_story, read_stories, to_test_case

SLOT_TYPES = {"text", "bool", "float", "categorical", "any"}
HEADER = "# Made by `fanline import rasa` from {src}. Edit freely: this is now Fanline content.\n"


def import_project(rasa_dir: Path, new_dir: Path) -> ImportReport:
    """Write the new fan line into `new_dir` (which must be new or empty) and report."""
    _check_dirs(rasa_dir, new_dir)
    report = ImportReport()
    domain = _merged_domain(rasa_dir, report)
    training, tests = _stories(rasa_dir)
    converted = convert(training, domain)
    report.converted += converted.report.converted
    report.approximated += converted.report.approximated
    report.left_out += converted.report.left_out
    new_dir.mkdir(parents=True, exist_ok=True)
    _copy_tree(rasa_dir / "data", new_dir / "data")
    report.converted.append(
        "data/: NLU examples, synonyms, regexes, lookups and responses, as written"
    )
    _write_domain(new_dir / "domain.yml", domain, converted.slots, report, rasa_dir)
    _write(new_dir / "flows" / "rasa.yml", {"flows": converted.flows}, rasa_dir)
    _write_tests(new_dir, tests, set(domain.get("forms") or {}), report, rasa_dir)
    _config(rasa_dir, new_dir, report)
    _endpoints(rasa_dir, new_dir, report)
    _credentials(rasa_dir, new_dir, report)
    if (rasa_dir / "actions").is_dir():
        _copy_tree(rasa_dir / "actions", new_dir / "actions")
        report.converted.append(
            "actions/: custom actions (rasa-sdk), run in-process or on their action server"
        )
    elif (rasa_dir / "actions.py").is_file():
        _single_module(rasa_dir, new_dir, report)
    if (new_dir / "actions").is_dir():
        _sibling_packages(rasa_dir, new_dir, report)
        _action_files(rasa_dir, new_dir, report)
        _requirements(rasa_dir, new_dir, report)
    _unimplemented_actions(new_dir, domain, report)
    return report


# `def name(self) -> Text: return "action_x"` in rasa-sdk actions (read, never imported)
_ACTION_NAME = re.compile(r"def\s+name\s*\(\s*self\s*\)[^:]*:\s*(?:#[^\n]*\s*|\"\"\"[^\"]*\"\"\"\s*)*"
                          r"return\s+[\"']([\w-]+)[\"']")  # fmt: skip
_IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", re.MULTILINE)
# Rasa's own actions: Fanline does each itself (bot.rasa.convert.BUILTIN_ACTIONS)
RASA_ACTIONS = {"action_listen", "action_restart", "action_session_start", "action_default_fallback",
                "action_deactivate_loop", "action_revert_fallback_events", "action_back",
                "action_default_ask_affirmation", "action_default_ask_rephrase",
                "action_two_stage_fallback", "action_unlikely_intent", "action_extract_slots"}  # fmt: skip


def implemented_actions(actions_dir: Path) -> set[str]:
    """Names the Python files under `actions_dir` return from `name()`, read as text."""
    found: set[str] = set()
    for path in sorted(actions_dir.rglob("*.py")) if actions_dir.is_dir() else []:
        found.update(_ACTION_NAME.findall(path.read_text(encoding="utf-8", errors="replace")))
    return found


def _unimplemented_actions(new_dir: Path, domain: dict, report: ImportReport) -> None:
    """Domain actions no code defines: in Rasa they fail at run time; here the report says so."""
    done = implemented_actions(new_dir / "actions") | RASA_ACTIONS | set(domain.get("forms") or {})
    lines = getattr(domain.get("actions"), "item_lines", None) or []
    for index, name in enumerate(domain.get("actions") or []):
        name = next(iter(name)) if isinstance(name, dict) else str(name)
        if name.startswith("utter_") or name in done:
            continue
        line = f":{lines[index]}" if index < len(lines) and lines[index] else ""
        report.left_out.append(f"domain actions{line}: {name}: no code in actions/ implements it "
                               "(write it, or remove it from the domain)")  # fmt: skip


def _sibling_packages(rasa_dir: Path, new_dir: Path, report: ImportReport) -> None:
    """Folders beside actions/ that the actions import (`from utils import x`): copied too."""
    names: set[str] = set()
    for path in (new_dir / "actions").rglob("*.py"):
        names.update(_IMPORT.findall(path.read_text(encoding="utf-8", errors="replace")))
    for name in sorted(names - {"actions"}):
        if (rasa_dir / name).is_dir() or (rasa_dir / f"{name}.py").is_file():
            src = rasa_dir / name if (rasa_dir / name).is_dir() else rasa_dir / f"{name}.py"
            if src.is_dir():
                _copy_tree(src, new_dir / name)
            else:
                shutil.copy2(src, new_dir / src.name)
            report.converted.append(f"{src.name}: imported by actions/, copied beside it")


def _single_module(rasa_dir: Path, new_dir: Path, report: ImportReport) -> None:
    """Rasa's default before the actions/ package: one top-level actions.py. It becomes
    actions/actions.py in a package, which the runner and `python -m rasa_sdk --actions
    actions` both load (open() paths stay relative to the project folder, as before)."""
    (new_dir / "actions").mkdir(parents=True, exist_ok=True)
    (new_dir / "actions" / "__init__.py").write_text("")
    shutil.copy2(rasa_dir / "actions.py", new_dir / "actions" / "actions.py")
    report.converted.append("actions.py: custom actions (rasa-sdk) -> actions/actions.py, run "
                            "in-process or on their action server")  # fmt: skip
    if "__file__" in (rasa_dir / "actions.py").read_text(encoding="utf-8", errors="replace"):
        report.left_out.append("actions.py: uses __file__, which is now one folder down "
                               "(actions/actions.py): check the paths it builds from it")  # fmt: skip


# a string literal naming a relative file with an extension: 'data/prices.csv', "faq.json"
_FILE_LITERAL = re.compile(r"[\"']((?:[\w.-]+/)*[\w-][\w.-]*\.(?:csv|json|ya?ml|txt|tsv|db|sqlite|pkl|xlsx?|md))[\"']")  # fmt: skip


def _action_files(rasa_dir: Path, new_dir: Path, report: ImportReport) -> None:
    """Files the actions open by a path relative to the project folder (where Rasa's action
    server ran): copied when they exist and are not copied yet, reported when missing."""
    named: set[str] = set()
    for path in (new_dir / "actions").rglob("*.py"):
        named.update(_FILE_LITERAL.findall(path.read_text(encoding="utf-8", errors="replace")))
    for name in sorted(named):
        src = rasa_dir / name
        if name.startswith("..") or (new_dir / name).exists():
            continue
        if src.is_file():
            (new_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, new_dir / name)
            report.converted.append(f"{name}: read by the custom actions, copied")
        elif not (rasa_dir / "actions" / name).exists():
            report.left_out.append(f"{name}: named by the custom actions, not in the project "
                                   "(put it there, or check the action)")  # fmt: skip


def _requirements(rasa_dir: Path, new_dir: Path, report: ImportReport) -> None:
    """What the action server installs (`pip install -r`): copied, and named in the report."""
    for src in sorted(rasa_dir.glob("*requirements*.txt")):
        shutil.copy2(src, new_dir / src.name)
        report.converted.append(f"{src.name}: copied (`pip install -r {src.name}` where the "
                                "actions run)")  # fmt: skip


# Rasa projects' actions may call slow services (financial-demo's took 6-8 s)
ACTION_TIMEOUT = "\nfanline:\n  action_timeout_ms: 30000  # a custom action's whole call\n"


def _check_dirs(rasa_dir: Path, new_dir: Path) -> None:
    if not (rasa_dir / "domain.yml").is_file() and not (rasa_dir / "domain").is_dir():
        raise ConfigError("not a Rasa project: no domain.yml or domain/", Location(str(rasa_dir)))
    if new_dir.exists() and any(new_dir.iterdir()):
        raise ConfigError(f"{new_dir} exists and is not empty")


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in {".yml", ".yaml"} and p.is_file())


def _merged_domain(rasa_dir: Path, report: ImportReport) -> dict[str, Any]:
    files = [rasa_dir / "domain.yml"] if (rasa_dir / "domain.yml").is_file() else []
    files += _yaml_files(rasa_dir / "domain")
    merged: dict[str, Any] = {}
    for path in files:
        data = read_yaml(path) or {}
        for key, value in data.items():
            if isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
            elif isinstance(value, list):
                merged.setdefault(key, []).extend(v for v in value if v not in merged.get(key, []))
            else:
                merged.setdefault(key, value)
    if len(files) > 1:
        report.converted.append(f"domain: {len(files)} files merged into domain.yml")
    return merged


def _stories(rasa_dir: Path) -> tuple[list[Story], list[Story]]:
    training = [s for p in _yaml_files(rasa_dir / "data") for s in read_stories(p)]
    tests = [s for p in _yaml_files(rasa_dir / "tests") for s in read_stories(p)]
    # a test story may send only intents (Rasa sends them as they are): payloads here
    return training, [
        s for s in tests if is_test_story(s) or any(t.kind == "intent" for t in s.steps)
    ]


def _write_domain(
    path: Path, domain: dict, extra_slots: dict, report: ImportReport, src: Path
) -> None:
    slots = {}
    for name, spec in (domain.get("slots") or {}).items():
        slots[name] = _slot(name, dict(spec or {}), report)
    slots.update(extra_slots)
    out = {"version": "3.1"}
    for key in ("intents", "entities"):
        if domain.get(key):
            out[key] = domain[key]
    out["slots"] = slots
    out["responses"] = _without_empty_variants(domain.get("responses") or {}, report)
    _compliance_responses(out["responses"], _line_name(src), report)
    for key in ("actions", "forms", "session_config", "e2e_actions", "config"):
        if domain.get(key):
            out[key] = domain[key]
    replies = [name for name in extra_slots if name.startswith("rasa_reply_")]
    if replies:
        report.approximated.append(f"domain: slots {', '.join(replies)} hold the fan's answer "
                                   "at a story's later turns (cleared when the flow ends)")  # fmt: skip
    _write(path, out, src)


def _without_empty_variants(responses: dict, report: ImportReport) -> dict:
    """Rasa allows `- text: ''` (sends nothing); an SMS cannot be empty, and Fanline's validate
    refuses such a variant in a hand-written domain, so the importer drops it and says so."""
    out = {}
    for name, variants in responses.items():
        if not isinstance(variants, list):
            out[name] = variants
            continue
        lines = getattr(variants, "item_lines", None) or []
        kept, dropped = [], []
        for index, variant in enumerate(variants):
            empty = isinstance(variant, dict) and not variant.get("image")
            if empty and not str(variant.get("text") or "").strip():
                dropped.append(f":{lines[index]}" if index < len(lines) else "")
            else:
                kept.append(variant)
        for line in dropped:
            where = f"domain{line} responses.{name}"
            if kept:
                report.approximated.append(
                    f"{where}: a variant with empty text dropped (an SMS cannot be empty)"
                )
            else:  # kept as it is: validate names it until it gets a text
                report.left_out.append(f"{where}: only empty texts (Rasa sends nothing; an SMS "
                                       "cannot be empty): give it a text or remove its uses")  # fmt: skip
        out[name] = kept or variants
    return out


# What STOP / START / HELP answer (bot.pipeline); carriers want the line's name in each.
COMPLIANCE_RESPONSES = {
    "utter_help": "{line}: texts from {line}. Msg frequency varies. Msg&data rates may apply. "
    "Reply STOP to opt out.",
    "utter_opt_out_confirmed": "You're unsubscribed from {line} texts. No more messages. "
    "Reply START to resubscribe.",
    "utter_resubscribed": "Welcome back! You're resubscribed to {line} texts. Msg frequency "
    "varies. Msg&data rates may apply. Reply HELP for help, STOP to opt out.",
    "utter_ask_opt_out": "Reply STOP to stop all texts from {line}.",
}


def _line_name(src: Path) -> str:
    """The line's name in compliance texts: the Rasa project's folder, in words."""
    words = re.sub(r"[-_]+", " ", src.resolve().name).split()
    return " ".join(w if w.isupper() else w.capitalize() for w in words) or "This line"


def _compliance_responses(responses: dict, line: str, report: ImportReport) -> None:
    for name, text in COMPLIANCE_RESPONSES.items():
        if name in responses:
            if name == "utter_help":
                report.approximated.append(
                    "domain responses.utter_help: the project's own; the HELP keyword answers "
                    "it too (carriers expect the line's name, how often it texts, and STOP)"
                )
            continue
        responses[name] = [{"text": text.format(line=line)}]
        report.converted.append(f"domain responses.{name}: added for STOP / START / HELP "
                                f"(\"{line}\": edit to the line's name)")  # fmt: skip


def _slot(name: str, spec: dict, report: ImportReport) -> dict:
    kind = spec.get("type", "text")
    if kind == "list":
        report.approximated.append(f"domain slots.{name}: type list -> any (one value)")
        spec["type"] = "any"
    elif kind not in SLOT_TYPES:
        report.approximated.append(f"domain slots.{name}: custom type {kind} -> any")
        spec["type"] = "any"
    for key in ("min_value", "max_value"):
        if spec.pop(key, None) is not None:
            report.approximated.append(f"domain slots.{name}: {key} dropped (use `rejections:`)")
    return spec


def _write_tests(
    new_dir: Path, tests: list[Story], forms: set[str], report: ImportReport, src: Path
) -> None:
    by_file: dict[str, list[dict]] = {}
    for story in tests:
        case, notes = to_test_case(story, forms)
        case.pop("_lines", None)
        by_file.setdefault(Path(story.file).stem, []).append(case)
        report.converted.append(f"{story.file}:{story.line}: test story {story.name!r} -> "
                                f"conversation test {case['test_case']}")  # fmt: skip
        report.approximated += notes
    folder = new_dir / "tests" / "conversations"
    folder.mkdir(parents=True, exist_ok=True)
    for stem, cases in by_file.items():
        _write(folder / f"{stem}.yml", {"test_cases": cases}, src)


def _config(rasa_dir: Path, new_dir: Path, report: ImportReport) -> None:
    from bot.nlu.config import read_nlu_config

    source = rasa_dir / "config.yml"
    if not source.is_file():
        (new_dir / "config.yml").write_text("pipeline: default\n")
        return
    shutil.copy2(source, new_dir / "config.yml")
    _calibrated_threshold(new_dir / "config.yml", report)
    has_actions = (rasa_dir / "actions").is_dir() or (rasa_dir / "actions.py").is_file()
    if has_actions and "fanline" not in (read_yaml(source) or {}):
        with (new_dir / "config.yml").open("a", encoding="utf-8") as out:
            out.write(ACTION_TIMEOUT)
        report.converted.append("config.yml: fanline.action_timeout_ms 30000 (Rasa waits for "
                                "custom actions; Fanline's default is 5 s)")  # fmt: skip
    _, problems = read_nlu_config(new_dir / "config.yml")
    report.converted.append("config.yml: copied; Fanline reads Rasa's pipeline (notes below)")
    for p in problems:
        line = f":{p.location.line}" if p.location and p.location.line else ""
        (report.approximated if p.warning else report.left_out).append(
            f"config.yml{line}: {p.message}"
        )


_FALLBACK = re.compile(r"^\s*-?\s*name:\s*[\"']?FallbackClassifier[\"']?\s*(#.*)?$")
_THRESHOLD = re.compile(r"^(\s*-?\s*threshold:\s*)([0-9.]+)(\s*(#.*)?)$")


def _calibrated_threshold(config: Path, report: ImportReport) -> None:
    """A FallbackClassifier's numeric `threshold` becomes `auto` with that number as its
    `max_threshold`. Rasa's number is a cut on DIET's softmax (0.7 in Rasa's own templates);
    Fanline's confidence is calibrated on the project's held-out examples, where the same
    number means another thing (financial-demo: "check earnings", its own example's words,
    fell under 0.7 and went out of scope). As a ceiling it keeps what the author let through
    (restaurant-style 0.3: one-word form answers stay answers). The rest of the file is left
    as written."""
    lines = config.read_text(encoding="utf-8").splitlines(keepends=True)
    inside = False
    for index, line in enumerate(lines):
        if _FALLBACK.match(line):
            inside = True
            continue
        if inside and re.match(r"^\s*-\s", line):
            break  # the next component
        match = _THRESHOLD.match(line.rstrip("\n")) if inside else None
        if match is None:
            continue
        end = "\n" if line.endswith("\n") else ""
        indent = " " * len(re.match(r"^[\s-]*", match.group(1)).group(0))  # type: ignore[union-attr]
        lines[index] = (f"{match.group(1)}auto  # calibrated on held-out examples ...{end}"
                        f"{indent}max_threshold: {match.group(2)}  # ... never above Rasa's "
                        f"threshold (DIET's softmax){end}")  # fmt: skip
        config.write_text("".join(lines), encoding="utf-8")
        report.approximated.append(
            f"config.yml:{index + 1}: FallbackClassifier threshold {match.group(2)} -> auto, "
            f"max_threshold {match.group(2)} (Rasa's number is on DIET's softmax; Fanline "
            "calibrates on held-out examples, and is never stricter than the project asked)"
        )
        return


def _endpoints(rasa_dir: Path, new_dir: Path, report: ImportReport) -> None:
    source = rasa_dir / "endpoints.yml"
    data = (read_yaml(source) or {}) if source.is_file() else {}
    out: dict[str, Any] = {"tracker_store": {"type": "sql", "url": "${FANLINE_DATABASE_URL:-}"}}
    for key in ("action_endpoint", "nlu"):
        if isinstance(data.get(key), dict) and data[key].get("url"):
            out[key] = {k: v for k, v in data[key].items()}
            report.converted.append(f"endpoints.yml: {key} {data[key]['url']} kept")
    for key in sorted(set(data) - {"action_endpoint", "nlu"}):
        report.left_out.append(f"endpoints.yml: {key} (Fanline keeps conversations in its SQL "
                               "database; FANLINE_DATABASE_URL)" if key == "tracker_store" else
                               f"endpoints.yml: {key} (no Fanline counterpart)")  # fmt: skip
    _write(new_dir / "endpoints.yml", out, rasa_dir)


def _credentials(rasa_dir: Path, new_dir: Path, report: ImportReport) -> None:
    source = rasa_dir / "credentials.yml"
    data = (read_yaml(source) or {}) if source.is_file() else {}
    twilio = {"account_sid": "${TWILIO_ACCOUNT_SID:-}", "auth_token": "${TWILIO_AUTH_TOKEN:-}",
              "twilio_number": "${TWILIO_NUMBER:-}"}  # fmt: skip
    if isinstance(data.get("twilio"), dict):
        report.converted.append("credentials.yml: twilio channel (values from the environment)")
    for channel in sorted(set(data) - {"twilio"}):
        report.left_out.append(
            f"credentials.yml: channel {channel} (Fanline speaks SMS through Twilio)"
        )
    _write(new_dir / "credentials.yml", {"twilio": twilio}, rasa_dir)


def _copy_tree(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _write(path: Path, data: Any, src: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(_plain(data), sort_keys=False, allow_unicode=True, width=100)
    path.write_text(HEADER.format(src=src.name) + text, encoding="utf-8")


def _plain(value: Any) -> Any:
    """MarkedDict / MarkedList (with line numbers) -> plain dicts and lists for yaml.safe_dump."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
