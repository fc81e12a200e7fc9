"""The metadata database: WAL mode, ordered migrations, thread-safe transactions.

One connection serves every thread of the daemon; a re-entrant lock serialises its use. SQLite
allows a single writer anyway, and one connection keeps a transaction's reads consistent with
its writes without busy-retry loops. Readers in other processes still see committed data (WAL).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .migrations import MIGRATIONS

DB_NAME = "dockyard.db"


class MigrationError(RuntimeError):
    """The database was written by a newer dockyard, or a migration failed."""


class Database:
    """`Database(data_root)` opens (creating if needed) `<data_root>/dockyard.db`."""

    def __init__(self, data_root: Path, migrations: Sequence[str] = MIGRATIONS) -> None:
        self.path = Path(data_root) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction() on the owning thread
        self._after: list[list[Callable[[], None]]] = []  # per nesting level
        self._owner = 0  # thread running the current transaction
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, nothing implicit.
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed transaction survives power loss, not only a daemon crash.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        try:
            self._migrate(migrations)
        except BaseException:
            self._conn.close()
            raise

    @property
    def version(self) -> int:
        with self._lock:
            return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self, migrations: Sequence[str]) -> None:
        current = self.version
        if current > len(migrations):
            raise MigrationError(
                f"{self.path} has schema version {current}; this dockyard knows {len(migrations)}"
            )
        for number, script in enumerate(migrations[current:], start=current + 1):
            try:
                with self.transaction() as conn:
                    for statement in _statements(script):
                        conn.execute(statement)
                    # PRAGMA takes no parameters; `number` is an int we produced.
                    conn.execute(f"PRAGMA user_version = {number}")
            except sqlite3.Error as e:
                raise MigrationError(f"migration {number} of {self.path} failed: {e}") from e

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the database for one atomic unit of work; nested calls become savepoints."""
        with self._lock:
            conn = self._conn
            if self._depth == 0:
                self._owner = threading.get_ident()
                # IMMEDIATE takes the write lock now, so a read-then-write never deadlocks
                # against another process's writer.
                conn.execute("BEGIN IMMEDIATE")
                commit, rollback = "COMMIT", "ROLLBACK"
            else:
                name = f"sp{self._depth}"
                conn.execute(f"SAVEPOINT {name}")
                commit, rollback = f"RELEASE {name}", f"ROLLBACK TO {name}; RELEASE {name}"
            self._depth += 1
            self._after.append([])
            try:
                yield conn
                conn.execute(commit)
            except BaseException:
                if conn.in_transaction:
                    for statement in rollback.split("; "):
                        conn.execute(statement)
                self._after.pop()
                raise
            finally:
                self._depth -= 1
            callbacks = self._after.pop()
            if self._depth:
                self._after[-1].extend(callbacks)  # a savepoint commits with its transaction
                callbacks = []
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the current transaction has committed, outside the database
        lock; never if it rolls back. For work that must not precede the commit, such as
        deleting files the rows referenced."""
        if not self._after or self._owner != threading.get_ident():
            raise RuntimeError("after_commit() outside a transaction")
        self._after[-1].append(callback)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one read-only statement and return all its rows."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _statements(script: str) -> list[str]:
    """Split a migration script into statements: sqlite3.execute takes one at a time, and
    executescript would commit our transaction."""
    statements, start = [], 0
    for end, char in enumerate(script, start=1):
        if char == ";" and sqlite3.complete_statement(script[start:end]):
            statements.append(script[start:end].strip())
            start = end
    if script[start:].strip():
        raise MigrationError(f"incomplete SQL statement in migration: {script[start:][:80]!r}")
    return statements
