"""Functions of py_stages.py that live in a module, as a generator's model code does: a
generator and a recursive function whose stages the auto-hook opens and closes."""
from py_stages_shared import observe


def denoise_steps(n):
    try:
        for i in range(n):
            observe("step%d" % i)
            yield i
    finally:  # also run by close(): the stage is open then too
        observe("cleanup")


def recurse_decode(depth):
    if depth:
        recurse_decode(depth - 1)
        observe("after_inner%d" % depth)  # an inner call returned: the stage is still open
