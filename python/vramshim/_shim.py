"""The shim's C API as seen from Python, and the process-wide stage counts.

Invariants: every call into the shim goes through this module. Stages are counted per name
for the whole process: the shim's stage is begun when a name's count goes from 0 to 1 and ended
when it returns to 0, so a recursive or re-entered stage function never ends its stage early.
When libvramshim.so is not loaded, nothing is called and `loaded` is False.
"""
import ctypes
import json
import os
import sys
import threading

_LEVELS = {"error": 0, "warn": 1, "info": 2, "debug": 3}
_level = _LEVELS.get(os.environ.get("VRAMSHIM_LOG", "warn"), 1)


def log(level, message):
    """One "vramshim:" line on stderr when VRAMSHIM_LOG is at least `level`."""
    if _LEVELS[level] <= _level:
        sys.stderr.write("vramshim: %s\n" % message)
        sys.stderr.flush()


def _bind():
    # PyDLL keeps the GIL during the calls: they are short, and the shim then reads the
    # caller's Python frames for the stage event's call site directly (trace_python.c).
    try:
        lib = ctypes.PyDLL(None)
    except OSError:
        return None
    try:
        api = {name: getattr(lib, "vramshim_" + name) for name in (
            "stage_begin", "stage_end", "policy_match_function", "policy_patterns_json")}
    except AttributeError:
        return None
    for name in ("stage_begin", "stage_end"):
        api[name].argtypes = [ctypes.c_char_p]
        api[name].restype = ctypes.c_int
    api["policy_match_function"].argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                             ctypes.c_char_p, ctypes.c_size_t]
    api["policy_match_function"].restype = ctypes.c_int
    api["policy_patterns_json"].argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    api["policy_patterns_json"].restype = ctypes.c_int
    return api


_api = _bind()
loaded = _api is not None

_lock = threading.Lock()
_depth = {}


def begin(name):
    """Enters stage `name` (begins it in the shim unless it is already open)."""
    if not loaded:
        return
    with _lock:
        depth = _depth.get(name, 0)
        _depth[name] = depth + 1
        if depth == 0:
            rc = _api["stage_begin"](name.encode())
            log("debug", "stage %s begins" % name if rc == 0 else
                "stage %s could not begin (error %d)" % (name, rc))


def end(name):
    """Leaves stage `name` (ends it in the shim when no entry of it remains)."""
    if not loaded:
        return
    with _lock:
        depth = _depth.get(name, 0)
        if depth == 0:
            return
        _depth[name] = depth - 1
        if depth == 1:
            rc = _api["stage_end"](name.encode())
            log("debug", "stage %s ends" % name if rc == 0 else
                "stage %s could not end (error %d)" % (name, rc))


def _text(fn, *args):
    size = 4096
    while True:
        buf = ctypes.create_string_buffer(size)
        n = fn(*args, buf, size)
        if n < 0:
            return None
        if n < size:
            return buf.value.decode()
        size = n + 1


def patterns():
    """The policy's stage match patterns (empty without a policy or without the shim)."""
    if not loaded:
        return []
    text = _text(_api["policy_patterns_json"])
    try:
        return [p for p in json.loads(text) if isinstance(p, str)] if text else []
    except ValueError:
        log("error", "the shim's policy patterns are not JSON: %r" % text[:80])
        return []


def match_function(module, qualname):
    """The stage the policy begins on entry to module.qualname, or None."""
    name = _text(_api["policy_match_function"], module.encode(), qualname.encode())
    return name or None
