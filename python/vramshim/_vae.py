"""libvramshim_vae.so through ctypes: the structs of include/vramshim_vae.h and one open
decoder per module (Decoder). Every call into the library goes through this module.

The library is found, in this order: $VRAMSHIM_VAE_LIB (only there when set); inside this
package (`pip install ./python` bundles it); the build tree (python/../build/) when the package
is used from a checkout; a `make install` (PREFIX/lib/vramshim/python/../../, i.e. PREFIX/lib/);
the dynamic linker's search path (`libvramshim_vae.so`). library() names every place it tried."""
import ctypes
import os

OK, ERR_ARG, ERR_WEIGHTS, ERR_BUDGET, ERR_OOM, ERR_NO_GPU = 0, -1, -2, -3, -4, -5
F32, F16, BF16 = 0, 1, 2
ARCH_AUTO, ARCH_SD, ARCH_SDXL, ARCH_SD3, ARCH_FLUX, ARCH_WAN21, ARCH_WAN22 = range(7)
MODES = {"exact": 0, "blend": 1, "monolithic": 2}
_MSG = 512


class Tensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("data", ctypes.c_void_p), ("dtype", ctypes.c_int),
                ("ndim", ctypes.c_int), ("shape", ctypes.c_int64 * 8)]


ALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


class Allocator(ctypes.Structure):
    _fields_ = [("alloc", ALLOC), ("free", FREE), ("ctx", ctypes.c_void_p)]


class DecodeArgs(ctypes.Structure):
    _fields_ = [("latents", ctypes.c_void_p), ("latents_dtype", ctypes.c_int),
                ("out", ctypes.c_void_p), ("out_dtype", ctypes.c_int), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * 5), ("mode", ctypes.c_int), ("tile_px", ctypes.c_int),
                ("budget", ctypes.c_size_t), ("scaled", ctypes.c_int),
                ("stream", ctypes.c_void_p), ("allocator", ctypes.POINTER(Allocator)),
                ("device", ctypes.c_int)]  # vramshim_vae_device; 0: AUTO, from the pointers


class Plan(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int), ("tiles_y", ctypes.c_int), ("tiles_x", ctypes.c_int),
                ("tile_h", ctypes.c_int), ("tile_w", ctypes.c_int), ("halo_px", ctypes.c_int),
                ("predicted_peak", ctypes.c_size_t), ("predicted_parked", ctypes.c_size_t),
                ("measured_peak", ctypes.c_size_t), ("description", ctypes.c_char * 320)]


class Error(Exception):
    """A refusal of the library: `code` is its status, the message its line."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _candidates():
    env = os.environ.get("VRAMSHIM_VAE_LIB")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(here, "libvramshim_vae.so"),  # pip install ./python
            os.path.normpath(os.path.join(here, "..", "..", "build", "libvramshim_vae.so")),
            os.path.normpath(os.path.join(here, "..", "..", "..", "libvramshim_vae.so")),
            "libvramshim_vae.so"]


_lib = None
_lib_error = None


def library():
    """The bound library; raises Error(ERR_ARG) naming where it looked when there is none."""
    global _lib, _lib_error
    if _lib is None and _lib_error is None:
        tried = []
        for path in _candidates():
            if os.sep in path and not os.path.exists(path):
                tried.append(path)
                continue
            try:
                _lib = _bind(ctypes.CDLL(path))
                break
            except (OSError, AttributeError) as e:
                tried.append("%s (%s)" % (path, e))
        if _lib is None:
            _lib_error = "libvramshim_vae.so not found (tried %s%s)" % (
                ", ".join(tried), "" if os.environ.get("VRAMSHIM_VAE_LIB") else
                "; set VRAMSHIM_VAE_LIB to the library, or reinstall the package with "
                "`pip install ./python` after `make`")
    if _lib is None:
        raise Error(ERR_ARG, _lib_error)
    return _lib


def _bind(lib):
    msg = [ctypes.c_char_p, ctypes.c_size_t]
    handle = ctypes.c_void_p
    lib.vramshim_vae_open_tensors.argtypes = [ctypes.POINTER(Tensor), ctypes.c_size_t,
                                              ctypes.c_char_p, ctypes.c_int,
                                              ctypes.POINTER(handle)] + msg
    lib.vramshim_vae_close.argtypes = [handle]
    lib.vramshim_vae_close.restype = None
    lib.vramshim_vae_decode.argtypes = [handle, ctypes.POINTER(DecodeArgs),
                                        ctypes.POINTER(Plan)] + msg
    return lib


def _call(fn, *args):
    buf = ctypes.create_string_buffer(_MSG)
    rc = fn(*args, buf, _MSG)
    if rc != OK:
        raise Error(rc, buf.value.decode(errors="replace"))


class Decoder:
    """One open handle over `tensors` [(name, torch tensor)], which it keeps alive: the library
    uses them in place for as long as the handle is open."""

    def __init__(self, tensors, dtypes, config_json, arch):
        lib = library()
        self._tensors = tensors
        arr = (Tensor * len(tensors))()
        for slot, (name, t) in zip(arr, tensors):
            slot.name = name.encode()
            slot.data = t.data_ptr()
            slot.dtype = dtypes[t.dtype]
            slot.ndim = t.dim()
            for i, d in enumerate(t.shape):
                slot.shape[i] = d
        self._handle = ctypes.c_void_p()
        _call(lib.vramshim_vae_open_tensors, arr, len(tensors),
              config_json.encode() if config_json else None, arch, ctypes.byref(self._handle))
        self._close = lib.vramshim_vae_close

    def __del__(self):
        if getattr(self, "_handle", None):
            self._close(self._handle)
            self._handle = None

    def decode(self, args):
        plan = Plan()
        _call(library().vramshim_vae_decode, self._handle, ctypes.byref(args),
              ctypes.byref(plan))
        return plan
