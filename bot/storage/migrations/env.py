"""Alembic environment: migrations run on the connection `bot.storage.db.upgrade` hands over."""

from alembic import context

import bot.storage.broadcast_tables  # noqa: F401  (registers its tables on metadata)
import bot.storage.engagement_tables  # noqa: F401
import bot.storage.inbox_tables  # noqa: F401
import bot.storage.topic_tables  # noqa: F401
from bot.storage.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # `alembic` CLI use: build an engine from the configured URL
    from bot.storage.db import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch ALTERs
)
with context.begin_transaction():
    context.run_migrations()
