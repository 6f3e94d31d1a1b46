"""Storage: metadata, engines (SQLite and PostgreSQL), the unit of work, column types."""
