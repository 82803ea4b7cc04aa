"""The bundled tiled VAE decoder in place of a program's own `vae.decode` (docs/hooks.md).

    import vramshim.decode
    with vramshim.decode.install(mode="exact", budget="2GiB"):
        image = pipe(prompt).images             # AutoencoderKL.decode runs the bundled decoder
    x = vramshim.decode.decode(pipe.vae, latents)   # one direct call

install() replaces the decode method of every class of TARGETS (now for the modules already
imported, at import for the others) until its handle's remove(). The replacement reads the
module's own parameters in place (no copy, no second load), decodes with libvramshim_vae.so and
returns what the original returns. Whatever it cannot decode (a configuration, dtype or device
the decoder lacks, no GPU backend, a missing library) runs the original method after one
`vramshim:` line giving the reason, once per reason. With VRAMSHIM_LOG=info each substituted
decode logs one line: target, plan, predicted and measured peak working memory, time.

Budget: bytes or a size string ("512MiB", "2GiB"). None: on a GPU, the memory free at the call
(the device's free memory plus PyTorch's cached free blocks) less max(256 MiB, 5% of the
device); on the CPU, half of MemAvailable.
"""
import contextlib
import ctypes
import functools
import importlib.abc
import inspect
import json
import re
import sys
import threading
import time
import weakref

from . import _shim, _vae, _wrap, autohook

__all__ = ["install", "decode", "Unsupported", "TARGETS", "parse_size"]

MODES = ("exact", "blend")


class Unsupported(Exception):
    """Why the bundled decoder cannot take this call (the original method runs instead)."""


# --- sizes -------------------------------------------------------------------------------------

_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
_UNIT_OF = {u.lower(): v for u, v in _UNITS.items()}
# As the policy files' sizes (policy/size.h): binary units, any case.
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KiB|MiB|GiB|TiB)?\s*\Z", re.I)


def parse_size(value):
    """Bytes from an int or a string as the CLI takes it ("512MiB", "1.5GiB", "1048576")."""
    if isinstance(value, bool):
        raise ValueError("budget: expected a size, not %r" % (value,))
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("budget: %d is not a positive number of bytes" % value)
        return value
    m = _SIZE.match(value) if isinstance(value, str) else None
    if not m:
        raise ValueError("budget: %r is not a size (bytes, or a number with B, KiB, MiB, GiB "
                         "or TiB, e.g. 2GiB)" % (value,))
    n = int(float(m.group(1)) * _UNIT_OF[(m.group(2) or "B").lower()])
    if n <= 0:
        raise ValueError("budget: %r is zero" % (value,))
    return n


def _human(n):
    for unit in ("GiB", "MiB", "KiB"):
        if n >= _UNITS[unit]:
            return "%.2f %s" % (n / _UNITS[unit], unit)
    return "%d B" % n


# --- module adapters: what the hook reads from each target's module ----------------------------

class _Job:
    """One decode as the library takes it: the tensors to open it with, and the call."""

    def __init__(self, arch, tensors, config, latents, out_shape, out_dtype, finish):
        self.arch, self.tensors, self.config = arch, tensors, config
        self.latents, self.out_shape, self.out_dtype = latents, out_shape, out_dtype
        self.finish = finish  # tensor -> tensor, in place (Wan's clamp)


def _params(module, prefixes):
    return [(n, p) for n, p in module.named_parameters() if n.startswith(prefixes)]


def _kl_job(module, z):
    """diffusers AutoencoderKL: decoder.* and post_quant_conv.* by their diffusers names."""
    cfg = module.config
    if z.dim() != 4:
        raise Unsupported("AutoencoderKL latents of %d dimensions (expected NCHW)" % z.dim())
    if getattr(cfg, "act_fn", "silu") != "silu":
        raise Unsupported("AutoencoderKL with act_fn %r (the decoder has silu)" % cfg.act_fn)
    if not getattr(cfg, "mid_block_add_attention", True):
        raise Unsupported("AutoencoderKL without mid-block attention")
    if any(t != "UpDecoderBlock2D" for t in cfg.up_block_types):
        raise Unsupported("AutoencoderKL up blocks %s (the decoder has UpDecoderBlock2D)" %
                          list(cfg.up_block_types))
    config = {k: cfg[k] for k in ("norm_num_groups", "scaling_factor", "shift_factor")
              if cfg.get(k) is not None}
    w = module.decoder.conv_out.weight
    n, _, h, wd = z.shape
    up = 2 ** (len(cfg.block_out_channels) - 1)
    return _Job(_vae.ARCH_AUTO, _params(module, ("decoder.", "post_quant_conv.")), config, z,
                (n, w.shape[0], up * h, up * wd), w.dtype, None)


# Wan VAE variants: (matches(config), arch). Wan 2.1 has neither residual up blocks nor a patch;
# Wan 2.2 (TI2V-5B, Ovi) has both, patch_size 2.
WAN_VARIANTS = [
    (lambda cfg: not cfg.get("is_residual") and cfg.get("patch_size") is None, _vae.ARCH_WAN21),
    (lambda cfg: bool(cfg.get("is_residual")) and cfg.get("patch_size") == 2, _vae.ARCH_WAN22),
]


def _wan_job(module, z):
    """diffusers AutoencoderKLWan: decoder.* and post_quant_conv.*; output clamped to [-1, 1]."""
    cfg = module.config
    if z.dim() != 5:
        raise Unsupported("AutoencoderKLWan latents of %d dimensions (expected NCTHW)" % z.dim())
    for matches, arch in WAN_VARIANTS:
        if matches(cfg):
            break
    else:
        raise Unsupported("AutoencoderKLWan configuration (is_residual %s, patch_size %s) "
                          "matches no supported Wan VAE" % (cfg.get("is_residual"),
                                                            cfg.get("patch_size")))
    w = module.decoder.conv_out.weight
    n, _, t, h, wd = z.shape
    # Wan 2.2's conv_out emits 3 * patch^2 channels, spread over patch x patch pixels.
    patch = cfg.get("patch_size") or 1
    up = patch * 2 ** (len(cfg.dim_mult) - 1)
    up_t = 2 ** sum(map(bool, cfg.temperal_downsample))
    return _Job(arch, _params(module, ("decoder.", "post_quant_conv.")), None, z,
                (n, w.shape[0] // (patch * patch), 1 + up_t * (t - 1), up * h, up * wd), w.dtype,
                lambda out: out.clamp_(-1.0, 1.0))


def _wan_repo_job(model, z):
    """The Wan2.1 repository's WanVAE_ (original Wan names: conv2.*, decoder.*)."""
    tensors = _params(model, ("decoder.", "conv2."))
    named = dict(tensors)
    w = named.get("decoder.head.2.weight")
    if w is None:
        raise Unsupported("WanVAE model without decoder.head.2.weight (not a Wan 2.1 VAE)")
    n, _, t, h, wd = z.shape
    return _Job(_vae.ARCH_WAN21, tensors, None, z.to(w.dtype),
                (n, w.shape[0], 1 + 4 * (t - 1), 8 * h, 8 * wd), w.dtype, None)


def _diffusers(job):
    """decode(z, return_dict=True, ...) -> DecoderOutput(sample=...) or (sample,)."""
    def substitute(label, obj, bound, mode, budget):
        from diffusers.models.autoencoders.vae import DecoderOutput
        out = run(label, obj, job(obj, bound.arguments["z"]), mode, budget)
        return DecoderOutput(sample=out) if bound.arguments.get("return_dict", True) else (out,)
    return substitute


def _wan_repo(label, obj, bound, mode, budget):
    """wan.modules.vae.WanVAE.decode(zs): a list of scaled CTHW latents -> a list of float CTHW
    videos clamped to [-1, 1]; the latents are unscaled here as WanVAE_.decode does
    (z / scale[1] + scale[0], per channel)."""
    mean, inv_std = obj.scale
    videos = []
    for u in bound.arguments["zs"]:
        z = u.unsqueeze(0)
        z = z / inv_std.view(1, -1, 1, 1, 1) + mean.view(1, -1, 1, 1, 1)
        out = run(label, obj.model, _wan_repo_job(obj.model, z), mode, budget)
        videos.append(out.float().clamp_(-1, 1).squeeze(0))
    return videos


def _comfy_job(model, z):
    """ComfyUI's first_stage_model: the LDM AutoencoderKL (decoder.*, post_quant_conv.*, LDM
    names) for NCHW latents, comfy.ldm.wan.vae.WanVAE (decoder.*, conv2.*, original Wan
    names) for NCTHW ones; both take unscaled latents (ComfyUI scales in its latent format)."""
    kind = "%s.%s" % (type(model).__module__, type(model).__name__)
    wan = kind == "comfy.ldm.wan.vae.WanVAE"
    if not wan and kind not in ("comfy.ldm.models.autoencoder.AutoencoderKL",
                                "comfy.ldm.models.autoencoder.AutoencodingEngineLegacy"):
        raise Unsupported("ComfyUI first_stage_model %s (the decoder takes the LDM "
                          "AutoencoderKL and Wan 2.1's WanVAE)" % kind)
    if z.dim() != (5 if wan else 4):
        raise Unsupported("%s latents of %d dimensions" % (kind, z.dim()))
    tensors = _params(model, ("decoder.", "conv2." if wan else "post_quant_conv."))
    w = dict(tensors).get("decoder.head.2.weight" if wan else "decoder.conv_out.weight")
    if w is None:
        raise Unsupported("%s without its output convolution" % kind)
    up = 8 if wan else 2 ** max(int(n.split(".")[2]) for n, _ in tensors
                                if n.startswith("decoder.up."))
    n, _, *rest = z.shape
    t, h, wd = rest if wan else (None, *rest)
    shape = (n, w.shape[0], 1 + 4 * (t - 1), up * h, up * wd) if wan else \
        (n, w.shape[0], up * h, up * wd)
    return _Job(_vae.ARCH_WAN21 if wan else _vae.ARCH_AUTO, tensors, None, z, shape, w.dtype,
                None)


def _comfy(label, obj, bound, mode, budget):
    """comfy.sd.VAE.decode(samples_in, vae_options={}) and decode_tiled(samples, ...): the
    model loaded as ComfyUI loads it, latents in the VAE's dtype on its device, its own
    process_output, float on the output device, channels last."""
    options = bound.arguments.get("vae_options")
    if options:
        raise Unsupported("vae_options %s" % sorted(options))
    import comfy.model_management as mm
    samples = bound.arguments.get("samples_in", bound.arguments.get("samples"))
    obj.throw_exception_if_invalid()
    mm.load_models_gpu([obj.patcher],
                       memory_required=obj.memory_used_decode(samples.shape, obj.vae_dtype),
                       force_full_load=obj.disable_offload)
    model = obj.first_stage_model
    z = samples.to(obj.vae_dtype).to(obj.device)
    out = run(label, model, _comfy_job(model, z), mode, budget)
    return obj.process_output(out.to(obj.output_device).float()).movedim(1, -1)


class Target:
    """A decode method the hook replaces: module `module`, class `cls`, method `method`;
    substitute(label, object, bound arguments, mode, budget) returns what the original
    returns, or raises Unsupported or _vae.Error."""

    def __init__(self, label, module, cls, method, substitute):
        self.label, self.module, self.cls, self.method = label, module, cls, method
        self.substitute = substitute

    def resolve(self):
        """The class, or None when its module is not imported yet."""
        mod = sys.modules.get(self.module)
        return getattr(mod, self.cls, None) if mod is not None else None


TARGETS = [
    Target("diffusers AutoencoderKL.decode", "diffusers.models.autoencoders.autoencoder_kl",
           "AutoencoderKL", "decode", _diffusers(_kl_job)),
    Target("diffusers AutoencoderKLWan.decode",
           "diffusers.models.autoencoders.autoencoder_kl_wan", "AutoencoderKLWan", "decode",
           _diffusers(_wan_job)),
    # ComfyUI (not on PyPI): tested on tests/progs/standins/comfy/.
    Target("ComfyUI VAE.decode", "comfy.sd", "VAE", "decode", _comfy),
    Target("ComfyUI VAE.decode_tiled", "comfy.sd", "VAE", "decode_tiled", _comfy),
    # Wan-Video/Wan2.1 (not on PyPI): tested on tests/progs/standins/wan/modules/vae.py.
    Target("Wan2.1 WanVAE.decode", "wan.modules.vae", "WanVAE", "decode", _wan_repo),
]
_JOBS = {"diffusers AutoencoderKL.decode": _kl_job,
         "diffusers AutoencoderKLWan.decode": _wan_job}

# --- running a decode ---------------------------------------------------------------------------

_DTYPES = None
_decoders = weakref.WeakKeyDictionary()  # module -> (key, _vae.Decoder)
_lock = threading.Lock()
_said = set()


def _dtypes():
    global _DTYPES
    if _DTYPES is None:
        import torch
        _DTYPES = {torch.float32: _vae.F32, torch.float16: _vae.F16, torch.bfloat16: _vae.BF16}
    return _DTYPES


def _say_once(reason):
    with _lock:
        if reason in _said:
            return
        _said.add(reason)
    _shim.log("warn", reason)


def _decoder(module, job):
    """The module's open decoder, reopened when a parameter moved or changed (to(), in-place
    loads bump the tensor's version)."""
    key = tuple((n, t.data_ptr(), t.dtype, t.device, t._version) for n, t in job.tensors)
    entry = _decoders.get(module)
    if entry is not None and entry[0] == key:
        return entry[1]
    _decoders.pop(module, None)
    dec = _vae.Decoder(job.tensors, _dtypes(), json.dumps(job.config) if job.config else None,
                       job.arch)
    _decoders[module] = (key, dec)
    return dec


def _default_budget(device):
    import torch
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return max(free + cached - max(256 << 20, total // 20), 1)
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 // 2
    return 2 << 30


class _TorchAllocator:
    """Working memory from PyTorch's caching allocator on the decode's stream."""

    def __init__(self, device):
        import torch
        self._torch, self._device = torch, device.index
        self.alloc = _vae.ALLOC(self._alloc)
        self.free = _vae.FREE(self._free)
        self.struct = _vae.Allocator(self.alloc, self.free, None)

    def _alloc(self, ctx, size, stream):
        try:
            return self._torch.cuda.caching_allocator_alloc(size, self._device, stream or 0)
        except Exception:  # out of memory: the library reports VRAMSHIM_VAE_ERR_OOM
            return None

    def _free(self, ctx, ptr, stream):
        self._torch.cuda.caching_allocator_delete(ptr)


def _check(job):
    dtypes = _dtypes()
    z = job.latents
    if z.device.type not in ("cpu", "cuda"):
        raise Unsupported("latents on device %s (the decoder takes cpu and cuda)" % z.device)
    if z.dtype not in dtypes:
        raise Unsupported("latents of dtype %s (the decoder takes float32, float16, bfloat16)"
                          % z.dtype)
    for name, t in job.tensors:
        if t.device != z.device or t.dtype not in dtypes or not t.is_contiguous():
            raise Unsupported("parameter %s is %s %s%s while the latents are %s" % (
                name, t.device, t.dtype, "" if t.is_contiguous() else " non-contiguous",
                z.device))
    if job.out_dtype != z.dtype:
        raise Unsupported("latents of dtype %s for weights of dtype %s" % (z.dtype,
                                                                         job.out_dtype))


def run(target_label, module, job, mode, budget):
    """Decodes `job` for `module`; the output tensor. Raises Unsupported or _vae.Error."""
    import torch
    _check(job)
    z = job.latents.contiguous()
    dtypes = _dtypes()
    out = torch.empty(job.out_shape, dtype=job.out_dtype, device=z.device)
    args = _vae.DecodeArgs()
    args.latents, args.latents_dtype = z.data_ptr(), dtypes[z.dtype]
    args.out, args.out_dtype = out.data_ptr(), dtypes[out.dtype]
    args.ndim = z.dim()
    for i, d in enumerate(z.shape):
        args.shape[i] = d
    # Wan's decoder is exact in every tiling: blend (cross-faded tiles) means exact there.
    args.mode = _vae.MODES["exact" if job.arch in (_vae.ARCH_WAN21, _vae.ARCH_WAN22) else mode]
    args.budget = parse_size(budget) if budget is not None else _default_budget(z.device)
    args.scaled = 0
    alloc = None
    if z.device.type == "cuda":
        stream = torch.cuda.current_stream(z.device)
        args.stream = stream.cuda_stream
        alloc = _TorchAllocator(z.device)
        args.allocator = ctypes.pointer(alloc.struct)
    start = time.perf_counter()
    with torch.no_grad():
        plan = _decoder(module, job).decode(args)
        if job.finish:
            job.finish(out)
    if _shim._level >= _shim._LEVELS["info"]:
        if z.device.type == "cuda":
            torch.cuda.current_stream(z.device).synchronize()
        _shim.log("info", "decode %s (%s %s %s -> %s): %s; peak working memory predicted %s, "
                  "measured %s; %.3f s" % (
                      target_label, z.device, str(z.dtype).replace("torch.", ""),
                      "x".join(map(str, z.shape)), "x".join(map(str, out.shape)),
                      plan.description.decode(errors="replace"),
                      _human(plan.predicted_peak), _human(plan.measured_peak),
                      time.perf_counter() - start))
    return out


def _target_for(module):
    for target in TARGETS:
        cls = target.resolve()
        if cls is not None and isinstance(module, cls):
            return target
    raise Unsupported("%s is not a module the decoder hooks (%s)" % (
        type(module).__name__, ", ".join(t.label for t in TARGETS)))


def decode(vae_module, latents, mode="exact", budget=None):
    """Decodes `latents` (as `vae_module.decode` takes them) with the bundled decoder and the
    module's own weights; returns the tensor the original decode's `.sample` would hold.
    Raises Unsupported, or vramshim._vae.Error with the library's message."""
    if mode not in MODES:
        raise ValueError("mode: %r is not one of %s" % (mode, ", ".join(MODES)))
    if budget is not None:
        parse_size(budget)
    target = _target_for(vae_module)
    if target.label not in _JOBS:
        raise Unsupported("decode() takes diffusers modules; call %s itself under install()" %
                          target.label)
    return run(target.label, vae_module, _JOBS[target.label](vae_module, latents), mode, budget)


# --- installing the hooks -----------------------------------------------------------------------

_handles = []       # installed handles, innermost last: the last one's settings apply
_patched = {}       # Target -> (class, original attribute or _ABSENT)
_ABSENT = object()


def _settings():
    with _lock:
        return (_handles[-1].mode, _handles[-1].budget) if _handles else None


def _make_hook(target, original):
    sig = inspect.signature(original)

    @functools.wraps(original)
    def vramshim_decode(self, *args, **kwargs):
        settings = _settings()
        if settings is None:
            return original(self, *args, **kwargs)
        try:
            bound = sig.bind(self, *args, **kwargs)
            # diffusers' @apply_forward_hook: an offloaded module's weights come to the device.
            hook = getattr(self, "_hf_hook", None)
            if hook is not None and hasattr(hook, "pre_forward"):
                hook.pre_forward(self)
            # The original's code does not run, so the stage a policy pattern gives it
            # (vramshim.autohook) is opened here.
            stage = autohook.matcher.method_stage(type(self), target.method) \
                if autohook.matcher else None
            with _wrap.Stage(stage) if stage else contextlib.nullcontext():
                return target.substitute(target.label, self, bound, *settings)
        except (Unsupported, _vae.Error, TypeError) as e:
            _say_once("decode: %s runs unchanged: %s" % (target.label, e))
            return original(self, *args, **kwargs)

    vramshim_decode.__vramshim_original__ = original
    return vramshim_decode


def _patch(target):
    cls = target.resolve()
    if cls is None or target in _patched:
        return
    original = cls.__dict__.get(target.method, _ABSENT)
    current = getattr(cls, target.method, None)
    if current is None:
        _say_once("decode: %s.%s has no method %s: this version is not hooked" % (
            target.module, target.cls, target.method))
        return
    setattr(cls, target.method, _make_hook(target, current))
    _patched[target] = (cls, original)


def _unpatch(target):
    cls, original = _patched.pop(target)
    if original is _ABSENT:
        delattr(cls, target.method)
    else:
        setattr(cls, target.method, original)


class _Watcher(importlib.abc.MetaPathFinder):
    """Patches a target's class right after its module is first imported."""

    _busy = threading.local()

    def find_spec(self, fullname, path=None, target=None):
        wanted = [t for t in TARGETS if t.module == fullname and t not in _patched]
        # Another finder that also asks the rest of sys.meta_path (the auto-hook's) comes back
        # here: that nested call steps aside.
        if not wanted or not _handles or getattr(self._busy, "on", False):
            return None
        self._busy.on = True
        try:
            spec = self._find_elsewhere(fullname, path, target)
        finally:
            self._busy.on = False
        if spec is None:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            for t in wanted:
                _patch(t)

        spec.loader = _LoaderProxy(loader, exec_and_patch)
        return spec


    def _find_elsewhere(self, fullname, path, target):
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                return spec
        return None


class _LoaderProxy:
    def __init__(self, loader, exec_module):
        self._loader, self.exec_module = loader, exec_module

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)


_watcher = _Watcher()


class Handle:
    """Substitution on while installed; remove() (or leaving the `with` block) undoes it."""

    def __init__(self, mode, budget):
        self.mode, self.budget = mode, budget

    def remove(self):
        with _lock:
            if self not in _handles:
                return
            _handles.remove(self)
            last = not _handles
        if last:
            for target in list(_patched):
                _unpatch(target)
            if _watcher in sys.meta_path:
                sys.meta_path.remove(_watcher)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def install(mode="exact", budget=None):
    """Substitutes the bundled decoder for every target's decode method; returns a Handle."""
    if mode not in MODES:
        raise ValueError("mode: %r is not one of %s" % (mode, ", ".join(MODES)))
    if budget is not None:
        parse_size(budget)
    handle = Handle(mode, budget)
    with _lock:
        _handles.append(handle)
    for target in TARGETS:
        _patch(target)
    if _watcher not in sys.meta_path:
        sys.meta_path.insert(0, _watcher)
    return handle


def install_from_environment():
    """`vramshim run --decode`: VRAMSHIM_DECODE=exact|blend|off, VRAMSHIM_DECODE_BUDGET."""
    import os
    mode = os.environ.get("VRAMSHIM_DECODE", "off")
    if mode == "off":
        return None
    budget = os.environ.get("VRAMSHIM_DECODE_BUDGET") or None
    try:
        handle = install(mode, budget)
    except ValueError as e:
        _shim.log("error", "VRAMSHIM_DECODE: %s; decode substitution is off" % e)
        return None
    _shim.log("info", "decode substitution on (%s%s)" % (
        mode, ", budget %s" % budget if budget else ""))
    return handle
