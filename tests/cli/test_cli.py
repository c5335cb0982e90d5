"""The `fanline` command as a content editor meets it: clear errors with file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.cli import main
from bot.errors import ValidationFailed
from bot.runtime import Runtime
from bot.settings import load_settings
from tests.conftest import ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh fan line made by `fanline init`, as a new team would start."""
    target = tmp_path / "line"
    assert main(["init", str(target)]) == 0
    if (ROOT / "models").is_dir():  # spare the tests a retrain
        shutil.copytree(ROOT / "models", target / "models")
    return target


def test_init_copies_a_line_that_validates(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--project", str(project), "validate"]) == 0
    assert "ok:" in capsys.readouterr().out
    for name in ("flows", "domain.yml", "data", "actions", "segments.yml", "tests/conversations"):
        assert (project / name).exists()


def test_init_refuses_a_folder_that_is_not_empty(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(project)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_broken_yaml_names_file_and_line_without_a_traceback(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = project / "flows" / "faq.yml"
    lines = flows.read_text().splitlines()
    lines.insert(5, "    steps: [unclosed")
    flows.write_text("\n".join(lines) + "\n")
    assert main(["--project", str(project), "validate"]) == 2
    err = capsys.readouterr().err
    assert "faq.yml:" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "bad"),
    [("flows/faq.yml", b"caf\xe9"), ("domain.yml", b"caf\xe9"), ("data/nlu.yml", b"\xff\xfe"),
     ("flows/faq.yml", b"nul\x00here"), ("data/nlu.yml", b"bell\x07")],
)  # fmt: skip
def test_bytes_that_are_not_text_name_file_and_line_without_a_traceback(
    project: Path, capsys: pytest.CaptureFixture[str], name: str, bad: bytes
) -> None:
    path = project / name
    lines = path.read_bytes().split(b"\n")
    lines[3] += b"  # " + bad  # a comment on line 4: only the bytes themselves are wrong
    path.write_bytes(b"\n".join(lines))
    assert main(["--project", str(project), "validate"]) == 2
    err = capsys.readouterr().err
    assert f"{name.split('/')[-1]}:4" in err and "Traceback" not in err, err


def test_an_unknown_response_is_an_error_at_its_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = project / "flows" / "keywords.yml"
    text = flows.read_text()
    assert "utter_tour_dates" in text
    flows.write_text(text.replace("utter_tour_dates", "utter_tour_datez", 1))
    line = next(
        i for i, ln in enumerate(flows.read_text().splitlines(), 1) if "utter_tour_datez" in ln
    )
    assert main(["--project", str(project), "validate"]) == 2
    err = capsys.readouterr().err
    assert f"keywords.yml:{line}" in err and "utter_tour_datez" in err


async def test_the_server_refuses_to_start_on_invalid_content(
    project: Path, tmp_path: Path
) -> None:
    (project / "domain.yml").write_text("responses:\n  utter_x: [\n")
    settings = load_settings(project, env={"FANLINE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    with pytest.raises(ValidationFailed) as caught:
        await Runtime.start(settings)
    assert any("domain.yml" in str(p) for p in caught.value.problems)


def test_conversation_tests_report_failures_with_their_location(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = project / "tests" / "conversations" / "smoke.yml"
    case.write_text(
        "test_cases:\n  - test_case: wrong_on_purpose\n    steps:\n"
        "      - user: TOUR\n      - utter: utter_merch\n"
    )
    assert main(["--project", str(project), "-q", "test", str(case)]) == 1
    out = capsys.readouterr().out
    assert "FAILED wrong_on_purpose" in out and "smoke.yml:5" in out and "0 passed, 1 failed" in out


def test_several_workers_on_sqlite_are_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--project", str(project), "run", "--workers", "2"]) == 2
    assert "PostgreSQL" in capsys.readouterr().err
