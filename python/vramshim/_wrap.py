"""Stage wrappers around a function: the stage is open while the function's own frame runs.

A plain function opens it from call to return (or exception). A generator's or coroutine's
stage is open only while its frame executes: it ends at each yield/await suspension and opens
again when the caller resumes it (next, send, throw, close). Async generators are returned
unwrapped (the stage would be wrong across their suspensions).
"""
import functools
import inspect

from . import _shim

MARK = "__vramshim_stage__"


def _drive(inner, name):
    """Runs generator or coroutine `inner` step by step, the stage open during each step."""
    value, error = None, None
    while True:
        _shim.begin(name)
        try:
            item = inner.send(value) if error is None else inner.throw(error)
        except StopIteration as stop:
            return stop.value
        finally:
            _shim.end(name)
        value, error = None, None
        try:
            value = yield item
        except GeneratorExit:
            _shim.begin(name)
            try:
                inner.close()
            finally:
                _shim.end(name)
            raise
        except BaseException as e:  # thrown in by the caller: delivered to inner
            error = e


class _StagedAwaitable:
    __slots__ = ("_coro", "_name")

    def __init__(self, coro, name):
        self._coro, self._name = coro, name

    def __await__(self):
        return _drive(self._coro, self._name)


def wrap(func, name):
    """func with stage `name` open while it runs; func itself when already wrapped for it."""
    if getattr(func, MARK, None) == name or inspect.isasyncgenfunction(func):
        return func
    if inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def staged(*args, **kwargs):
            return (yield from _drive(func(*args, **kwargs), name))
    elif inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def staged(*args, **kwargs):
            return await _StagedAwaitable(func(*args, **kwargs), name)
    else:
        @functools.wraps(func)
        def staged(*args, **kwargs):
            _shim.begin(name)
            try:
                return func(*args, **kwargs)
            finally:
                _shim.end(name)
    setattr(staged, MARK, name)
    return staged
