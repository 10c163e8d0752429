"""The ``runway-costs`` command: a thin layer over collector, analytics and dashboard."""
