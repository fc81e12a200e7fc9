import sqlite3
import threading

import pytest

from dockyard.store import Database, MigrationError
from dockyard.store.migrations import MIGRATIONS


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path)
    yield database
    database.close()


def test_wal_schema_and_version(db, tmp_path):
    assert (tmp_path / "dockyard.db").exists()
    assert db.query("PRAGMA journal_mode")[0][0] == "wal"
    assert db.version == len(MIGRATIONS)
    tables = {row["name"] for row in db.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"images", "layers", "image_layers", "image_refs", "layer_holds"} <= tables


def test_reopen_does_not_migrate_twice(tmp_path):
    Database(tmp_path).close()
    again = Database(tmp_path)
    assert again.version == len(MIGRATIONS)
    again.close()


def test_later_migration_is_applied_to_existing_database(tmp_path):
    Database(tmp_path).close()
    extended = [*MIGRATIONS, "CREATE TABLE test_extension (name TEXT PRIMARY KEY);"]
    db = Database(tmp_path, extended)
    assert db.version == len(extended)
    db.query("SELECT * FROM test_extension")
    db.close()
    # An older dockyard refuses a database from the future rather than misreading it.
    with pytest.raises(MigrationError, match="schema version"):
        Database(tmp_path)


def test_failed_migration_rolls_back(tmp_path):
    with pytest.raises(MigrationError, match=r"migration 2 .* failed: no such table: nowhere"):
        Database(tmp_path, ["CREATE TABLE a (x);", "CREATE TABLE b (x); SELECT * FROM nowhere;"])
    db = Database(tmp_path, ["CREATE TABLE a (x);"])
    assert db.version == 1
    assert not db.query("SELECT name FROM sqlite_master WHERE name = 'b'")
    db.close()


def test_incomplete_migration_is_refused(tmp_path):
    with pytest.raises(MigrationError, match="incomplete SQL statement"):
        Database(tmp_path, ["CREATE TABLE a (x); CREATE TABLE b (x)"])


def test_transaction_commits_and_rolls_back(db):
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO layers VALUES ('sha256:c', 'sha256:d', NULL, 'sha256:b', 't', 1, 2)"
        )
    assert len(db.query("SELECT * FROM layers")) == 1
    with pytest.raises(RuntimeError), db.transaction() as conn:
        conn.execute("DELETE FROM layers")
        raise RuntimeError("boom")
    assert len(db.query("SELECT * FROM layers")) == 1


def test_nested_transactions_are_savepoints(db):
    with db.transaction() as conn:
        conn.execute("INSERT INTO layers VALUES ('c1', 'd', NULL, 'b', 't', 1, 2)")
        with pytest.raises(ValueError), db.transaction() as inner:
            inner.execute("INSERT INTO layers VALUES ('c2', 'd', NULL, 'b', 't', 1, 2)")
            raise ValueError
        with db.transaction() as inner:
            inner.execute("INSERT INTO layers VALUES ('c3', 'd', NULL, 'b', 't', 1, 2)")
    assert [r[0] for r in db.query("SELECT chain_id FROM layers ORDER BY 1")] == ["c1", "c3"]


def test_foreign_keys_are_enforced(db):
    with pytest.raises(sqlite3.IntegrityError), db.transaction() as conn:
        conn.execute("INSERT INTO image_layers VALUES ('nope', 0, 'nope')")


def test_threads_share_the_database_safely(db):
    def worker(n):
        for i in range(50):
            with db.transaction() as conn:
                conn.execute(
                    "INSERT INTO layers VALUES (?, 'd', NULL, 'b', 't', 1, 2)", (f"{n}-{i}",)
                )
                db.query("SELECT count(*) FROM layers")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.query("SELECT count(*) FROM layers")[0][0] == 200


def test_a_second_process_sees_committed_data(db, tmp_path):
    with db.transaction() as conn:
        conn.execute("INSERT INTO layers VALUES ('c', 'd', NULL, 'b', 't', 1, 2)")
    other = sqlite3.connect(tmp_path / "dockyard.db")
    assert other.execute("SELECT count(*) FROM layers").fetchone()[0] == 1
    other.close()


def test_after_commit_runs_only_after_the_outermost_commit(db):
    ran = []
    with db.transaction():
        db.after_commit(lambda: ran.append("outer"))
        with db.transaction():
            db.after_commit(lambda: ran.append("inner"))
        assert ran == []
    assert ran == ["outer", "inner"]


def test_after_commit_is_dropped_on_rollback(db):
    ran = []
    with db.transaction():
        with pytest.raises(ValueError), db.transaction():
            db.after_commit(lambda: ran.append("savepoint"))
            raise ValueError
        db.after_commit(lambda: ran.append("kept"))
    with pytest.raises(ValueError), db.transaction():
        db.after_commit(lambda: ran.append("never"))
        raise ValueError
    assert ran == ["kept"]
    with pytest.raises(RuntimeError, match="outside a transaction"):
        db.after_commit(lambda: None)


def test_after_commit_from_another_thread_is_refused(db):
    errors = []

    def other() -> None:
        try:
            db.after_commit(lambda: None)
        except RuntimeError as e:
            errors.append(e)

    with db.transaction():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert errors
