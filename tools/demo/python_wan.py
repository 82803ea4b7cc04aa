#!/usr/bin/env python3
"""Demo generator in Python: Wan2.1 T2V-1.3B, 832x480x81, on a 12 GB GPU, shaped like
the official pipeline (Wan-Video/Wan2.1, wan/text2video.py) so that the Python patterns of
policy/examples/wan21-t2v-1.3b-12gb.ini apply to it unchanged:

    WanT2V.__init__     puts the DiT (WanModel) and the VAE (WanVAE.__init__) on the GPU
    WanT2V.generate     moves the umt5-xxl T5 encoder to the GPU and encodes the prompts
                        (T5EncoderModel.__call__), runs the denoising loop (WanModel.forward)
                        and decodes the latents (WanVAE.decode)

It allocates through the CUDA driver with ctypes (cuMemAllocAsync/cuMemFreeAsync on a stream,
as PyTorch does with PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync, which `vramshim run`
sets) at the sizes of tools/demo/wan21_t2v.c (the same seed). Run on simcuda with 11.49 GiB:
pass-through runs out of memory while the T5 moves to the GPU; under
`vramshim run --policy policy/examples/wan21-t2v-1.3b-12gb.ini` it completes.

Data is real: every 2 MiB of every weight holds a deterministic 4 KiB stripe, and every weight's
stripes are read back and compared with their checksum at the end (a weight moved to host memory
and back must come back bit for bit). "Compute" copies stripes of the weights in use into the
activations (each layer's output stripe is a hash of its inputs' stripes and of a stripe of
every weight it uses), so the video's checksum depends on every model and is the same in every
run that completes, whatever was moved where.

Same interface as the C demo programs (tools/demo/lib/demo.h): --describe, --scale X,
--fit-device, --steps N, --corrupt WEIGHT; the last stdout line is one JSON result object;
exit status 0 completed with intact weights, 1 a weight differs, 2 bad usage or no driver,
3 out of memory, 4 another CUDA error.
"""
import ctypes
import hashlib
import json
import random
import sys

MiB = 1 << 20
STRIPE = 4096
GRANULE = 2 * MiB
CUDA_ERROR_OUT_OF_MEMORY = 2
EXIT_OK, EXIT_CORRUPT, EXIT_USAGE, EXIT_OOM, EXIT_CUDA = 0, 1, 2, 3, 4

SCENARIO = {
    "scenario": "python-wan21-t2v-1.3b",
    "title": "Wan2.1 T2V-1.3B in Python (ctypes, cudaMallocAsync), 832x480x81, on a 12 GB GPU "
             "with 11.49 GiB usable",
    "policy": "wan21-t2v-1.3b-12gb.ini",
    "expected_failure": "text_encoder_load",
    "gpu_bytes": 11766 * MiB,
    "taken_bytes": 0,
    "api": "cuMemAllocAsync",
    "steps": 10,
}

# (name, MiB at scale 1, count): tools/demo/wan21_t2v.c's sizes.
DIT = [("embeddings", 70, 1), ("blocks", 178, 30), ("head", 7, 1)]
VAE = [("encoder", 204, 1), ("decoder", 280, 1)]
T5 = [("token_embedding", 2003, 1), ("blocks", 368, 24)]


def weight_names(prefix, spec):
    """The weights' names, as the C demos make them: MODEL.TENSOR, or MODEL.TENSOR.K."""
    return [("%s.%s.%d" % (prefix, name, i) if count > 1 else "%s.%s" % (prefix, name), mib)
            for name, mib, count in spec for i in range(count)]


WEIGHT_NAMES = [n for prefix, spec in (("t5", T5), ("dit", DIT), ("vae", VAE))
                for n, _ in weight_names(prefix, spec)]
LATENT_FRAMES = 21


class CudaError(Exception):
    def __init__(self, code, name, call, what, size):
        super().__init__("%s failed" % call)
        self.code, self.name, self.call, self.what, self.size = code, name, call, what, size


class Device:
    """The driver through ctypes.CDLL (the GIL is released during calls, as in PyTorch)."""

    def __init__(self, scale):
        self.cu = ctypes.CDLL("libcuda.so.1")
        self.scale = scale
        ctx, dev, stream = ctypes.c_void_p(), ctypes.c_int(), ctypes.c_void_p()
        self.check(self.cu.cuInit(0), "cuInit", "the driver", 0)
        self.check(self.cu.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet", "device 0", 0)
        self.check(self.cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev),
                   "cuDevicePrimaryCtxRetain", "device 0", 0)
        self.check(self.cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent", "device 0", 0)
        self.check(self.cu.cuStreamCreate(ctypes.byref(stream), 0), "cuStreamCreate",
                   "the stream", 0)
        self.stream = stream
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self.check(self.cu.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)),
                   "cuMemGetInfo_v2", "device 0", 0)
        self.total = total.value
        self.used_at_start = total.value - free.value
        self.peak = 0

    def check(self, code, call, what, size):
        if code != 0:
            raise CudaError(code, self.error_name(code), call, what, size)

    def error_name(self, code):
        """The driver's name for a CUresult, as the C demos print it; "error N" without one."""
        name = ctypes.c_char_p()
        if self.cu.cuGetErrorName(code, ctypes.byref(name)) == 0 and name.value:
            return name.value.decode()
        return "error %d" % code

    def size(self, mib):
        return max(STRIPE, int(mib * MiB * self.scale) // STRIPE * STRIPE)

    def alloc(self, what, size):
        ptr = ctypes.c_uint64()
        self.check(self.cu.cuMemAllocAsync(ctypes.byref(ptr), ctypes.c_size_t(size), self.stream),
                   "cuMemAllocAsync", what, size)
        # Like the C demos: the most device memory in use after any allocation, as the driver
        # (or the shim) reports it, less what was in use at start.
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self.check(self.cu.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)),
                   "cuMemGetInfo_v2", "device 0", 0)
        self.peak = max(self.peak, total.value - free.value - self.used_at_start)
        return ptr.value

    def free(self, ptr, size):
        self.check(self.cu.cuMemFreeAsync(ctypes.c_uint64(ptr), self.stream), "cuMemFreeAsync",
                   "a block", size)

    def write(self, ptr, data):
        self.check(self.cu.cuMemcpyHtoD_v2(ctypes.c_uint64(ptr), data, ctypes.c_size_t(len(data))),
                   "cuMemcpyHtoD_v2", "a stripe", len(data))

    def read(self, ptr, size):
        buf = ctypes.create_string_buffer(size)
        self.check(self.cu.cuMemcpyDtoH_v2(buf, ctypes.c_uint64(ptr), ctypes.c_size_t(size)),
                   "cuMemcpyDtoH_v2", "a stripe", size)
        return buf.raw

    def copy(self, dst, src, size):
        self.check(self.cu.cuMemcpyDtoD_v2(ctypes.c_uint64(dst), ctypes.c_uint64(src),
                                           ctypes.c_size_t(size)), "cuMemcpyDtoD_v2", "a stripe",
                   size)

    def zero(self, ptr, size):
        self.check(self.cu.cuMemsetD8Async(ctypes.c_uint64(ptr), 0, ctypes.c_size_t(size),
                                           self.stream), "cuMemsetD8Async", "a block", size)

    def synchronize(self):
        self.check(self.cu.cuStreamSynchronize(self.stream), "cuStreamSynchronize", "the stream", 0)


def stripes(size):
    return range(0, size, GRANULE)


class Weight:
    """A weight tensor: a stripe of deterministic data per 2 MiB, and its checksum."""

    def __init__(self, gpu, name, size):
        self.name, self.size = name, size
        self.ptr = gpu.alloc(name, size)
        digest = hashlib.blake2b(digest_size=16)
        rng = random.Random(name)
        for offset in stripes(size):
            data = rng.getrandbits(STRIPE * 8).to_bytes(STRIPE, "little")
            gpu.write(self.ptr + offset, data)
            digest.update(data)
        self.checksum = digest.digest()

    def intact(self, gpu):
        digest = hashlib.blake2b(digest_size=16)
        for offset in stripes(self.size):
            digest.update(gpu.read(self.ptr + offset, STRIPE))
        return digest.digest() == self.checksum


def mix(*parts):
    """A stripe computed from stripes: what a layer's output depends on."""
    return hashlib.shake_256(b"".join(parts)).digest(STRIPE)


class Buffer:
    """An activation: zeroed; its data is the stripe at `at` (0 unless a layer says which)."""

    def __init__(self, gpu, name, mib):
        self.gpu, self.name, self.size = gpu, name, gpu.size(mib)
        self.ptr = gpu.alloc(name, self.size)
        gpu.zero(self.ptr, self.size)

    def stripe(self, at=0):
        return self.ptr + at * STRIPE % self.size

    def combine(self, src, at=0):
        """As a layer reading src: this buffer's stripe `at` from itself and src's data."""
        gpu = self.gpu
        gpu.write(self.stripe(at), mix(gpu.read(self.stripe(at), STRIPE),
                                       gpu.read(src.stripe(), STRIPE)))

    def free(self):
        self.gpu.free(self.ptr, self.size)


class Model:
    def __init__(self, gpu, prefix, spec):
        self.weights = []
        for label, mib in weight_names(prefix, spec):
            self.weights.append(Weight(gpu, label, gpu.size(mib)))
            run.loaded(self.weights[-1])
        gpu.synchronize()

    def apply(self, gpu, out, step):
        """One forward: out's data from itself and a stripe of every weight (which stripe
        depends on step, so every step reads other memory)."""
        parts = [gpu.read(out.stripe(), STRIPE)]
        parts += [gpu.read(w.ptr + (step * GRANULE) % w.size, STRIPE) for w in self.weights]
        gpu.write(out.stripe(), mix(*parts))


class WanModel(Model):
    """The DiT."""

    def __init__(self, gpu):
        super().__init__(gpu, "dit", DIT)

    def forward(self, gpu, latents, context, step):
        attn = Buffer(gpu, "dit.attention", 512)
        ffn = Buffer(gpu, "dit.ffn", 640)
        out = Buffer(gpu, "dit.out", 384)
        for cond in range(2):  # conditional, unconditional
            attn.combine(context[cond])
            attn.combine(latents)
            self.apply(gpu, attn, 2 * step + cond)
            ffn.combine(attn)
            out.combine(ffn)
        latents.combine(out)
        for b in (out, ffn, attn):
            b.free()


class WanVAE(Model):
    def __init__(self, gpu):
        super().__init__(gpu, "vae", VAE)

    def decode(self, gpu, latents):
        cache = Buffer(gpu, "vae.feature_cache", 3072)
        video = Buffer(gpu, "video", 370)
        for f in range(LATENT_FRAMES):
            frame = Buffer(gpu, "vae.frame", 192)
            frame.combine(latents)
            frame.combine(cache)  # the causal cache carries earlier frames
            self.apply(gpu, frame, f)
            cache.combine(frame)
            video.combine(frame, at=f)
            frame.free()
        gpu.synchronize()
        digest = hashlib.blake2b(digest_size=16)
        for f in range(LATENT_FRAMES):
            digest.update(gpu.read(video.stripe(f), STRIPE))
        cache.free()
        video.free()
        return digest.hexdigest()


class T5EncoderModel:
    """umt5-xxl: on the CPU until generate() moves it to the GPU."""

    def __init__(self):
        self.model = None

    def to_gpu(self, gpu):
        self.model = Model(gpu, "t5", T5)

    def __call__(self, gpu, prompt):
        hidden = Buffer(gpu, "t5.hidden", 64)
        self.model.apply(gpu, hidden, prompt)
        context = Buffer(gpu, "context.negative" if prompt else "context.prompt", 8)
        context.combine(hidden)
        hidden.free()
        return context


class WanT2V:
    def __init__(self, gpu):
        run.phase("dit_load", "WanT2V.__init__")
        self.model = WanModel(gpu)
        run.phase("vae_load", "WanT2V.__init__")
        self.vae = WanVAE(gpu)
        self.text_encoder = T5EncoderModel()

    def generate(self, gpu, steps):
        run.phase("text_encoder_load", "WanT2V.generate")
        self.text_encoder.to_gpu(gpu)
        run.phase("text_encode", "T5EncoderModel.__call__")
        context = [self.text_encoder(gpu, p) for p in range(2)]
        gpu.synchronize()
        run.phase("denoise", "WanModel.forward")
        latents = Buffer(gpu, "latents", 8)
        for step in range(steps):
            self.model.forward(gpu, latents, context, step)
        gpu.synchronize()
        run.phase("decode", "WanVAE.decode")
        video = self.vae.decode(gpu, latents)
        for b in [latents] + context:
            b.free()
        return video


class Run:
    """Progress, the weights to verify, and the result line."""

    def __init__(self, corrupt):
        self.stage = self.function = None
        self.weights = []
        self.corrupt = corrupt
        self.gpu = None

    def phase(self, stage, function):
        self.stage, self.function = stage, function
        sys.stderr.write("%s: stage %s (%s)\n" % (SCENARIO["scenario"], stage, function))

    def loaded(self, weight):
        self.weights.append(weight)
        if weight.name == self.corrupt:
            first = self.gpu.read(weight.ptr, 1)
            self.gpu.write(weight.ptr, bytes([first[0] ^ 0xFF]))

    def result(self, gpu, failure=None, bad=(), video=None, steps=0):
        r = {"scenario": SCENARIO["scenario"], "completed": failure is None,
             "failed_stage": self.stage if failure else None,
             "failed_function": self.function if failure else None,
             "error": failure.name if failure else None,
             "call": failure.call if failure else None,
             "block": failure.what if failure else None,
             "request_bytes": failure.size if failure else None,
             "checksums_ok": None if failure else not bad,
             "corrupt_weights": list(bad),
             "video_checksum": video,
             "weights": len(self.weights),
             "weight_bytes": sum(w.size for w in self.weights),
             "peak_device_bytes": gpu.peak if gpu else 0,
             "device_total_bytes": gpu.total if gpu else 0,
             "scale": gpu.scale if gpu else 0, "steps": steps, "api": SCENARIO["api"]}
        print(json.dumps(r))


USAGE = """usage: python_wan.py [--describe] [--scale X | --fit-device] [--steps N] [--corrupt WEIGHT]

%s.
Runs the pipeline on device 0 of the CUDA driver libcuda.so.1 resolves to (the simulated one with
LD_LIBRARY_PATH=build/sim), and prints one JSON result line.

  --describe        print the scenario (GPU size, policy, expected failure, the weight
                    names --corrupt takes) as JSON
  --scale X         multiply every size by X (default 1: the reported run's sizes)
  --fit-device      scale to the device: X = its total memory / %.2f GiB
  --steps N         denoising steps (default %d)
  --corrupt WEIGHT  damage one byte of WEIGHT after loading it (checks the check), e.g. dit.blocks.3

Exit status: 0 completed, checksums intact; 1 a weight's checksum differs; 2 bad usage or no
driver; 3 out of memory; 4 another CUDA error.""" % (
    SCENARIO["title"], SCENARIO["gpu_bytes"] / (1 << 30), SCENARIO["steps"])


def parse(argv):
    opts = {"scale": 1.0, "fit": False, "steps": SCENARIO["steps"], "corrupt": None}
    args = iter(argv)
    for a in args:
        if a in ("-h", "--help"):
            print(USAGE)
            sys.exit(EXIT_OK)
        if a == "--describe":
            described = {k: SCENARIO[k] for k in (
                "scenario", "title", "policy", "expected_failure", "gpu_bytes", "taken_bytes",
                "api", "steps")}
            described["weight_names"] = WEIGHT_NAMES
            print(json.dumps(described))
            sys.exit(EXIT_OK)
        if a == "--fit-device":
            opts["fit"] = True
            continue
        if a not in ("--scale", "--steps", "--corrupt"):
            sys.stderr.write("%s: unknown option '%s' (see --help)\n" % (SCENARIO["scenario"], a))
            sys.exit(EXIT_USAGE)
        value = next(args, None)
        try:
            if a == "--scale":
                opts["scale"] = float(value)
                if not 0 < opts["scale"] <= 64:
                    raise ValueError
            elif a == "--steps":
                opts["steps"] = int(value)
                if opts["steps"] < 1:
                    raise ValueError
            else:
                if not value:
                    raise ValueError
                opts["corrupt"] = value
                if value not in WEIGHT_NAMES:
                    sys.stderr.write("%s: --corrupt: no weight named '%s' (--describe lists "
                                     "\"weight_names\")\n" % (SCENARIO["scenario"], value))
                    sys.exit(EXIT_USAGE)
        except (TypeError, ValueError):
            what = {"--scale": "a number above 0 and at most 64", "--steps": "a whole number "
                    "above 0", "--corrupt": "a weight name, e.g. dit.blocks.3"}[a]
            sys.stderr.write("%s: expected %s, got '%s'\n" % (a, what, value or ""))
            sys.exit(EXIT_USAGE)
    return opts


run = None


def main(argv):
    global run
    opts = parse(argv)
    run = Run(opts["corrupt"])
    gpu = None
    try:
        gpu = Device(1.0)
        if opts["fit"]:
            gpu.scale = gpu.total / SCENARIO["gpu_bytes"]
        else:
            gpu.scale = opts["scale"]
        run.gpu = gpu
        sys.stderr.write("%s: %s; device %.2f GiB, scale %.4g\n" % (
            SCENARIO["scenario"], SCENARIO["title"], gpu.total / (1 << 30), gpu.scale))
        pipeline = WanT2V(gpu)
        video = pipeline.generate(gpu, opts["steps"])
        gpu.synchronize()
    except OSError as e:
        sys.stderr.write("%s: cannot load the CUDA driver: %s\n" % (SCENARIO["scenario"], e))
        return EXIT_USAGE
    except CudaError as e:
        # Worded as the C demos word it (tools/demo/lib/run.c, vs_demo_check).
        sys.stderr.write("%s: %s failed in stage %s (%s) for %s (%d bytes): %s\n" % (
            SCENARIO["scenario"], e.call, run.stage, run.function, e.what, e.size, e.name))
        run.result(gpu, failure=e, steps=opts["steps"])
        return EXIT_OOM if e.code == CUDA_ERROR_OUT_OF_MEMORY else EXIT_CUDA
    bad = [w.name for w in run.weights if not w.intact(gpu)]
    sys.stderr.write("%s: completed; %d weights (%.2f GiB) checked, %d differ; video %s\n" % (
        SCENARIO["scenario"], len(run.weights), sum(w.size for w in run.weights) / (1 << 30),
        len(bad), video))
    run.result(gpu, bad=bad, video=video, steps=opts["steps"])
    return EXIT_CORRUPT if bad else EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
