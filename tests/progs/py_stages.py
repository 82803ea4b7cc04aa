"""Stages begun and ended by the Python auto-hook (policy py_stages.ini) and by vramshim.stage:
prints "LABEL STAGE" at points of interest, STAGE being the shim's current stage ("-": none).
Run by test_python_stages.c under `vramshim run`."""
import vramshim
from py_stages_lib import denoise_steps, recurse_decode
from py_stages_shared import observe


class Encoder:
    def encode(self):
        observe("encode")


class VAE:
    def decode(self, fail):
        observe("decode")
        if fail:
            raise RuntimeError("decode failed")


def make_late_class():
    class Late:  # defined after start-up, inside a function
        def decode_late(self):
            observe("decode_late")
    return Late


@vramshim.stage("manual")
def manual():
    observe("manual")


Encoder().encode()
observe("after_encode")
try:
    VAE().decode(fail=True)
except RuntimeError:
    observe("after_exception")
for i in denoise_steps(2):
    observe("consumer%d" % i)
observe("after_generator")
for i in denoise_steps(5):
    break  # the generator is closed while suspended
observe("after_break")
recurse_decode(2)
observe("after_recursion")
make_late_class()().decode_late()
late = __import__("py_stages_late")  # imported after start-up, on purpose
late.late_function()
manual()
with vramshim.stage("block"):
    VAE().decode(fail=False)
    observe("block")
observe("end")
print("hook", vramshim.autohook.installed if hasattr(vramshim, "autohook") else None)
