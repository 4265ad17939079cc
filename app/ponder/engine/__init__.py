"""Engines that run a model: the seam (:mod:`.base`) and the llama.cpp engine (:mod:`.llama`).

Importing this package does not load llama.cpp: ``llama_cpp`` is imported on the
first load.
"""

from ponder.engine.base import (
    Batches,
    Engine,
    EngineLoader,
    GenerationStats,
    Injector,
    KeepsState,
    KVState,
    LoadParams,
    check_prompt_fits,
)
from ponder.engine.llama import LLAMA_LOG, LlamaEngine
from ponder.sampling import SamplingParams

__all__ = [
    "LLAMA_LOG",
    "Batches",
    "Engine",
    "EngineLoader",
    "GenerationStats",
    "Injector",
    "KVState",
    "KeepsState",
    "LlamaEngine",
    "LoadParams",
    "SamplingParams",
    "check_prompt_fits",
]
