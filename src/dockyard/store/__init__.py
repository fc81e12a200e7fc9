"""SQLite metadata: one database per data root (dockyard.db), schema by migrations."""

from .database import Database, MigrationError

__all__ = ["Database", "MigrationError"]
