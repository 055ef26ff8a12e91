"""SQLite adapters: the catalog's store (embedded mode) and the database plumbing the job
queue shares."""
