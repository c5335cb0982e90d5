"""What each `fanline run --role` runs: the background jobs, and which of them are singletons.

- `web`: Twilio webhooks and delivery callbacks, the inbox and its API, signups and links,
  `/simulator` (local mode); in the background only the content reloader.
- `worker`: the outbox sender, the broadcast scheduler, the timed-flow scheduler, the
  escalation timer, the topic and answer sweeps, the pass over texts a crash left
  unanswered, the retraining a teach asked for, and the content reloader; over HTTP only
  `/healthz`, `/readyz` and `/metrics`.
- `all` (the default): both, in one process (what SQLite allows).

Singleton jobs hold a lease (`bot.leases`): one process runs each at a time, whatever the
number of processes. The sender runs in every worker (rows are reserved in batches, claims
are conditional) and the reloader in every process (each holds its own copy of the content).
"""

from __future__ import annotations

from bot.errors import ConfigError, Location

ROLES = ("all", "web", "worker")
# job name -> (roles that run it, singleton)
JOBS: dict[str, tuple[tuple[str, ...], bool]] = {
    "outbox-sender": (("all", "worker"), False),
    "content-reloader": (("all", "web", "worker"), False),
    "broadcasts": (("all", "worker"), True),
    "unanswered": (("all", "worker"), True),
    "escalation-timer": (("all", "worker"), True),
    "topic-sweep": (("all", "worker"), True),
    "answer-sweep": (("all", "worker"), True),
    "timed-flows": (("all", "worker"), True),
    "retrain": (("all", "worker"), True),
}


def jobs_for(role: str) -> list[tuple[str, bool]]:
    """(job name, singleton) for every job the role runs, in start order."""
    return [(name, single) for name, (roles, single) in JOBS.items() if role in roles]


def serves_fans(role: str) -> bool:
    """Whether the role answers webhooks, the inbox, signups and the simulator."""
    return role in ("all", "web")


def check_role(role: str, database_url: str, where: Location | None = None) -> None:
    """A role must be known; `web` and `worker` apart need PostgreSQL."""
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}: use all, web or worker", where)
    if role != "all" and database_url.startswith("sqlite"):
        # a web and a worker process on one SQLite file would answer one fan in two processes
        # at once: per-fan order across processes needs PostgreSQL's advisory locks
        raise ConfigError(
            f"--role {role} runs beside other processes, which needs PostgreSQL: set "
            "FANLINE_DATABASE_URL (or tracker_store.url in endpoints.yml) to a postgresql:// "
            "URL, or run one process with --role all (the default) on SQLite",
            where,
        )
