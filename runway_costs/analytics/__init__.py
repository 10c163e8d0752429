"""Reads the collector's DuckDB snapshot and turns it into spend, forecasts and reports."""
