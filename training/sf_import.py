"""Importing parts of a Self-Forcing checkout (guandeh17/Self-Forcing) on a CPU-only torch, for the
wan-causal fixture and benchmark scripts. Nothing of the checkout is copied: its modules are imported."""
import contextlib
import os
import sys
import types


def bare_packages(sf, packages=("wan", "wan.modules")):
    """Puts the checkout first on sys.path and registers `packages` as bare packages with __path__
    set: their __init__.py files import the whole Wan stack (pipelines, fsdp, CLIP, tokenizers), so
    only the submodules a script names are loaded."""
    sys.dont_write_bytecode = True  # leave the checkout as extracted
    sys.path.insert(0, sf)
    for name in packages:
        pkg = types.ModuleType(name)
        pkg.__path__ = [os.path.join(sf, *name.split("."))]
        sys.modules[name] = pkg


def stub_tokenizers():
    """wan/modules/tokenizers.py needs ftfy, regex and transformers; models that only import it
    get an empty stand-in."""
    tok = types.ModuleType("wan.modules.tokenizers")
    tok.HuggingfaceTokenizer = object
    sys.modules["wan.modules.tokenizers"] = tok


@contextlib.contextmanager
def cuda_device_zero():
    """t5.py evaluates torch.cuda.current_device() as a default argument at import time."""
    import torch  # here, not at the top: the tokenizer fixture runs in an environment without torch
    real = torch.cuda.current_device
    torch.cuda.current_device = lambda: 0
    try:
        yield
    finally:
        torch.cuda.current_device = real
