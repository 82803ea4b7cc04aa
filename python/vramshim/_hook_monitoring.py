"""Auto-hook for Python 3.12+: sys.monitoring events of the functions the policy matches.

PY_START is global: the first call of each code object asks the matcher; a code object that
matches nothing returns DISABLE, so its later calls cost nothing. A matching one gets local
PY_RETURN, PY_YIELD and PY_RESUME events; PY_THROW and PY_UNWIND can only be global and cost
one dictionary look-up per exception leaving a frame. Entry (start, resume, throw) enters the
function's stage, exit (return, yield, unwind) leaves it: like the wrappers, a generator's or
coroutine's stage is open while its frame runs. Functions defined at any time are covered.

Names by code (the code's file and qualified name) cover functions wherever they are called.
Names as methods (_match.py: inherited methods through a subclass, aliases, functions made by a
decorator of another module) that the function's own code does not give are added with a stage
wrapper in the class's __dict__ (_hook_wrap.place), for every class a `class` statement
creates after the hook is installed. The code of the package's own functions and of its
wrappers is disabled.
"""
import sys

from . import _hook_wrap, _shim, _wrap

_M = getattr(sys, "monitoring", None)


def _free_tool():
    for tool in (_M.PROFILER_ID, 3, 4, _M.OPTIMIZER_ID, _M.COVERAGE_ID):
        if _M.get_tool(tool) is None:
            return tool
    return None


def install(matcher):
    """Returns False when every sys.monitoring tool id is taken."""
    tool = _free_tool()
    if tool is None:
        _shim.log("warn", "Python auto-hook inactive: every sys.monitoring tool id is in use")
        return False
    E, disable = _M.events, _M.DISABLE
    stage_of = {}
    begin, end = _shim.begin, _shim.end

    def on_start(code, offset):
        name = stage_of.get(code)
        if name is None:
            try:
                name = None if _wrap.is_wrapper(code) else \
                    matcher.stage_of(code.co_filename, code.co_qualname)
            except Exception as e:  # noqa: BLE001 (never break the program)
                _shim.log("debug", "auto-hook skipped %s: %s" % (code.co_qualname, e))
            if name is None:
                return disable
            stage_of[code] = name
            _M.set_local_events(tool, code, E.PY_RETURN | E.PY_YIELD | E.PY_RESUME)
            _shim.log("info", "%s begins stage %s" % (code.co_qualname, name))
        begin(name)

    def on_resume(code, offset):
        begin(stage_of[code])

    def on_leave(code, offset, value):
        end(stage_of[code])

    def on_throw(code, offset, exc):
        name = stage_of.get(code)
        if name is not None:
            begin(name)

    def on_unwind(code, offset, exc):
        name = stage_of.get(code)
        if name is not None:
            end(name)

    _M.use_tool_id(tool, "vramshim")
    _M.register_callback(tool, E.PY_START, on_start)
    _M.register_callback(tool, E.PY_RESUME, on_resume)
    _M.register_callback(tool, E.PY_RETURN, on_leave)
    _M.register_callback(tool, E.PY_YIELD, on_leave)
    _M.register_callback(tool, E.PY_THROW, on_throw)
    _M.register_callback(tool, E.PY_UNWIND, on_unwind)
    _M.set_events(tool, E.PY_START | E.PY_THROW | E.PY_UNWIND)
    _hook_wrap.watch_classes(lambda cls: _scan_class(matcher, cls))
    return True


def _code_stages(matcher, func):
    """The stages that func's own code, and those of the functions it wraps, begin."""
    return {matcher.stage_of(f.__code__.co_filename, f.__code__.co_qualname)
            for f in _wrap.chain(func) if not _wrap.is_wrapper(f.__code__)}


def _scan_class(matcher, cls):
    for attr, raw, func, stage in list(matcher.methods(cls)):
        if stage not in _code_stages(matcher, func):
            _hook_wrap.place(cls, attr, raw, func, stage)
