"""Which stage a Python function begins: the policy decides (vramshim_policy_match_function);
a regular expression made of the same patterns first rules out, without a call into the shim,
the functions whose names cannot match.

Names are those of DESIGN §5 and the trace's Python frames: the qualified name, and the same
prefixed by every dotted suffix of the module path made from the file name
(/app/comfy/sd.py -> "sd.VAE.decode", "comfy.sd.VAE.decode", "app.comfy.sd.VAE.decode").
"""
import fnmatch
import re

from . import _shim


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


class Matcher:
    """stage_of(filename, qualname) -> stage name or None, cached per (file, name)."""

    def __init__(self, patterns):
        # fnmatch's "\" is literal where the policy's escapes: such patterns go to the shim.
        if any("\\" in p for p in patterns):
            self._rx = None
        else:
            self._rx = re.compile("|".join(fnmatch.translate(p) for p in patterns)) \
                if patterns else re.compile(r"(?!)")
        self._cache = {}

    def could_match(self, module, qualname):
        if self._rx is None:
            return True
        return any(self._rx.match(n) for n in names_of(module, qualname))

    def stage_of(self, filename, qualname):
        key = (filename, qualname)
        try:
            return self._cache[key]
        except KeyError:
            pass
        module = module_of(filename)
        stage = _shim.match_function(module, qualname) \
            if self.could_match(module, qualname) else None
        self._cache[key] = stage
        return stage
