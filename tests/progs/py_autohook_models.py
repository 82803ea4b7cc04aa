"""Classes of py_autohook.py (test_python_autohook.c), in a module of their own."""
from py_autohook_deco import traced
from py_stages_shared import observe


class VAE:
    @traced
    def decode(self):
        observe("decode")

    @traced
    def encode(self):
        observe("encode")


class Base:
    def run(self):
        observe("run")

    def go(self):
        observe("base_go")

    def start(self):
        observe("start")

    alias = start  # named Base.alias too


class Sub(Base):
    def go(self):
        observe("sub_go")


class Other(Base):
    pass
