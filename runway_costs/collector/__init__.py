"""Talks to the Runway API and writes what it learns into DuckDB."""
