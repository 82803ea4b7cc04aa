"""Auto-hook for Python 3.9-3.11: the functions the policy matches are replaced by stage
wrappers (_wrap.py) where they are defined.

Covered: module-level functions and methods (plain, static, class; inherited ones that a
subclass's name matches get a wrapper in the subclass) of classes, in modules imported before
the hook (scanned at install), in modules executed later (the file loaders, and an import hook
for other loaders, scan each right after its code ran, also a module loaded with
spec_from_file_location + exec_module), and in every class created later by a `class`
statement anywhere (builtins.__build_class__ is wrapped), nested classes included. Names:
_match.py.
Not covered: functions created later that belong to no class (closures, functions defined
inside functions, functions added to a module after it was imported), and references taken
while a module was still executing (e.g. a function stored in a registry by a decorator at
import time keeps the unwrapped function). Python 3.12+ has none of these limits.
Functions that match nothing are left untouched: their calls cost nothing.
"""
import builtins
import sys
import types
from importlib._bootstrap_external import _LoaderBasics

from . import _match, _shim, _wrap


def _rewrap(raw, func):
    """func stored as raw was (staticmethod, classmethod or plain)."""
    return type(raw)(func) if isinstance(raw, (staticmethod, classmethod)) else func


def place(cls, attr, raw, func, stage):
    """Makes attribute attr of cls (raw, with function func, maybe inherited) begin stage when
    called through cls: wraps it in cls's own __dict__, unless it is already wrapped for that
    stage. Returns whether it did."""
    if getattr(func, _wrap.MARK, None) == stage:
        return False
    original = func.__wrapped__ if getattr(func, _wrap.MARK, None) else func
    try:
        setattr(cls, attr, _rewrap(raw, _wrap.wrap(original, stage,
                                                   "%s.%s" % (cls.__qualname__, attr))))
    except (AttributeError, TypeError):
        return False
    _shim.log("info", "%s.%s begins stage %s" % (cls.__qualname__, attr, stage))
    return True


def _scan_class(matcher, cls, seen):
    if cls in seen:
        return
    seen.add(cls)
    for attr, raw, func, stage in list(matcher.methods(cls)):
        place(cls, attr, raw, func, stage)
    for value in list(vars(cls).values()):
        if issubclass(type(value), type) and \
                value.__qualname__.startswith(cls.__qualname__ + "."):
            _scan_class(matcher, value, seen)


def _safely(scan, *args):
    """Runs a scan; an object that misbehaves when inspected never stops the program."""
    try:
        scan(*args)
    except Exception as e:  # noqa: BLE001 (any error of foreign code)
        _shim.log("debug", "auto-hook skipped %s: %s: %s" % (
            object.__repr__(args[-1]), type(e).__name__, e))


def _scan_module(matcher, module, classes):
    """Wraps the module's matching functions, and its classes' methods when `classes` (once
    the hook watches class statements, a module's classes are scanned as they are made)."""
    if not issubclass(type(module), types.ModuleType):
        return
    items = vars(module)
    name = items.get("__name__")
    if _match.own_module(name):
        return
    path = matcher.module_path(name)
    seen = set()
    for attr, value in list(items.items()):
        # type() only: isinstance() and getattr() could run the object's own code (a
        # deprecated object that warns when touched, a lazy module that imports).
        kind = type(value)
        if issubclass(kind, type):
            if classes and vars(value).get("__module__") == name:
                _scan_class(matcher, value, seen)
        elif kind is types.FunctionType and value.__module__ == name:
            stage = matcher.stage_of_name(path, value.__qualname__)
            if stage is not None and getattr(value, _wrap.MARK, None) != stage:
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
        if isinstance(loader, _LoaderBasics) or "exec_module" in getattr(loader, "__dict__", {}):
            return
        original, matcher = loader.exec_module, self._matcher

        def exec_module(module):
            original(module)
            _safely(_scan_module, matcher, module, False)

        try:
            loader.exec_module = exec_module
        except AttributeError:
            pass


def watch_classes(scan):
    """Runs scan(cls) on every class a `class` statement creates from now on."""
    build_class = builtins.__build_class__

    def vramshim_build_class(*args, **kwargs):
        cls = build_class(*args, **kwargs)
        if issubclass(type(cls), type):
            _safely(scan, cls)
        return cls

    builtins.__build_class__ = vramshim_build_class


def _instrument_file_loaders(matcher):
    """Source and bytecode file loaders scan each module they execute, also when no finder
    made them (importlib.util.spec_from_file_location + exec_module, as ComfyUI loads its
    custom nodes)."""
    original = _LoaderBasics.exec_module

    def exec_module(self, module):
        original(self, module)
        _safely(_scan_module, matcher, module, False)

    _LoaderBasics.exec_module = exec_module


def install(matcher):
    for module in list(sys.modules.values()):
        if module is not None:
            _safely(_scan_module, matcher, module, True)
    _instrument_file_loaders(matcher)
    sys.meta_path.insert(0, _Finder(matcher))
    watch_classes(lambda cls: _scan_class(matcher, cls, set()))
    return True
