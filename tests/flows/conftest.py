"""Fixtures for flow tests: content written to a temporary directory and loaded for real."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flow_helpers import DOMAIN, write

from bot.flows import FlowEngine, load_domain, load_flows


@pytest.fixture
def make_engine(tmp_path: Path) -> Callable[..., FlowEngine]:
    def make(flows_yaml: str, domain_yaml: str = DOMAIN, **kwargs: object) -> FlowEngine:
        flows = load_flows([write(tmp_path, "flows.yml", flows_yaml)])
        domain = load_domain([write(tmp_path, "domain.yml", domain_yaml)])
        return FlowEngine(flows, domain, **kwargs)  # type: ignore[arg-type]

    return make
