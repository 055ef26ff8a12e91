"""Adapters for one machine: filesystem blobs, SQLite catalog, SQLite job queue."""
