"""Cases of the Python auto-hook on real libraries (test_python_autohook.c): run under
`vramshim run --policy tests/progs/py_autohook_CASE.ini` as `py_autohook.py CASE`; prints
"LABEL STAGE" lines (py_stages_shared.observe: the shim's current stage, "-" for none)."""
import sys
import threading

import vramshim
from py_stages_shared import observe, stats


def case_self():
    """Patterns that match the hook's own functions (*, log): nothing hangs."""
    class Model:
        def forward(self):
            observe("forward")
    Model().forward()
    with vramshim.stage("block"):
        observe("block")


def case_names():
    """Modules of decorated methods, inheritance, aliases."""
    from py_autohook_models import VAE, Base, Other, Sub
    VAE().decode()
    VAE().encode()
    Sub().run()
    Base().run()
    Sub().go()
    Other().go()
    Base().alias()


def case_diffusers():
    """diffusers' AutoencoderKL.decode (apply_forward_hook, a functools.wraps decorator when
    accelerate is installed) and torch.nn.Module.__call__ (an alias of _wrapped_call_impl)."""
    import torch
    from diffusers import AutoencoderKL
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=8, latent_channels=4,
                        sample_size=8)
    vae.encoder.register_forward_pre_hook(lambda m, a: observe("encoder"))
    vae.decoder.register_forward_pre_hook(lambda m, a: observe("decoder"))
    with torch.no_grad():
        latents = vae.encode(torch.zeros(1, 3, 8, 8)).latent_dist.mode()
        vae.decode(latents)
        linear = torch.nn.Linear(2, 2)
        linear.register_forward_pre_hook(lambda m, a: observe("linear"))
        linear(torch.zeros(2))


def case_threads():
    """Thread 1 enters A.first, thread 2 enters A.second, thread 1 returns first."""
    entered, first_done, second_done = (threading.Event() for _ in range(3))

    class A:
        def first(self):
            entered.set()
            second_in.wait()
        def second(self):
            second_in.set()
            first_done.wait()
            observe("second_alone")
    second_in = threading.Event()
    t1 = threading.Thread(target=lambda: (A().first(), first_done.set()))
    t1.start()
    entered.wait()
    t2 = threading.Thread(target=A().second)
    t2.start()
    t1.join()
    t2.join()
    print("after %s" % (stats()["stack"] or "-"))


def case_jit():
    """TorchScript compiles a module whose forward the hook wrapped."""
    import torch
    linear = torch.nn.Linear(2, 2)
    scripted = torch.jit.script(linear)
    x = torch.ones(1, 2)
    print("scripted equal %s" % bool(torch.equal(scripted(x), linear(x))))


def case_quiet():
    """Importing torch (torch.distributed.reduce_op warns when touched) under the scan."""
    import torch
    import torch.distributed  # noqa: F401
    print("imported torch %s" % torch.__version__.split("+")[0])


def case_comfy():
    """A custom node loaded as ComfyUI does."""
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "py_autohook_node.py")
    spec = importlib.util.spec_from_file_location("custom_nodes.node", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_nodes.node"] = module
    spec.loader.exec_module(module)
    module.node_function()
    module.Node().run()


globals()["case_" + sys.argv[1]]()
observe("end")
