"""How fast a plan will think here: :func:`predict` gives decode and prompt tokens/s.

For a reasoning model speed is the first question: a 1,500-token trace at 5 tokens/s
takes five minutes. The estimate (docs/architecture.md#speed-estimate) is built from
the plan, the way llama.cpp spends its time:

* **Decode is memory-bound.** Every token reads each weight once, plus the KV cache up
  to the current position. So the bytes of the layers on each device (the output layer
  where it lives, a tied output read as the whole embedding matrix; ``token_embd`` only
  one row, left out), plus the KV bytes of those layers at the position, over that
  device's read bandwidth: RAM's as measured by
  :func:`~ponder.hardware.bandwidth.measure_ram_bandwidth` for the threads used, a GPU's
  from its data sheet. Read at :data:`CPU_READ_EFFICIENCY` / :data:`GPU_READ_EFFICIENCY`
  of that, plus a fixed cost per token, per layer and per vocabulary entry (sampling
  scans the whole vocabulary), fitted on this project's machines with
  ``bench/bench_predict.py``. On the CPU the matrix-vector kernels' own work comes on top
  of the reads: two or four cores cannot hide one behind the other, so each weight
  costs its bytes over the RAM's rate plus its bytes over what the kernels for its
  tensor type get through (:data:`CPU_MATVEC_BYTES_PER_CORE`, scaled by the SIMD the
  build uses). That term is what keeps a model that sits in a large last-level cache
  (Gemma 270M in a 480 MiB L3) from being predicted at RAM speed, and it is what a CPU
  without fast SIMD (or x86 code under Rosetta) is bound by.
* **Prompt processing is compute-bound.** Two FLOPs per weight per token, in batches of
  512 (the output layer runs for the last token only), at the cores' throughput for
  their SIMD (:data:`CPU_FLOPS_PER_CORE`, scaled by the threads; tensor types llama.cpp
  does not repack at :data:`NOT_REPACKED_SHARE` of it) or the GPU's data-sheet
  FP16 rate at :data:`GPU_FLOPS_EFFICIENCY`. With a partial offload llama.cpp runs the CPU
  layers' large batches on the GPU too, so their weights cross PCIe once per batch.

Pure: plain data in, a :class:`Speed` out. The figures are estimates, and say so.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.hardware.bandwidth import GpuSpec, gpu_spec
from ponder.hardware.facts import ModelFacts, model_repack_share
from ponder.hardware.footprint import N_UBATCH, layer_runs
from ponder.hardware.profile import BackendDevice, HardwareProfile

REPLY_TOKENS = 1_500  # a typical reasoning reply, for "about 1 min for a 1,500-token reply"
TYPICAL_PROMPT_TOKENS = 200  # where a reply starts; decode is quoted half-way through it
USABLE_TOK_S = 8.0  # the default of the ``usable_tok_s`` setting

# llama.cpp's decode reads against the measured memchr rate, fitted by bench_predict.py
# on two of this project's 2-core VMs together with the kernels' time below: one where
# memchr read 13.4 GB/s (Gemma 270M 33.0 tok/s, the 1.5B-shaped GGUF 8.6), one where it
# read 24.6 GB/s (39.6 and 13.0). Both models land within 0.85-1.10 x on both machines.
CPU_READ_EFFICIENCY = 0.70
GPU_READ_EFFICIENCY = 0.75  # llama.cpp's CUDA/Metal decode against the data sheet
GPU_FLOPS_EFFICIENCY = 0.35  # prompt processing against the data sheet's FP16 rate
PCIE_BANDWIDTH = 25e9  # bytes/s host to GPU (PCIe 4.0 x16 in practice)
TOKEN_OVERHEAD_S = 0.4e-3  # per token: graph, sampler chain, Python loop
CPU_LAYER_OVERHEAD_S = 30e-6  # per CPU layer per token: the threads meet ~15 times a layer
GPU_LAYER_OVERHEAD_S = 25e-6  # per GPU layer per token: kernel launches
VOCAB_OVERHEAD_S = 4e-9  # per vocabulary entry per token: the sampler's candidate array
# (llama_sampler_sample with top-k took 0.9 ms for Gemma's 262,144 entries here)
# What one core's llama.cpp matrix-vector kernels get through of a weight matrix that is
# already in cache, in bytes/s, by tensor type: ggml_mul_mat of a 4096-wide matrix by one
# vector, one thread, AVX2 build, timed through ggml's C API on this project's 2-core VM
# (Xeon, 480 MiB L3). Two threads did twice as much. Other SIMD scales by
# CPU_FLOPS_PER_CORE against AVX2; a type not listed gets the Q4_K figure.
CPU_MATVEC_BYTES_PER_CORE = {
    "F32": 29e9, "F16": 29e9, "BF16": 29e9, "Q8_0": 22.9e9, "Q6_K": 19.8e9, "Q5_K": 14.1e9,
    "Q5_0": 10.9e9, "Q4_K": 16.3e9, "Q4_0": 11.7e9,
}  # fmt: skip
GUESSED_RAM_PER_CORE = 6e9  # bytes/s per core when RAM was not measured
GUESSED_RAM_MAX = 60e9

# Dense FLOP/s one core sustains in llama.cpp's quantized matmuls, by the best SIMD the
# build uses (the first flag of each entry that is on wins).
# For the tensor types llama.cpp repacks on this CPU (Q4_0, Q4_K, IQ4_NL with AVX2; more on
# ARM), whose GEMM kernels are the fast ones; the other types at NOT_REPACKED_SHARE of it.
# AVX2 fitted by bench_predict.py here: the 1.5B-shaped Q4_K_M prefilled 51.7 tok/s and
# Gemma 270M (mostly Q5_0) 258 tok/s on two cores.
CPU_FLOPS_PER_CORE: tuple[tuple[str, float], ...] = (
    ("AVX512_VNNI", 180e9),
    ("AVX512", 145e9),
    ("AVX_VNNI", 135e9),
    ("AVX2", 108e9),
    ("MATMUL_INT8", 135e9),
    ("DOTPROD", 80e9),
    ("NEON", 35e9),
    ("AVX", 35e9),
)
CPU_FLOPS_FALLBACK = 10e9
NOT_REPACKED_SHARE = 0.25

# Bits per weight of ggml's tensor types (for weights from a GGUF's tensor types) and the
# average over the repeating layers of a file by its quant name (catalog entries).
_TYPE_BPW = {
    "F32": 32.0, "F16": 16.0, "BF16": 16.0, "Q8_0": 8.5, "Q6_K": 6.5625, "Q5_K": 5.5,
    "Q5_0": 5.5, "Q5_1": 6.0, "Q4_K": 4.5, "Q4_0": 4.5, "Q4_1": 5.0, "IQ4_NL": 4.5,
    "IQ4_XS": 4.25, "Q3_K": 3.4375, "IQ3_S": 3.4375, "IQ3_XXS": 3.0625, "Q2_K": 2.625,
    "IQ2_XS": 2.3125, "IQ2_XXS": 2.0625, "IQ1_S": 1.5625, "TQ1_0": 1.6875, "TQ2_0": 2.0625,
}  # fmt: skip
_QUANT_BPW = {
    "Q8_0": 8.5, "Q6_K": 6.5625, "Q5_K_M": 5.69, "Q5_K_S": 5.54, "Q4_K_M": 4.85,
    "Q4_K_S": 4.58, "Q4_0": 4.5, "IQ4_NL": 4.5, "IQ4_XS": 4.25, "Q3_K_M": 3.91, "Q2_K": 3.35,
    "F16": 16.0, "BF16": 16.0, "F32": 32.0,
}  # fmt: skip
_DEFAULT_BPW = 5.0


@dataclass(frozen=True, slots=True)
class Speed:
    """Predicted speed of one plan: decode at any position, prompt processing."""

    decode_s_per_token: float  # at position 0: weights and overheads
    decode_s_per_position: float  # added per token already in the context (the KV reads)
    prompt_tok_s: float
    n_ctx: int
    ram_measured: bool  # False: RAM bandwidth guessed from the core count
    gpus_known: bool = True  # False: a GPU not in the spec table, guessed

    def decode_at(self, position: int) -> float:
        """Decode tokens/s with ``position`` tokens already in the context."""
        pos = max(0, min(position, self.n_ctx))
        return 1.0 / (self.decode_s_per_token + pos * self.decode_s_per_position)

    @property
    def decode_tok_s(self) -> float:
        """Half-way through a typical reply (:data:`REPLY_TOKENS` after a short prompt)."""
        return self.decode_at(TYPICAL_PROMPT_TOKENS + REPLY_TOKENS // 2)

    @property
    def decode_full_tok_s(self) -> float:
        """When the planned context is full."""
        return self.decode_at(self.n_ctx)

    def reply_s(self, tokens: int = REPLY_TOKENS) -> float:
        """Seconds to write a ``tokens``-token reply after a short prompt."""
        start = TYPICAL_PROMPT_TOKENS
        return sum(1.0 / self.decode_at(start + i) for i in range(0, tokens, 50)) * 50

    @property
    def guessed(self) -> bool:
        return not (self.ram_measured and self.gpus_known)


@dataclass(slots=True)
class _Share:
    """What one device holds of a plan."""

    layers: int = 0
    weights: int = 0  # bytes read per decoded token
    kv_layers: int = 0
    params: float = 0.0  # repeating-layer weights, for the prompt's FLOPs
    repacked: float = 1.0  # the share of them in types llama.cpp repacks (fast GEMM)
    matvec_s: float = 0.0  # one AVX2 core's kernel time over the weights read a token


def ram_bandwidth(hw: HardwareProfile, threads: int) -> tuple[float, bool]:
    """RAM read bandwidth for ``threads`` decoding threads, and whether it was measured.

    Measured with :attr:`~HardwareProfile.performance_cores` threads; fewer threads read
    proportionally less (pessimistic on machines with many memory channels)."""
    base = hw.performance_cores
    if hw.memory_bandwidth:
        return hw.memory_bandwidth * min(1.0, threads / max(1, base)), True
    return min(GUESSED_RAM_MAX, GUESSED_RAM_PER_CORE * min(threads, hw.physical_cores)), False


def cpu_flops_per_core(hw: HardwareProfile) -> float:
    flags = set(hw.cpu_flags)
    return next((rate for flag, rate in CPU_FLOPS_PER_CORE if flag in flags), CPU_FLOPS_FALLBACK)


def device_spec(device: BackendDevice, hw: HardwareProfile) -> GpuSpec:
    """A GPU's figures; Apple's by the chip when llama.cpp names it only "Metal"."""
    spec = gpu_spec(device.description, device.name)
    if not spec.known and hw.apple_silicon:
        spec = gpu_spec(hw.cpu_model)
    if not spec.known and device.unified and hw.memory_bandwidth:
        # An integrated GPU reads system RAM.
        return GpuSpec("an integrated GPU", hw.memory_bandwidth, spec.flops, known=True)
    return spec


def predict(
    model: ModelFacts,
    hw: HardwareProfile,
    *,
    n_gpu_layers: int,
    n_ctx: int,
    n_threads: int,
    n_threads_batch: int | None = None,
) -> Speed:
    """Decode and prompt speed of ``model`` loaded with these settings on ``hw``."""
    gpus = hw.offload_devices
    shares = _shares(model, gpus, n_gpu_layers)
    cpu = shares[-1]
    cpu.repacked = model_repack_share(model, hw) if hw.cpu_flags else 1.0
    ram_bw, measured = ram_bandwidth(hw, max(1, n_threads))
    specs = [device_spec(d, hw) for d in gpus]
    bws = [s.bandwidth * GPU_READ_EFFICIENCY for s in specs] + [ram_bw * CPU_READ_EFFICIENCY]
    kv_layer = model.kv_bytes_per_token_layer
    pairs = list(zip(shares, bws, strict=True))
    weights_s = sum(share.weights / bw for share, bw in pairs)
    # The CPU's kernels work through its weights on top of reading them.
    cores = max(1, min(n_threads, hw.physical_cores))
    simd = cpu_flops_per_core(hw) / dict(CPU_FLOPS_PER_CORE)["AVX2"]
    weights_s += cpu.matvec_s / (cores * simd)
    per_position = sum(share.kv_layers * kv_layer / bw for share, bw in pairs)
    gpu_layers = sum(share.layers for share in shares[:-1])
    overhead = (
        TOKEN_OVERHEAD_S
        + cpu.layers * CPU_LAYER_OVERHEAD_S
        + gpu_layers * GPU_LAYER_OVERHEAD_S
        + model.n_vocab * VOCAB_OVERHEAD_S
    )
    prompt = _prompt_tok_s(hw, shares, specs, n_threads_batch or n_threads)
    return Speed(
        decode_s_per_token=weights_s + overhead,
        decode_s_per_position=per_position,
        prompt_tok_s=prompt,
        n_ctx=n_ctx,
        ram_measured=measured,
        gpus_known=all(s.known for s in specs),
    )


def _shares(model: ModelFacts, gpus: tuple[BackendDevice, ...], n_gpu_layers: int) -> list[_Share]:
    """Each device's layers, bytes read per token and weights; GPUs first, the CPU last."""
    shares = [_Share() for _ in gpus] + [_Share()]
    bpw = _layer_bpw(model)
    layer_rate = _layer_matvec_rate(model)
    output_rate = _matvec_rate(_nearest_type(_output_bpw(model)))
    n_layer = model.n_layer
    for owner, first, end in layer_runs(n_layer, n_gpu_layers, [d.free_bytes for d in gpus]):
        share = shares[owner]  # -1 is the CPU
        share.layers += end - first
        repeating = min(end, n_layer) - first
        if repeating > 0:
            weights = model.layers_bytes(first, first + repeating)
            share.weights += weights
            share.kv_layers += repeating
            share.params += weights * 8 / bpw
            share.matvec_s += weights / layer_rate
        if end > n_layer:  # the output layer: a tied output reads the embedding matrix
            share.weights += model.output_bytes
            share.matvec_s += model.output_bytes / output_rate
    return shares


def _matvec_rate(tensor_type: str) -> float:
    rates = CPU_MATVEC_BYTES_PER_CORE
    return rates.get(tensor_type.upper(), rates["Q4_K"])


def _layer_matvec_rate(model: ModelFacts) -> float:
    """One AVX2 core's kernel rate over the repeating layers, weighted by their bytes."""
    types = model.layer_type_bytes or ((_nearest_type(_layer_bpw(model)), 1),)
    total = sum(n for _, n in types)
    seconds = sum(n / _matvec_rate(t) for t, n in types)
    return total / seconds if seconds > 0 else _matvec_rate("Q4_K")


def _output_bpw(model: ModelFacts) -> float:
    matrix = model.n_vocab * model.n_embd
    return model.output_bytes * 8 / matrix if matrix else _DEFAULT_BPW


def _nearest_type(bpw: float) -> str:
    """The tensor type of the listed kernel rates whose bits per weight are nearest."""
    listed = [t for t in CPU_MATVEC_BYTES_PER_CORE if t != "BF16"]
    return min(listed, key=lambda t: abs(_TYPE_BPW[t] - bpw))


def _layer_bpw(model: ModelFacts) -> float:
    """Average bits per weight of the repeating layers."""
    if model.layer_type_bytes:
        types = model.layer_type_bytes
        total = sum(n for _, n in types)
        params = sum(n * 8 / _TYPE_BPW.get(t.upper(), _DEFAULT_BPW) for t, n in types)
        if total and params:
            return total * 8 / params
    return _QUANT_BPW.get((model.quant or "").upper(), _DEFAULT_BPW)


def _prompt_tok_s(
    hw: HardwareProfile, shares: list[_Share], specs: list[GpuSpec], threads: int
) -> float:
    """Prompt tokens/s: two FLOPs per weight per token on the device that runs each layer."""
    cpu = shares[-1]
    gpu_rates = [s.flops * GPU_FLOPS_EFFICIENCY for s in specs]
    seconds = 0.0
    for share, rate in zip(shares[:-1], gpu_rates, strict=True):
        seconds += 2 * share.params / rate
    if cpu.params:
        if gpu_rates and any(s.layers for s in shares[:-1]):
            # Large batches of CPU layers run on the first GPU; their weights cross PCIe.
            seconds += 2 * cpu.params / gpu_rates[0] + cpu.weights / PCIE_BANDWIDTH / N_UBATCH
        else:
            cores = max(1, min(threads, hw.physical_cores))
            rate = cores * cpu_flops_per_core(hw)
            fast = cpu.params * cpu.repacked
            seconds += 2 * (fast + (cpu.params - fast) / NOT_REPACKED_SHARE) / rate
    return 1.0 / seconds if seconds > 0 else float("inf")
