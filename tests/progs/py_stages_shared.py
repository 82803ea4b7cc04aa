"""What py_stages.py prints: the shim's current stage (vramshim_stats_json) at a labelled point."""
import ctypes
import json

_stats = ctypes.CDLL(None).vramshim_stats_json
_stats.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def current():
    buf = ctypes.create_string_buffer(1 << 16)
    _stats(buf, len(buf))
    return json.loads(buf.value.decode())["stage"] or "-"


def observe(label):
    print("%s %s" % (label, current()))
