"""What this machine can run, and how to load a model on it.

One public face for the parts below, each a plain module over plain data, listed from the
bottom up (a module imports only from those above it):

* :mod:`~ponder.units` (shared with the rest of Ponder) — bytes, ``MiB``/``GiB``, and :func:`gib`.
* :mod:`~ponder.hardware.profile` — the frozen :class:`HardwareProfile` of a machine.
* :mod:`~ponder.hardware.bandwidth` — how fast memory reads: RAM measured (and remembered
  per machine), GPUs from their data sheets.
* :mod:`~ponder.hardware.os_probes` — :class:`Probes`, the injectable sources with the OS's
  defaults, and what the OS says: Apple's sysctls, the GPUs ``nvidia-smi``, sysfs /
  ``rocm-smi`` and ``vulkaninfo`` report.
* :mod:`~ponder.hardware.probes` — :func:`probe` fills the profile in through those
  :class:`Probes` (never importing :mod:`ponder.devices`, which loads ``llama_cpp``).
* :mod:`~ponder.hardware.backend_choice` — :func:`choose_backend`: the llama.cpp backend this
  machine wants (from :mod:`ponder.backends`' table) and whether the installed build is it.
* :mod:`~ponder.hardware.diagnosis` — :func:`diagnose`: ``ponder doctor``'s findings, each
  with the exact fix.
* :mod:`~ponder.hardware.facts` — :class:`ModelFacts`: what the planner knows of a model.
* :mod:`~ponder.hardware.footprint` — :func:`estimate`: memory per device for one load
  configuration, placed as llama.cpp places it.
* :mod:`~ponder.hardware.speed` — :func:`predict`: decode and prompt tokens/s of a load.
* :mod:`~ponder.hardware.planner` — :func:`plan`: the load parameters that fit, with their
  speed, and :func:`step_down` for the retry after an out-of-memory failure.
* :mod:`~ponder.hardware.fit` — the catalog against this machine: the fit table, the best
  quant of a model, the distill to recommend.
* :mod:`~ponder.hardware.fit_json` — :func:`fit_data`, ``ponder fit --json``.
* :mod:`~ponder.hardware.memory` — :class:`LoadMemory`, the settings that loaded before.
* :mod:`~ponder.hardware.render` — plain text for ``ponder doctor``, ``fit`` and ``--verbose``.
* :mod:`~ponder.hardware.doctor_json` — :func:`doctor_data`, ``ponder doctor --json``.

Callers import from here (``from ponder import hardware``), not from the parts.
"""

from __future__ import annotations

from ponder.hardware.backend_choice import (
    BACKEND_CHOICES,
    BackendChoice,
    choose_backend,
    installed_backend,
)
from ponder.hardware.bandwidth import (
    GPU_SPECS,
    MEASURE_BUDGET_S,
    BandwidthMemory,
    GpuSpec,
    gpu_spec,
    measure_ram_bandwidth,
    remembered_bandwidth,
)
from ponder.hardware.diagnosis import (
    LOW_RAM,
    PIP_REINSTALL,
    WHEEL_INDEX,
    Finding,
    Severity,
    cuda_wheel,
    diagnose,
    reinstall_command,
)
from ponder.hardware.doctor_json import doctor_data
from ponder.hardware.facts import KV_BYTES_PER_ELEMENT, ModelFacts, repack_share
from ponder.hardware.fit import (
    QUANT_PRECISION,
    R1_FAMILY,
    USABLE_CTX,
    FitRow,
    Recommendation,
    best_fit_rows,
    best_quant,
    fit_row,
    fit_table,
    is_usable,
    params_billions,
    plan_quant,
    precision_rank,
    recommend,
)
from ponder.hardware.fit_json import fit_data, plan_data
from ponder.hardware.footprint import (
    ACT_BYTES_PER_EMBD,
    GPU_MARGIN,
    N_UBATCH,
    RAM_MARGIN,
    DeviceUse,
    Estimate,
    apple_gpu_limit,
    estimate,
    gpu_budget,
    layer_owners,
)
from ponder.hardware.memory import LoadMemory, model_key
from ponder.hardware.os_probes import (
    COMMAND_TIMEOUT_S,
    MIN_USEFUL_GPU,
    NVIDIA_SMI,
    ROCM_SMI,
    VULKANINFO,
    Probes,
)
from ponder.hardware.os_probes import _list_dir as _list_dir  # the default probes, for tests
from ponder.hardware.os_probes import _read_file as _read_file
from ponder.hardware.os_probes import _run_command as _run_command
from ponder.hardware.planner import (
    DEFAULT_CTX,
    KV_TYPE,
    MIN_CTX,
    N_BATCH,
    Overrides,
    Plan,
    Verdict,
    WorkingSettings,
    context_floor,
    context_ladder,
    default_context,
    plan,
    refusal,
    step_down,
)
from ponder.hardware.probes import parse_system_info, probe
from ponder.hardware.profile import BackendDevice, DeviceLike, HardwareProfile, OsGpu
from ponder.hardware.render import (
    FIT_HEADER,
    duration,
    fit_cells,
    render_doctor,
    render_fit_table,
    render_one_line,
    render_plan,
    speed_cell,
    speed_line,
    speed_phrase,
    tok_s,
)
from ponder.hardware.speed import REPLY_TOKENS, USABLE_TOK_S, Speed, predict, ram_bandwidth
from ponder.units import GiB, MiB, gib

__all__ = [
    "ACT_BYTES_PER_EMBD",
    "BACKEND_CHOICES",
    "COMMAND_TIMEOUT_S",
    "DEFAULT_CTX",
    "FIT_HEADER",
    "GPU_MARGIN",
    "GPU_SPECS",
    "KV_BYTES_PER_ELEMENT",
    "KV_TYPE",
    "LOW_RAM",
    "MEASURE_BUDGET_S",
    "MIN_CTX",
    "MIN_USEFUL_GPU",
    "NVIDIA_SMI",
    "N_BATCH",
    "N_UBATCH",
    "PIP_REINSTALL",
    "QUANT_PRECISION",
    "R1_FAMILY",
    "RAM_MARGIN",
    "REPLY_TOKENS",
    "ROCM_SMI",
    "USABLE_CTX",
    "USABLE_TOK_S",
    "VULKANINFO",
    "WHEEL_INDEX",
    "BackendChoice",
    "BackendDevice",
    "BandwidthMemory",
    "DeviceLike",
    "DeviceUse",
    "Estimate",
    "Finding",
    "FitRow",
    "GiB",
    "GpuSpec",
    "HardwareProfile",
    "LoadMemory",
    "MiB",
    "ModelFacts",
    "OsGpu",
    "Overrides",
    "Plan",
    "Probes",
    "Recommendation",
    "Severity",
    "Speed",
    "Verdict",
    "WorkingSettings",
    "apple_gpu_limit",
    "best_fit_rows",
    "best_quant",
    "choose_backend",
    "context_floor",
    "context_ladder",
    "cuda_wheel",
    "default_context",
    "diagnose",
    "doctor_data",
    "duration",
    "estimate",
    "fit_cells",
    "fit_data",
    "fit_row",
    "fit_table",
    "gib",
    "gpu_budget",
    "gpu_spec",
    "installed_backend",
    "is_usable",
    "layer_owners",
    "measure_ram_bandwidth",
    "model_key",
    "params_billions",
    "parse_system_info",
    "plan",
    "plan_data",
    "plan_quant",
    "precision_rank",
    "predict",
    "probe",
    "ram_bandwidth",
    "recommend",
    "refusal",
    "reinstall_command",
    "remembered_bandwidth",
    "render_doctor",
    "render_fit_table",
    "render_one_line",
    "render_plan",
    "repack_share",
    "speed_cell",
    "speed_line",
    "speed_phrase",
    "step_down",
    "tok_s",
]
