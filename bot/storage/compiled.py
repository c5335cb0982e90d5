"""Hot statements compiled once per dialect and run on the driver's cursor (the turn's storage).

SQLAlchemy Core spends most of a small statement's time around the driver (execution context,
cache lookup, parameter and result processing: about 70 % of a turn's storage when profiled);
the SQL and the type processors it uses never change for a statement built once. A `Compiled`
keeps them and runs the statement on the unit of work's own DBAPI connection, inside its
transaction, with SQLAlchemy's own bind and result processors (so values are stored and read
exactly as through `Connection.execute`) and its exception types.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement

Params = Mapping[str, Any]
_Fill = Callable[[Params], Any]


class Compiled:
    """One statement for one dialect: SQL text, how to fill its parameters, how to read its rows."""

    __slots__ = ("sql", "_dialect", "_fills", "_positional", "_row", "_readers")

    def __init__(self, statement: ClauseElement, dialect: Dialect):
        compiled = statement.compile(dialect=dialect)
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError("expanding or literal-execute parameters are not supported here")
        self.sql = compiled.string
        self._dialect = dialect
        self._positional = dialect.positional
        processors = compiled._bind_processors
        defaults = {c.key: c for c in (*compiled.insert_prefetch, *compiled.update_prefetch)}
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        order = list(compiled.positiontup or ()) if self._positional else list(by_name)
        fills = {
            name: _fill(by_name[name], defaults.get(name), processors.get(name))
            for name in dict.fromkeys(order)
        }
        # positional (qmark): one fill per position, a name used twice filled twice
        self._fills = [(name, fills[name]) for name in order]
        columns = compiled._result_columns
        self._row = namedtuple("Row", [c.keyname for c in columns]) if columns else None  # type: ignore[misc]
        self._readers = [c.type._cached_result_processor(dialect, None) for c in columns]

    def params(self, values: Params) -> Any:
        if self._positional:
            return tuple([fill(values) for _, fill in self._fills])
        return {name: fill(values) for name, fill in self._fills}

    def rows(self, conn: Connection, values: Params) -> list[Any]:
        """The statement's rows (named tuples: `row.id`), processed as SQLAlchemy would."""
        return self._execute(conn, lambda cur: cur.execute(self.sql, self.params(values)), True)

    def first(self, conn: Connection, values: Params) -> Any:
        rows = self.rows(conn, values)
        return rows[0] if rows else None

    def scalar(self, conn: Connection, values: Params) -> Any:
        row = self.first(conn, values)
        return row[0] if row is not None else None

    def run(self, conn: Connection, values: Params) -> int:
        """Run a statement that returns no rows; its rowcount."""
        return self._execute(conn, lambda cur: cur.execute(self.sql, self.params(values)), False)

    def run_many(self, conn: Connection, values: Iterable[Params]) -> None:
        """One executemany of a statement that returns no rows (an INSERT of several rows)."""
        params = [self.params(v) for v in values]
        self._execute(conn, lambda cur: cur.executemany(self.sql, params), False)

    def _execute(self, conn: Connection, call: Callable[[Any], Any], read: bool) -> Any:
        dbapi_conn = conn.connection.dbapi_connection
        cursor = dbapi_conn.cursor()  # type: ignore[union-attr]
        try:
            call(cursor)
            if not read:
                return cursor.rowcount
            return [self._read(r) for r in cursor.fetchall()]
        except self._dialect.loaded_dbapi.Error as exc:
            if self._dialect.is_disconnect(exc, dbapi_conn, cursor):
                conn.invalidate(exc)
            # the same error types as Connection.execute, never quoting a parameter
            raise sa.exc.DBAPIError.instance(
                self.sql, None, exc, self._dialect.loaded_dbapi.Error, hide_parameters=True,
                dialect=self._dialect,
            ) from exc  # fmt: skip
        finally:
            cursor.close()

    def _read(self, raw: Sequence[Any]) -> Any:
        values = [v if f is None else f(v) for f, v in zip(self._readers, raw, strict=True)]
        return self._row(*values) if self._row is not None else tuple(values)


def _fill(bind: Any, column: Any, process: Any) -> _Fill:
    """How one parameter gets its value: from the caller, the statement, or the column's
    Python-side default, then through the type's bind processor."""
    if bind.required:
        key = bind.key
        if process is None:
            return lambda values: values[key]
        return lambda values: process(values[key])
    if column is not None:  # a column left out: its default, as SQLAlchemy fills it
        default = column.default if column.default is not None else column.onupdate
        if default is None or not (default.is_scalar or default.is_callable):
            raise ValueError(f"column {column.key}: only scalar or callable defaults here")
        if default.is_callable:
            make = default.arg
            return lambda values: _processed(process, make(None))
        value = _processed(process, default.arg)
        return lambda values: value
    value = _processed(process, bind.effective_value)
    return lambda values: value


def _processed(process: Any, value: Any) -> Any:
    return value if process is None else process(value)
