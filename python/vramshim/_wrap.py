"""Stage wrappers around a function: the stage is open while the function's own frame runs.

A plain function opens it from call to return (or exception). A generator's or coroutine's
stage is open only while its frame executes: it ends at each yield/await suspension and opens
again when the caller resumes it (next, send, throw, close). Async generators are returned
unwrapped (the stage would be wrong across their suspensions).

A wrapper is transparent: functools.wraps (`__wrapped__`, name, signature, attributes), the
function's own globals (TorchScript resolves names there), and a code object that carries the
function's file, name and first line, so that its frame in a call site reads as the function's
(the frames of this package are left out of call sites by the shim). It refers to nothing but
its closure, whose names start with _vramshim_.
"""
import functools
import inspect
import types

from . import _shim

MARK = "__vramshim_stage__"


class Stage:
    """Context manager: stage `name` is open inside the block (no check of the name)."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        _shim.begin(self.name)
        return self

    def __exit__(self, *exc):
        _shim.end(self.name)
        return False

    def drive(self, inner):
        return _drive(inner, self.name)

    def awaiting(self, coro):
        return _StagedAwaitable(coro, self.name)


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


# Each body is one line (below the def), the line its frame shows: the function's first line.
def _plain(_vramshim_func, _vramshim_stage):
    def staged(*args, **kwargs):
        with _vramshim_stage: return _vramshim_func(*args, **kwargs)  # noqa: E701
    return staged


def _generator(_vramshim_func, _vramshim_stage):
    def staged(*args, **kwargs):
        return (yield from _vramshim_stage.drive(_vramshim_func(*args, **kwargs)))
    return staged


def _coroutine(_vramshim_func, _vramshim_stage):
    async def staged(*args, **kwargs):
        return await _vramshim_stage.awaiting(_vramshim_func(*args, **kwargs))
    return staged


def is_wrapper(code):
    """Whether a code object is a stage wrapper's (its calls are not the function's own)."""
    return "_vramshim_func" in code.co_freevars


def chain(func):
    """func, then the Python functions it wraps (functools.wraps' __wrapped__), innermost last."""
    for _ in range(16):
        yield func
        func = getattr(func, "__wrapped__", None)
        if type(func) is not types.FunctionType:
            return


def _dress(staged, func, qualname):
    """staged as a function of func's own: its globals, and a code object with the file and
    first line of the function func is (or wraps, for a decorator's function), and named
    qualname (the name the policy matched: Sub.run for Base.run called through Sub) or as
    that function."""
    if type(func) is not types.FunctionType:
        return staged
    *_, inner = chain(func)
    code = inner.__code__
    qualname = qualname or getattr(code, "co_qualname", code.co_name)
    same = {"co_filename": code.co_filename, "co_name": qualname.rsplit(".", 1)[-1],
            "co_firstlineno": max(code.co_firstlineno - 1, 1)}
    if hasattr(code, "co_qualname"):
        same["co_qualname"] = qualname
    return types.FunctionType(staged.__code__.replace(**same), inner.__globals__,
                              staged.__name__, None, staged.__closure__)


def wrap(func, name, qualname=None):
    """func with stage `name` open while it runs; func itself when already wrapped for it.
    qualname: the name its frames show (by default the function's own)."""
    if getattr(func, MARK, None) == name or inspect.isasyncgenfunction(func):
        return func
    if inspect.isgeneratorfunction(func):
        make = _generator
    elif inspect.iscoroutinefunction(func):
        make = _coroutine
    else:
        make = _plain
    staged = _dress(make(func, Stage(name)), func, qualname)
    functools.update_wrapper(staged, func)
    setattr(staged, MARK, name)
    return staged
