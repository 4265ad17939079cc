"""Memory per device for one load configuration: :func:`estimate`.

The memory estimate (docs/architecture.md#memory-estimate): weights per layer from the
GGUF, KV cache ``n_layer × n_ctx × n_head_kv × (head_dim_k + head_dim_v) × 2`` (f16), a
compute buffer and a margin per device, budgeted against *free* memory.

How llama.cpp places a model (``llama-model.cpp``, ``llama.cpp`` in 0.3.36's vendor tree,
mirrored here so the estimate matches what will happen):

* ``n_gpu_layers`` counts ``n_layer + 1`` layers: the repeating blocks plus the output
  layer. Offloading ``g`` layers puts layers ``n_layer + 1 - g … n_layer`` on the GPUs, so
  the output layer (``output.weight``, or a copy of ``token_embd`` when tied) goes
  first. ``token_embd`` always stays on the CPU.
* Several GPUs split the offloaded layers in proportion to their free memory.
  Integrated GPUs are used only when there is no discrete one; accelerator devices
  (BLAS, AMX) only help the CPU.
* The KV cache of a layer lives with the layer. The compute buffer at ``n_ubatch`` 512
  with flash attention is ~303 MiB (1.5B) / ~311 MiB (7B), flat in context (measured;
  docs/architecture.md#memory-estimate): almost all of it is the logits,
  ``n_ubatch × n_vocab × 4`` bytes, on the device holding the output layer; the rest
  scales with ``n_embd`` and every device in use holds that part. With a partial offload
  llama.cpp copies CPU-layer weights to the GPU for large batches, so that GPU also needs
  room for one layer.
* On the CPU, llama.cpp repacks some quant types into a second buffer (Q4_0/Q4_K/IQ4_NL
  with AVX2; on ARM with dot-product also Q5_K/Q6_K, and Q8_0 with int8 matmul). With
  mmap the file's pages stay mapped beside the copy: +597 MiB for the 1.5B Q4_K_M,
  +2,977 MiB for the 7B (docs/architecture.md#memory-estimate), i.e. ~80 % of a Q4_K_M's
  layer bytes. Measured
  here with mmap off: the same 1.5B loads in 1,209 MiB instead of 1,794 MiB, because
  each tensor is read once into its final buffer. So when RAM is short the planner
  turns mmap off before it shrinks the context.
* Unified memory (Apple Silicon, integrated GPUs): the GPU maps the same RAM. Its budget
  is the smaller of the free RAM and the GPU's working-set limit (``iogpu.wired_limit_mb``
  when set, else about 2/3 of RAM up to 36 GiB and 3/4 above), and GPU and CPU shares
  together must fit the free RAM.

The margin is llama.cpp's own ``--fit`` default, 1 GiB per GPU; RAM keeps 512 MiB for the
rest of the system.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from ponder.hardware.facts import ModelFacts, model_repack_share
from ponder.hardware.profile import BackendDevice, HardwareProfile
from ponder.units import GiB, MiB

N_UBATCH = 512  # llama-cpp-python's default; the compute buffer scales with it
# Non-logit activations, fitted to the measured figures (docs/architecture.md#memory-estimate).
ACT_BYTES_PER_EMBD = N_UBATCH * 4 * 3
GPU_MARGIN = GiB  # llama.cpp's --fit leaves 1 GiB free on each device
RAM_MARGIN = 512 * MiB


@dataclass(frozen=True, slots=True)
class DeviceUse:
    """The memory one device needs under a plan, against what it has free."""

    device: str  # "CPU" or a llama.cpp device name
    description: str
    layers: int  # of the n_layer + 1 offloadable layers
    weights: int
    kv: int
    compute: int
    margin: int
    budget: int
    unified: bool = False  # lives in system RAM (Apple, integrated GPU)

    @property
    def need(self) -> int:
        return self.weights + self.kv + self.compute + self.margin

    @property
    def fits(self) -> bool:
        return self.need <= self.budget


@dataclass(frozen=True, slots=True)
class Estimate:
    """Memory per device; GPUs first, the CPU last."""

    devices: tuple[DeviceUse, ...]
    ram_need: int  # everything in system RAM, unified GPUs included
    ram_budget: int

    @property
    def cpu(self) -> DeviceUse:
        return self.devices[-1]

    @property
    def gpus(self) -> tuple[DeviceUse, ...]:
        return self.devices[:-1]

    @property
    def fits(self) -> bool:
        return all(d.fits for d in self.devices) and self.ram_need <= self.ram_budget

    @property
    def kv(self) -> int:
        return sum(d.kv for d in self.devices)

    @property
    def compute(self) -> int:
        return sum(d.compute for d in self.devices)

    @property
    def total(self) -> int:
        """Weights, KV cache and compute buffers on all devices, margins left out."""
        return sum(d.weights + d.kv + d.compute for d in self.devices)


def gpu_budget(device: BackendDevice, hw: HardwareProfile) -> int:
    """What a device may use: its free memory, or for unified memory the working-set limit."""
    if not device.unified:
        return device.free_bytes
    budget = hw.ram_available
    if device.free_bytes > 0:
        budget = min(budget, device.free_bytes)
    if hw.apple_silicon:
        budget = min(budget, hw.gpu_wired_limit or apple_gpu_limit(hw.ram_total))
    return budget


def apple_gpu_limit(ram_total: int) -> int:
    """macOS's default GPU working set: about 2/3 of RAM up to 36 GiB, 3/4 above."""
    return ram_total * 2 // 3 if ram_total <= 36 * GiB else ram_total * 3 // 4


def layer_owners(n_layer: int, n_gpu_layers: int, free: Sequence[int]) -> list[int]:
    """Device index of each of the n_layer + 1 layers (-1: CPU), as llama.cpp assigns them."""
    return [
        owner
        for owner, first, end in layer_runs(n_layer, n_gpu_layers, free)
        for _ in range(first, end)
    ]


def layer_runs(n_layer: int, n_gpu_layers: int, free: Sequence[int]) -> list[tuple[int, int, int]]:
    """:func:`layer_owners` as runs: ``(owner, first, end)`` for each device's contiguous
    layers, in layer order (the CPU's first). Each device's share is one run, so its
    bounds are found by bisection: the estimate's work does not grow with the layer count
    (a per-layer walk made each plan quadratic in it, 1.5 s at 1,024 layers on two GPUs)."""
    full = n_layer + 1
    g = min(max(n_gpu_layers, 0), full) if free else 0
    if g == 0:
        return [(-1, 0, full)]
    start = full - g
    total = sum(free)
    shares = [f / total for f in free] if total > 0 else [1 / len(free)] * len(free)
    splits = [sum(shares[: i + 1]) for i in range(len(shares))]
    last = len(free) - 1

    def owner(il: int) -> int:  # non-decreasing in il
        return min(bisect.bisect_right(splits, (il - start) / g), last)

    runs = [(-1, 0, start)] if start else []
    first = start
    for device in range(last + 1):
        end = first + bisect.bisect_right(range(first, full), device, key=owner)
        if end > first:
            runs.append((device, first, end))
        first = end
    return runs


def estimate(
    model: ModelFacts, hw: HardwareProfile, n_gpu_layers: int, n_ctx: int, *, use_mmap: bool
) -> Estimate:
    """Memory per device for one load configuration."""
    gpus = hw.offload_devices
    runs = layer_runs(model.n_layer, n_gpu_layers, [d.free_bytes for d in gpus])
    rows = [_Row() for _ in gpus] + [_Row()]  # the CPU last
    _place_layers(model, runs, rows, n_ctx)
    cpu = rows[-1]
    cpu.weights += model.embd_bytes
    cpu.weights += int(cpu.repeat_bytes * model_repack_share(model, hw)) if use_mmap else 0
    _place_compute(model, runs, rows)
    uses = [_gpu_use(row, d, hw) for row, d in zip(rows, gpus, strict=False)]
    cpu_use = DeviceUse(
        device="CPU",
        description=hw.cpu_model,
        layers=cpu.layers,
        weights=cpu.weights,
        kv=cpu.kv,
        compute=cpu.compute,
        margin=RAM_MARGIN,
        budget=hw.ram_available,
    )
    ram_need = cpu_use.need + sum(u.weights + u.kv + u.compute for u in uses if u.unified)
    return Estimate((*uses, cpu_use), ram_need, hw.ram_available)


@dataclass(slots=True)
class _Row:
    layers: int = 0
    repeat_bytes: int = 0  # repeating-layer weights (what the CPU repacks)
    weights: int = 0
    kv: int = 0
    compute: int = 0


def _place_layers(
    model: ModelFacts, runs: list[tuple[int, int, int]], rows: list[_Row], n_ctx: int
) -> None:
    kv_layer = model.kv_bytes_per_token_layer * n_ctx
    n_layer = model.n_layer
    for owner, first, end in runs:
        row = rows[owner]  # -1 is the CPU row
        row.layers += end - first
        repeating = min(end, n_layer) - first
        if repeating > 0:
            weights = model.layers_bytes(first, first + repeating)
            row.weights += weights
            row.repeat_bytes += weights
            row.kv += kv_layer * repeating
        # The output layer is the last; a tied output on the CPU is token_embd itself.
        if end > n_layer and (owner >= 0 or not model.tied):
            row.weights += model.output_bytes


def _place_compute(model: ModelFacts, runs: list[tuple[int, int, int]], rows: list[_Row]) -> None:
    activations = ACT_BYTES_PER_EMBD * model.n_embd
    for index, row in enumerate(rows):
        if row.layers or index == len(rows) - 1:
            row.compute += activations
    output_owner, first_owner = runs[-1][0], runs[0][0]
    rows[output_owner].compute += N_UBATCH * model.n_vocab * 4  # logits, with the output layer
    partial = output_owner >= 0 and first_owner < 0
    if partial:  # CPU-layer weights pass through the first GPU for large batches
        rows[0].compute += model.largest_layer


def _gpu_use(row: _Row, device: BackendDevice, hw: HardwareProfile) -> DeviceUse:
    margin = GPU_MARGIN if row.layers else 0
    compute = row.compute if row.layers else 0
    return DeviceUse(
        device=device.name,
        description=device.description,
        layers=row.layers,
        weights=row.weights,
        kv=row.kv,
        compute=compute,
        margin=margin,
        budget=gpu_budget(device, hw),
        unified=device.unified,
    )
