"""The shim's C API as seen from Python, and the process-wide stage counts.

Invariants: every call into the shim goes through this module. Stages are counted per name
for the whole process (all threads): the shim's stage is begun when a name's count goes from 0
to 1 and ended when it returns to 0, so a recursive or re-entered stage function never ends its
stage early, and a stage ends when the last thread inside it leaves.
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

# Stages across threads: a name is open while any thread runs an entry of it (its count is
# above 0); the shim's stack holds the open names in the order they were opened (_open). When a
# name that is not the innermost closes (thread 1 leaves while thread 2's later stage runs), the
# names opened after it are ended and begun again, so that the shim's stack stays exactly the
# open names and no stage is left open. One lock; no Python code of the program runs under it.
_lock = threading.Lock()
_count = {}
_open = []
# A thread already inside begin/end (a finalizer or signal handler that runs a matching
# function meanwhile) is not counted again: its begin and end are both skipped.
_inside = threading.local()


def _change(call, name, what, notes):
    rc = _api[call](name.encode())
    notes.append("stage %s %s" % (name, what) if rc == 0 else
                 "stage %s: vramshim_%s failed (error %d)" % (name, call, rc))
    return rc == 0


def _guarded(update, name):
    if not loaded or getattr(_inside, "on", False):
        return
    _inside.on = True
    notes = []
    try:
        with _lock:
            update(name, notes)
    finally:
        _inside.on = False
    for note in notes:
        log("debug", note)


def _enter(name, notes):
    depth = _count.get(name, 0)
    _count[name] = depth + 1
    if depth == 0 and _change("stage_begin", name, "begins", notes):
        _open.append(name)


def _leave(name, notes):
    depth = _count.get(name, 0)
    if depth == 0:
        return
    if depth > 1:
        _count[name] = depth - 1
        return
    del _count[name]
    if name not in _open:  # the shim refused its begin
        return
    i = _open.index(name)
    later = _open[i + 1:]
    for other in reversed(later):
        _change("stage_end", other, "ends", notes)
    _change("stage_end", name, "ends", notes)
    del _open[i]
    for other in later:
        _change("stage_begin", other, "begins again", notes)


def begin(name):
    """Enters stage `name` (begins it in the shim unless it is already open)."""
    _guarded(_enter, name)


def end(name):
    """Leaves stage `name` (ends it in the shim when no entry of it remains in any thread)."""
    _guarded(_leave, name)


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
