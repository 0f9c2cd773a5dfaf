"""The stores (memory, SQLite, PostgreSQL): one suite, faults, crashes."""
