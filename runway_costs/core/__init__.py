"""The bottom layer: typed config, money, time windows, clocks and file names.

Everything else in runway_costs may import from here; core imports nothing of ours.
"""
