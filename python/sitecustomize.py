"""Put on PYTHONPATH by `vramshim run`: installs the vramshim auto-hook, then runs the
sitecustomize that the program would have run without vramshim (the next one on sys.path), so
a site's or virtual environment's own customisation still happens. A failure of the hook is
reported in one line and never stops the program."""
import importlib.machinery
import importlib.util
import os
import sys


def _install_hook():
    try:
        from vramshim import autohook
        autohook.install()
    except Exception as e:  # the program must run even if the hook cannot
        sys.stderr.write("vramshim: Python auto-hook failed: %s: %s\n" % (type(e).__name__, e))
    if os.environ.get("VRAMSHIM_DECODE", "off") != "off":
        try:
            from vramshim import decode
            decode.install_from_environment()
        except Exception as e:  # likewise for the decode substitution
            sys.stderr.write("vramshim: decode substitution failed: %s: %s\n" %
                             (type(e).__name__, e))


def _chain():
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_install_hook()
_chain()
