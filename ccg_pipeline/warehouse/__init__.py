"""Warehouse zones (personal, staging, statistics, ops) on SQLite or PostgreSQL."""
