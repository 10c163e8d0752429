"""A faithful local Runway API for demos and tests (see ARCHITECTURE.md)."""
