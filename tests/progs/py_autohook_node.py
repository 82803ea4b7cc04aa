"""A ComfyUI custom node: loaded by py_autohook.py with spec_from_file_location + exec_module."""
from py_stages_shared import observe


def node_function():
    observe("node_function")


class Node:
    def run(self):
        observe("node_run")
