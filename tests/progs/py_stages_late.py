"""Imported by py_stages.py after start-up: its function must still begin its stage."""
from py_stages_shared import observe


def late_function():
    observe("late_function")
