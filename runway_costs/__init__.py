"""runway-costs: where Runway API credits went, where they are going, what a plan will cost."""

__version__ = "0.1.0"
