"""Installs the auto-hook: entry to a function that a `match` pattern of the policy names
begins that stage, its exit ends it (sys.monitoring on Python 3.12+, wrappers before).
Called by the sitecustomize that `vramshim run` puts on PYTHONPATH; installing twice does
nothing. Without the shim, or without patterns, nothing is installed (said at VRAMSHIM_LOG=info).
"""
import atexit
import os
import sys

from . import _match, _shim

installed = None  # "monitoring", "wrap", or None
matcher = None  # the policy's patterns once installed (vramshim.decode opens their stages too)


def install():
    global installed, matcher
    if installed:
        return installed
    if not _shim.loaded:
        _shim.log("info", "Python auto-hook inactive: libvramshim.so is not loaded")
        return None
    # Without a policy there is nothing to match (and no reason to wake the shim up).
    patterns = _shim.patterns() if os.environ.get("VRAMSHIM_POLICY") else []
    if not patterns:
        _shim.log("info", "Python auto-hook inactive: the policy has no stage match patterns")
        return None
    matcher = _match.Matcher(patterns)
    if sys.version_info >= (3, 12):
        from . import _hook_monitoring as hook
        kind = "monitoring"
    else:
        from . import _hook_wrap as hook
        kind = "wrap"
    if hook.install(matcher):
        installed = kind
        atexit.register(_report_unused, matcher)
        _shim.log("info", "Python auto-hook active (%s) for %d pattern%s" %
                  ("sys.monitoring" if kind == "monitoring" else "function wrappers",
                   len(patterns), "" if len(patterns) == 1 else "s"))
    else:
        matcher = None
    return installed


def _report_unused(matcher):
    """At exit: one line per pattern that named no Python function (a native-frame pattern of
    a C program is not checked here: `vramshim policy match --trace` checks those)."""
    for pattern in matcher.unused():
        _shim.log("info", "warning: match pattern '%s' named no Python function in this run "
                  "(how functions are named: docs/python.md#matching)" % pattern)
