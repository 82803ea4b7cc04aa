"""Stand-in for comfy.model_management: load_models_gpu records its calls (ComfyUI moves the
patcher's model to its device there; here everything stays on the CPU)."""
calls = []


def load_models_gpu(models, memory_required=0, force_full_load=False):
    calls.append((tuple(models), memory_required, force_full_load))
