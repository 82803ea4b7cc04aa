"""Which stage a Python function begins: the policy decides (vramshim_policy_match_function);
a regular expression made of the same patterns first rules out, without a call into the shim,
the names that cannot match.

Names are those of docs/policy.md and the trace's Python frames: a qualified name, and the same
prefixed by every dotted suffix of a module path made from a file name
(/app/comfy/sd.py -> "sd.VAE.decode", "comfy.sd.VAE.decode", "app.comfy.sd.VAE.decode").

Two ways to name a function, shared by both hooks:
  - by its code (stage_of): the code's file and qualified name, as its frames read;
  - as a method (method_stage): `K.attr` for attribute `attr` looked up through class C, for
    every class K of C's MRO that has `attr` (its own or inherited), most derived first, with
    the module path of K's module file. So a method's module is its class's (not that of a
    decorator that made the function), `StableDiffusionPipeline.to` names the `to` inherited
    from DiffusionPipeline when called through StableDiffusionPipeline, `DiffusionPipeline.to`
    names it through every subclass (overridden or not), and `Module.__call__` names the
    function stored under `__call__` (an alias).
Functions of this package never match (the hook must not wrap itself).
Reading classes and modules never runs their code: only __dict__, __mro__, __qualname__.
"""
import fnmatch
import os
import re
import sys
import types

from . import _shim

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def module_of(filename):
    """Dotted module path of a source file, as the policy reads a frame's FILE ("" if none)."""
    if not filename.endswith(".py"):
        return ""
    module = filename[:-3].replace("/", ".")
    if module.endswith(".__init__"):
        module = module[:-len(".__init__")]
    return module.lstrip(".")


def names_of(module, qualname):
    yield qualname
    parts = module.split(".") if module else []
    for i in range(len(parts) - 1, -1, -1):
        yield ".".join(parts[i:]) + "." + qualname


def own_module(name):
    """Whether module `name` is this package."""
    return isinstance(name, str) and (name == "vramshim" or name.startswith("vramshim."))


def function_of(raw):
    """The Python function of a class attribute (plain, staticmethod, classmethod), or None."""
    if type(raw) is types.FunctionType:
        return raw
    if issubclass(type(raw), (staticmethod, classmethod)) and \
            type(raw.__func__) is types.FunctionType:
        return raw.__func__
    return None


def _has(cls, attr):
    """Whether attribute attr is found through cls (its own or inherited), without reading it."""
    for k in cls.__mro__:
        if attr in vars(k):
            return True
    return False


class Matcher:
    """Stage of a code object or of a method, cached; remembers which patterns matched."""

    def __init__(self, patterns):
        self.patterns = patterns
        # fnmatch's "\" is literal where the policy's escapes: such patterns go to the shim.
        escaped = any("\\" in p for p in patterns)
        self._each = [(p, None if "\\" in p else re.compile(fnmatch.translate(p)))
                      for p in patterns]
        if escaped:
            self._rx = None
        else:
            self._rx = re.compile("|".join(fnmatch.translate(p) for p in patterns)) \
                if patterns else re.compile(r"(?!)")
        # The attribute names a method pattern can end with; any, when a last component has a
        # wildcard (it may span dots).
        tails = [p.rsplit(".", 1)[-1] for p in patterns]
        self._any_tail = escaped or any(any(c in t for c in "*?[") for t in tails)
        self._tails = frozenset(tails)
        self._cache = {}
        self._paths = {}
        self._used = set()

    def _could_match(self, module, qualname):
        if self._rx is None:
            return True
        return any(self._rx.match(n) for n in names_of(module, qualname))

    def stage_of_name(self, module, qualname):
        """The stage that module path + qualified name begins, or None."""
        key = (module, qualname)
        try:
            return self._cache[key]
        except KeyError:
            pass
        stage = _shim.match_function(module, qualname) \
            if self._could_match(module, qualname) else None
        if stage is not None:
            for p, rx in self._each:
                if rx is None or any(rx.match(n) for n in names_of(module, qualname)):
                    self._used.add(p)
        self._cache[key] = stage
        return stage

    def stage_of(self, filename, qualname):
        """The stage a code object of `filename` named `qualname` begins, or None."""
        if filename.startswith(_PACKAGE):
            return None
        return self.stage_of_name(module_of(filename), qualname)

    def module_path(self, name):
        """Module path of module `name` for its functions' names: from its .py file, as its
        frames read; its dotted name when it has none."""
        try:
            return self._paths[name]
        except KeyError:
            pass
        module = sys.modules.get(name)
        file = vars(module).get("__file__") if issubclass(type(module), types.ModuleType) \
            else None
        path = module_of(file) if isinstance(file, str) and file.endswith(".py") else name
        self._paths[name] = path
        return path

    def method_stage(self, cls, attr):
        """The stage of attribute `attr` called through class `cls`, or None."""
        for k in cls.__mro__:
            if k is object or not _has(k, attr):
                continue
            module = vars(k).get("__module__")
            if not isinstance(module, str) or own_module(module):
                continue
            stage = self.stage_of_name(self.module_path(module), "%s.%s" % (k.__qualname__, attr))
            if stage is not None:
                return stage
        return None

    def methods(self, cls):
        """(attr, raw value, function, stage) for each function attribute of cls, its own or
        inherited, that begins a stage when called through cls."""
        if own_module(vars(cls).get("__module__")):
            return
        dicts = [vars(k) for k in cls.__mro__ if k is not object]
        attrs = set().union(*dicts) if self._any_tail else self._tails
        for attr in attrs:
            for d in dicts:
                if attr in d:
                    func = function_of(d[attr])
                    stage = func and self.method_stage(cls, attr)
                    if stage is not None:
                        yield attr, d[attr], func, stage
                    break

    def unused(self):
        """The patterns that named no function so far."""
        return [p for p in self.patterns if p not in self._used]
