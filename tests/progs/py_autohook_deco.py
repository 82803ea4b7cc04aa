"""A decorator module (as diffusers.utils.accelerate_utils): functools.wraps functions made here
must still be named after the class that holds them (test_python_autohook.c)."""
import functools


def traced(method):
    @functools.wraps(method)
    def inner(self, *args, **kwargs):
        return method(self, *args, **kwargs)
    return inner
