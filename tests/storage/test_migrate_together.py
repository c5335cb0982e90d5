"""Processes starting together on one PostgreSQL database migrate one by one, never racing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.ops import head_revision, schema_revision
from bot.storage.db import Database, scratch_schema
from tests.conftest import PG_URL, ROOT

MIGRATE = "import sys; from bot.storage.db import Database; Database(sys.argv[1]).migrate()"


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="FANLINE_TEST_DATABASE_URL is not set")
def test_several_processes_migrate_a_new_database_at_once() -> None:
    with scratch_schema(PG_URL or "", "mig") as url:
        procs = [subprocess.Popen([sys.executable, "-c", MIGRATE, url], cwd=ROOT,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]  # fmt: skip
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            # without the lock: "relation ... already exists" or a duplicate alembic_version
            assert proc.returncode == 0, err[-2000:]
        db = Database(url)
        try:
            with db.engine.connect() as conn:
                assert schema_revision(conn) == head_revision()
        finally:
            db.close()
