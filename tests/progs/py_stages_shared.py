"""What py_stages.py prints: the shim's current stage (vramshim_stats_json) at a labelled point."""
import ctypes
import json

_stats = ctypes.CDLL(None).vramshim_stats_json
_stats.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def stats():
    buf = ctypes.create_string_buffer(1 << 16)
    _stats(buf, len(buf))
    return json.loads(buf.value.decode())


def current():
    return stats()["stage"] or "-"


def observe(label):
    print("%s %s" % (label, current()))
