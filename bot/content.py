"""A fan line's content (flows, domain, NLU data), loaded and validated once at start-up.

The server refuses to start on invalid content; `fanline validate` prints the same problems.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, Location, ValidationFailed
from bot.flows import Domain, Flow, load_domain, load_flows, validate_content
from bot.flows.reactions import Reactions, load_reactions


@dataclass(frozen=True, slots=True)
class Content:
    project_dir: Path
    flows: dict[str, Flow]
    domain: Domain
    nlu_data: Any  # bot.nlu.TrainingData
    warnings: tuple[ConfigError, ...] = ()
    reactions: Reactions | None = None  # emoji/filler map: package default + reactions.yml

    @property
    def intents(self) -> set[str]:
        return set(self.nlu_data.intents) if self.nlu_data is not None else set()


def content_paths(project_dir: Path) -> dict[str, list[Path]]:
    """Where a project keeps its content: Rasa's layout plus `flows/`."""
    domain = [p for p in (project_dir / "domain.yml", project_dir / "domain.yaml") if p.exists()]
    return {
        "flows": sorted((project_dir / "flows").rglob("*.yml")),
        "domain": domain + _yaml_files(project_dir / "domain"),  # Rasa: a folder of files too
        "nlu": _yaml_files(project_dir / "data"),
    }


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in {".yml", ".yaml"} and p.is_file())


def _config_problems(project_dir: Path) -> list[ConfigError]:
    """The NLU pipeline of config.yml, every problem at once (train would refuse the same)."""
    from bot.nlu.config import read_nlu_config

    path = project_dir / "config.yml"
    return read_nlu_config(path)[1] if path.is_file() else []


def _rasa_problems(flows: dict[str, Flow], domain: Domain, nlu_data: Any) -> list[ConfigError]:
    """Rasa content that loads but would not work: answerless retrieval intents, bare forms."""
    from bot.nlu.data import missing_retrieval_responses

    problems = missing_retrieval_responses(nlu_data, set(domain.responses))
    collected = {s.collect for f in flows.values() for s in f.steps if s.is_collect}
    for name, form in (domain.forms or {}).items():
        slots = list((form or {}).get("required_slots") or []) if isinstance(form, dict) else []
        if not set(slots) <= collected:
            problems.append(ConfigError(
                f"form {name!r} is read but not run: flows collect slots "
                "(`fanline import rasa` turns forms into collect flows)",
                Location(getattr(form, "file", "domain.yml"), getattr(form, "line", None),
                         f"forms.{name}"),
                warning=True,
            ))  # fmt: skip
    return problems


def load_content(
    project_dir: Path,
    *,
    actions: set[str] | None = None,
    max_segments: int = 3,
) -> Content:
    """Load and cross-check everything; raise ValidationFailed listing every error."""
    from bot.nlu.data import load_training_data

    paths = content_paths(project_dir)
    problems: list[ConfigError] = []
    flows: dict[str, Flow] = {}
    domain: Domain | None = None
    nlu_data = None
    for kind, loader in (
        ("flows", load_flows),
        ("domain", lambda p: load_domain(p, response_files=paths["nlu"])),
        ("nlu", load_training_data),
    ):
        try:
            result = loader(paths[kind])
        except ValidationFailed as exc:
            problems.extend(exc.problems)
            continue
        except ConfigError as exc:
            problems.append(exc)
            continue
        if kind == "flows":
            flows = result
        elif kind == "domain":
            domain = result
        else:
            nlu_data = result
    reactions = None
    try:
        reactions = load_reactions(project_dir / "reactions.yml")
    except ConfigError as exc:
        problems.append(exc)
    if not paths["flows"]:
        problems.append(ConfigError("no flow files found", Location(str(project_dir / "flows"))))
    if domain is not None and reactions is not None:
        problems.extend(reactions.missing_replies(set(domain.responses)))
    if domain is not None and not problems:
        problems.extend(
            validate_content(
                flows,
                domain,
                intents=set(nlu_data.intents) if nlu_data is not None else None,
                actions=actions,
                max_segments=max_segments,
            )
        )
    problems += _config_problems(project_dir)
    if domain is not None and nlu_data is not None:
        problems += _rasa_problems(flows, domain, nlu_data)
    errors = [p for p in problems if not p.warning]
    if errors:
        raise ValidationFailed(problems)
    assert domain is not None
    warnings = tuple(p for p in problems if p.warning)
    return Content(project_dir, flows, domain, nlu_data, warnings, reactions)
