"""Auto-hook for Python 3.9-3.11: the functions the policy matches are replaced by stage
wrappers (_wrap.py) where they are defined.

Covered: module-level functions and methods (plain, static, class) of classes, in modules
imported before the hook (scanned at install), in modules imported later (an import hook runs
the scan right after the module's code executed), and in every class created later by a `class`
statement anywhere (builtins.__build_class__ is wrapped), nested classes included.
Not covered: functions created later that belong to no class (closures, functions defined
inside functions, functions added to a module after it was imported), and references taken
while a module was still executing (e.g. a function stored in a registry by a decorator at
import time keeps the unwrapped function). Python 3.12+ has none of these limits.
Functions that match nothing are left untouched: their calls cost nothing.
"""
import builtins
import sys
import types

from . import _shim, _wrap


def _stage(matcher, func):
    code = getattr(func, "__code__", None)
    if code is None or getattr(func, _wrap.MARK, None):
        return None
    return matcher.stage_of(code.co_filename, getattr(func, "__qualname__", code.co_name))


def _scan_class(matcher, cls, seen):
    if cls in seen:
        return
    seen.add(cls)
    for attr, value in list(vars(cls).items()):
        kind = type(value) if isinstance(value, (staticmethod, classmethod)) else None
        func = value.__func__ if kind else value
        if isinstance(func, type) and func.__qualname__.startswith(cls.__qualname__ + "."):
            _scan_class(matcher, func, seen)
            continue
        if not isinstance(func, types.FunctionType):
            continue
        name = _stage(matcher, func)
        if name is None:
            continue
        wrapped = _wrap.wrap(func, name)
        try:
            setattr(cls, attr, kind(wrapped) if kind else wrapped)
        except (AttributeError, TypeError):
            continue
        _shim.log("info", "%s begins stage %s" % (func.__qualname__, name))


def _safely(scan, *args):
    """Runs a scan; an object that misbehaves when inspected never stops the program."""
    try:
        scan(*args)
    except Exception as e:  # noqa: BLE001 (any error of foreign code)
        _shim.log("debug", "auto-hook skipped %r: %s: %s" % (args[1], type(e).__name__, e))


def _scan_module(matcher, module):
    name = getattr(module, "__name__", None)
    try:
        items = list(vars(module).items())
    except TypeError:
        return
    seen = set()
    for attr, value in items:
        if getattr(value, "__module__", None) != name:
            continue
        if isinstance(value, type):
            _scan_class(matcher, value, seen)
        elif isinstance(value, types.FunctionType):
            stage = _stage(matcher, value)
            if stage is not None:
                setattr(module, attr, _wrap.wrap(value, stage))
                _shim.log("info", "%s.%s begins stage %s" % (name, value.__qualname__, stage))


class _Finder:
    """A meta path finder that finds nothing itself: it asks the finders after it, and makes
    the module's own loader scan the module once its code ran."""

    def __init__(self, matcher):
        self._matcher = matcher

    def find_spec(self, fullname, path=None, target=None):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                self._instrument(spec.loader)
                return spec
        return None

    def _instrument(self, loader):
        # Only loader instances: patching a class (BuiltinImporter) would affect every module.
        if isinstance(loader, type) or not hasattr(loader, "exec_module"):
            return
        if "exec_module" in getattr(loader, "__dict__", {}):
            return
        original, matcher = loader.exec_module, self._matcher

        def exec_module(module):
            original(module)
            _safely(_scan_module, matcher, module)

        try:
            loader.exec_module = exec_module
        except AttributeError:
            pass


def install(matcher):
    for module in list(sys.modules.values()):
        if module is not None:
            _safely(_scan_module, matcher, module)
    sys.meta_path.insert(0, _Finder(matcher))
    build_class = builtins.__build_class__

    def vramshim_build_class(*args, **kwargs):
        cls = build_class(*args, **kwargs)
        if isinstance(cls, type):
            _safely(_scan_class, matcher, cls, set())
        return cls

    builtins.__build_class__ = vramshim_build_class
    return True
