"""vramshim for Python programs.

    import vramshim
    with vramshim.stage("decode"):      # or @vramshim.stage("decode") on a function
        image = vae.decode(latents)

`stage(name)` opens the vramshim stage `name` (docs/stages.md) while its block or function runs
(a generator's or coroutine's stage only while its frame runs). Stages nest; entering a stage
that is already open only counts, so recursion never ends it early. When libvramshim.so is not
loaded (the program was not started with `vramshim run` or LD_PRELOAD) it does nothing and
says so once on stderr.

`vramshim run` also installs the auto-hook (vramshim.autohook), which does the same for every
function a `match` pattern of the policy (VRAMSHIM_POLICY) names.
"""
import re
import sys

from . import _shim, _wrap

__all__ = ["stage", "loaded"]

loaded = _shim.loaded
_NAME = re.compile(r"[A-Za-z0-9_.\-:/@+]{1,40}\Z")
_warned = False


def _warn_unloaded():
    global _warned
    if not _warned:
        _warned = True
        sys.stderr.write("vramshim: stage() has no effect: libvramshim.so is not loaded "
                         "(start the program with `vramshim run -- ...`)\n")


class stage(_wrap.Stage):
    """Context manager and decorator: stage `name` is open while the block or function runs."""

    __slots__ = ()

    def __init__(self, name):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError("vramshim.stage: bad stage name %r (1 to 40 letters, digits or "
                             "_ . - : / @ +)" % (name,))
        super().__init__(name)
        if not loaded:
            _warn_unloaded()

    def __call__(self, func):
        return _wrap.wrap(func, self.name)
