"""`pip install ./python` (after `make`): the vramshim package with the decoder library of the
build tree, build/libvramshim_vae.so, bundled inside it (vramshim/libvramshim_vae.so, where
vramshim._vae looks first), so the installed package decodes wherever it is installed.
VRAMSHIM_VAE_LIB at install time bundles another copy of the library instead. The package holds
a native library, so the wheel is tagged for this platform."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

LIB = "libvramshim_vae.so"


def library():
    """The library to bundle; stops the install, saying what to do, when there is none."""
    path = os.environ.get("VRAMSHIM_VAE_LIB")
    if path:
        if not os.path.isfile(path):
            raise SystemExit("vramshim: VRAMSHIM_VAE_LIB=%s: no such file" % path)
        return path
    path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                         "build", LIB))
    if not os.path.isfile(path):
        raise SystemExit("vramshim: %s does not exist: run `make vae` in the checkout first (or "
                         "set VRAMSHIM_VAE_LIB to the library to bundle)" % path)
    return path


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        self.copy_file(library(), os.path.join(self.build_lib, "vramshim", LIB))


class PlatformDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=PlatformDistribution)
