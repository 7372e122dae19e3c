"""lionr: the Lion optimizer for Keras 3, with keras3's R signature."""

from lionr.api import optimizer_lion
from lionr.checks import ArgumentError
from lionr.checks import ArgumentTypeError
from lionr.host_memory import retain as retain_host_memory
from lionr.hyper import FrozenHyperparameterWarning
from lionr.lion import Lion

__version__ = "0.4.1"
__all__ = [
    "optimizer_lion",
    "Lion",
    "ArgumentError",
    "ArgumentTypeError",
    "FrozenHyperparameterWarning",
    "retain_host_memory",
]
