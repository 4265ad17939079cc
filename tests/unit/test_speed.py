"""The speed estimate, the memory bandwidth it rests on, and the choices made from it.

Worked examples spell the formula of ``ponder.hardware.speed`` out with the recorded
machines' numbers (``tests/support/hardware_profiles``), so a change to a constant or to
which bytes count shows up here. Whether the estimate is right on a real machine is
``bench/bench_predict.py``'s question (a speed target lives in a benchmark, not a test).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from ponder import hardware
from ponder.config import Settings
from ponder.hardware import ModelFacts, speed
from ponder.hardware.bandwidth import BANDWIDTH_FILE
from ponder.paths import default_paths
from ponder.session import Session
from ponder.session import machine as session_machine
from support.machines import PROFILES, catalog, facts, machine

LAPTOP = "cpu_laptop_8gb"  # 4 cores, RAM read at 18 GB/s (recorded), no GPU


def _overhead(model: ModelFacts, cpu_layers: int, gpu_layers: int = 0) -> float:
    return (
        speed.TOKEN_OVERHEAD_S
        + cpu_layers * speed.CPU_LAYER_OVERHEAD_S
        + gpu_layers * speed.GPU_LAYER_OVERHEAD_S
        + model.n_vocab * speed.VOCAB_OVERHEAD_S
    )


def _kernels(layers: float, output: float, cores: int, *, layer: str, out: str) -> float:
    """The CPU kernels' time a token: each weight's bytes over its type's rate per core."""
    rate = speed.CPU_MATVEC_BYTES_PER_CORE
    return (layers / rate[layer] + output / rate[out]) / cores


# ------------------------------------------------------------------- worked examples


def test_decode_on_the_cpu_reads_every_layer_and_the_output_once_a_token() -> None:
    model, hw = facts("r1:1.5b@Q4_K_M"), machine(LAPTOP)
    assert hw.memory_bandwidth == 18e9 and hw.performance_cores == 4
    got = speed.predict(model, hw, n_gpu_layers=0, n_ctx=16384, n_threads=4)
    # token_embd is read one row a token: left out; output.weight is read whole.
    read = sum(model.layer_bytes) + model.output_bytes
    bandwidth = 18e9 * speed.CPU_READ_EFFICIENCY
    # The laptop builds for AVX2; a catalog Q4_K_M's layers (4.85 bits a weight on
    # average) run Q4_K's kernels, its output (6.56 bits) Q6_K's, on four cores.
    assert speed.cpu_flops_per_core(hw) == dict(speed.CPU_FLOPS_PER_CORE)["AVX2"]
    kernels = _kernels(sum(model.layer_bytes), model.output_bytes, 4, layer="Q4_K", out="Q6_K")
    expected = read / bandwidth + kernels + _overhead(model, cpu_layers=29)
    assert got.decode_s_per_token == pytest.approx(expected, rel=1e-9)
    # Each token in the context adds its K and V of every layer.
    assert got.decode_s_per_position == pytest.approx(model.kv_bytes_per_token / bandwidth)
    assert got.decode_at(0) == pytest.approx(1 / expected)
    assert got.ram_measured and not got.guessed


def test_decode_is_split_between_the_gpu_and_the_cpu_by_their_layers() -> None:
    model, hw = facts("r1:14b@Q4_K_M"), machine("rtx4060_laptop")
    got = speed.predict(model, hw, n_gpu_layers=32, n_ctx=4096, n_threads=6)
    gpu_layers = model.layers_bytes(49 - 32, 48) + model.output_bytes  # the output goes first
    cpu_layers = model.layers_bytes(0, 49 - 32)
    gpu_bw = 256e9 * speed.GPU_READ_EFFICIENCY  # RTX 4060 Laptop's data sheet
    cpu_bw = 55e9 * speed.CPU_READ_EFFICIENCY  # recorded, with its 6 performance cores
    simd = speed.cpu_flops_per_core(hw) / dict(speed.CPU_FLOPS_PER_CORE)["AVX2"]
    kernels = _kernels(cpu_layers, 0, 6, layer="Q4_K", out="Q6_K") / simd  # CPU layers only
    expected = gpu_layers / gpu_bw + cpu_layers / cpu_bw + kernels + _overhead(model, 17, 32)
    assert got.decode_s_per_token == pytest.approx(expected, rel=1e-9)
    kv = model.kv_bytes_per_token_layer
    assert got.decode_s_per_position == pytest.approx(31 * kv / gpu_bw + 17 * kv / cpu_bw)


def test_a_full_context_slows_decoding_by_its_kv_reads() -> None:
    model, hw = facts("r1:1.5b@Q4_K_M"), machine(LAPTOP)
    got = speed.predict(model, hw, n_gpu_layers=0, n_ctx=16384, n_threads=4)
    assert got.decode_full_tok_s < got.decode_tok_s < got.decode_at(0)
    assert got.decode_full_tok_s == pytest.approx(got.decode_at(16384))
    assert got.decode_at(10**9) == got.decode_full_tok_s  # capped at the context
    # the typical reply is quoted half-way through it, after a short prompt
    middle = speed.TYPICAL_PROMPT_TOKENS + speed.REPLY_TOKENS // 2
    assert got.decode_tok_s == pytest.approx(got.decode_at(middle))
    assert 0.99 * speed.REPLY_TOKENS / got.decode_tok_s < got.reply_s()
    assert got.reply_s() < 1.01 * speed.REPLY_TOKENS / got.decode_tok_s


def test_prompt_processing_is_compute_bound_and_leaves_the_output_layer_out() -> None:
    model, hw = facts("r1:1.5b@Q4_K_M"), machine(LAPTOP)
    two = speed.predict(model, hw, n_gpu_layers=0, n_ctx=4096, n_threads=2)
    four = speed.predict(model, hw, n_gpu_layers=0, n_ctx=4096, n_threads=4)
    params = sum(model.layer_bytes) * 8 / 4.85  # Q4_K_M's layers average 4.85 bits
    avx2 = dict(speed.CPU_FLOPS_PER_CORE)["AVX2"]
    # 80 % of a Q4_K_M's layer bytes are Q4_K, which AVX2 repacks into fast GEMM kernels
    flops = 2 * (0.8 * params + 0.2 * params / speed.NOT_REPACKED_SHARE)
    assert four.prompt_tok_s == pytest.approx(4 * avx2 / flops)  # four AVX2 cores
    assert two.prompt_tok_s == pytest.approx(four.prompt_tok_s / 2)
    eight = speed.predict(model, hw, n_gpu_layers=0, n_ctx=4096, n_threads=8)
    assert eight.prompt_tok_s == four.prompt_tok_s  # hyperthreads add nothing
    # Fewer threads also read RAM more slowly (pessimistic for machines with many channels).
    assert two.decode_at(0) < four.decode_at(0)


def test_a_gguf_counts_its_tensor_types(gemma_path: Path) -> None:
    """Gemma 3 270M: mostly Q5_0 layers and a tied Q8_0 embedding read whole as the output."""
    from ponder import gguf_info

    model = ModelFacts.from_gguf(gguf_info.inspect(gemma_path))
    assert model.tied
    got = speed.predict(model, machine(LAPTOP), n_gpu_layers=0, n_ctx=4096, n_threads=4)
    read = sum(model.layer_bytes) + model.output_bytes
    rates = speed.CPU_MATVEC_BYTES_PER_CORE
    layers = sum(n / rates.get(t.upper(), rates["Q4_K"]) for t, n in model.layer_type_bytes)
    assert {t.upper() for t, _ in model.layer_type_bytes} >= {"Q5_0"}
    kernels = (layers + model.output_bytes / rates["Q8_0"]) / 4  # the tied Q8_0 embedding
    expected = read / (18e9 * speed.CPU_READ_EFFICIENCY) + kernels + _overhead(model, 19)
    assert got.decode_s_per_token == pytest.approx(expected, rel=1e-9)


def test_unmeasured_ram_is_guessed_from_the_cores_and_says_so() -> None:
    hw = dataclasses.replace(machine(LAPTOP), memory_bandwidth=None)
    bw, measured = speed.ram_bandwidth(hw, 4)
    assert (bw, measured) == (4 * speed.GUESSED_RAM_PER_CORE, False)
    plan = hardware.plan(facts("r1:1.5b@Q4_K_M"), hw)
    assert plan.speed is not None and plan.speed.guessed
    assert "a guess" in hardware.render_plan(plan)


def test_every_recorded_gpu_is_in_the_spec_table() -> None:
    for path in sorted(PROFILES.glob("*.json")):
        hw = machine(path.stem)
        for device in hw.offload_devices:
            spec = speed.device_spec(device, hw)
            assert spec.known, (path.stem, device.description)
    assert hardware.gpu_spec("NVIDIA GeForce RTX 4060 Laptop GPU").name == "RTX 4060 Laptop"
    assert hardware.gpu_spec("NVIDIA GeForce RTX 4060 Ti").name == "RTX 4060 Ti"
    assert hardware.gpu_spec("NVIDIA GeForce RTX 4060").name == "RTX 4060"
    assert hardware.gpu_spec("Apple M2 Pro").name == "M2 Pro"
    assert hardware.gpu_spec("Apple M2").bandwidth == 100e9
    assert hardware.gpu_spec("NVIDIA L40S").name == "L40S"  # not "L4"
    unknown = hardware.gpu_spec("Moore Threads MTT S80")
    assert not unknown.known and unknown.bandwidth == hardware.bandwidth.UNKNOWN_GPU.bandwidth


def test_plans_carry_their_speed_and_the_verbose_plan_shows_it() -> None:
    model, hw = facts("r1:1.5b@Q4_K_M"), machine(LAPTOP)
    plan = hardware.plan(model, hw)
    assert plan.speed == speed.predict(model, hw, n_gpu_layers=0, n_ctx=16384, n_threads=4)
    text = hardware.render_plan(plan)
    assert "  speed: decode ≈ " in text and "once the 16,384-token context is full" in text
    stepped = hardware.step_down(plan, model, hw)
    assert stepped is not None and stepped.speed is not None
    assert stepped.speed.n_ctx == 8192
    too_big = hardware.plan(facts("r1-llama:70b@Q4_K_M"), hw)
    assert too_big.speed is None and "speed:" not in hardware.render_plan(too_big)


@pytest.mark.parametrize(
    ("rate", "seconds", "phrase"),
    [
        (26.0, 1500 / 26, "≈ 26 tok/s · about 1 min for a 1,500-token reply"),
        (4.9, 1500 / 4.9, "≈ 4.9 tok/s · about 5 min for a 1,500-token reply"),
        (150.0, 10.0, "≈ 150 tok/s · about 10 s for a 1,500-token reply"),
        (1234.0, 1500 / 1234, "≈ 1,234 tok/s · about 1 s for a 1,500-token reply"),
        (0.2, 7500.0, "≈ 0.2 tok/s · about 2.1 h for a 1,500-token reply"),
    ],
)
def test_speed_phrase(rate: float, seconds: float, phrase: str) -> None:
    flat = speed.Speed(1 / rate, 0.0, 100.0, 4096, ram_measured=True)
    assert flat.reply_s() == pytest.approx(seconds)
    assert hardware.speed_phrase(flat) == phrase


# --------------------------------------------------------------------- bandwidth


def test_measuring_ram_bandwidth_takes_under_a_second() -> None:
    started = time.monotonic()
    measured = hardware.measure_ram_bandwidth(2, budget_s=0.2, total_bytes=16 << 20)
    took = time.monotonic() - started
    assert measured is not None and measured > 1e8  # a tenth of a GB/s, whatever the machine
    assert took < 10  # a deadline for a crowded machine; the budget is 0.2 s
    default = hardware.MEASURE_BUDGET_S
    assert default < 1.0


def test_bandwidth_is_measured_once_and_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def fake(threads: int, **_: object) -> float:
        calls.append(threads)
        return 12.5e9

    monkeypatch.setattr(hardware.bandwidth, "measure_ram_bandwidth", fake)
    path = tmp_path / "cache" / BANDWIDTH_FILE
    assert hardware.remembered_bandwidth("machine-a", 2, path) == 12.5e9
    assert hardware.remembered_bandwidth("machine-a", 2, path) == 12.5e9
    assert calls == [2]
    assert hardware.remembered_bandwidth("machine-a", 1, path) == 12.5e9  # another count
    assert calls == [2, 1]
    saved = json.loads(path.read_text())
    assert saved["entries"]["machine-a|2"]["bytes_per_s"] == 12.5e9
    # A day later it is measured again, and the latest figure is kept: the machine
    # reads slower now (a VM on a busier host), and predictions follow it.
    saved["entries"]["machine-a|2"]["measured_at"] -= 2 * 24 * 3600
    path.write_text(json.dumps(saved))
    monkeypatch.setattr(hardware.bandwidth, "measure_ram_bandwidth", lambda t, **_: 3e9)
    assert hardware.remembered_bandwidth("machine-a", 2, path) == 3e9
    assert hardware.remembered_bandwidth("machine-a", 2, path) == 3e9  # for a day
    assert json.loads(path.read_text())["entries"]["machine-a|2"]["bytes_per_s"] == 3e9
    # The default file is in the cache folder (PONDER_HOME in tests).
    assert hardware.remembered_bandwidth("machine-b", 4) == 3e9
    assert (default_paths().cache_dir / BANDWIDTH_FILE).exists()


def test_bandwidth_memory_survives_a_corrupt_file_and_stays_small(tmp_path: Path) -> None:
    path = tmp_path / BANDWIDTH_FILE
    memory = hardware.BandwidthMemory(path)
    path.write_text("{not json")
    assert memory.recall("m", 2) is None
    path.write_text(json.dumps({"version": 1, "entries": {"m|2": {"bytes_per_s": "fast"}}}))
    assert memory.recall("m", 2) is None
    path.write_text(json.dumps({"version": 1, "entries": {"m|2": {"bytes_per_s": -1}}}))
    assert memory.recall("m", 2) is None
    for i in range(memory.MAX_ENTRIES + 3):
        memory.remember(f"m{i}", 2, 1e9)
    assert len(json.loads(path.read_text())["entries"]) == memory.MAX_ENTRIES
    assert memory.recall(f"m{memory.MAX_ENTRIES + 2}", 2) == 1e9


def test_probe_asks_for_bandwidth_with_the_performance_cores() -> None:
    from support.machines import probes_from, recorded

    asked: list[tuple[str, int]] = []

    def bandwidth(fingerprint: str, threads: int) -> float:
        asked.append((fingerprint, threads))
        return 30e9

    probes = dataclasses.replace(probes_from(recorded("rtx4060_laptop")), bandwidth=bandwidth)
    hw = hardware.probe(probes, os_gpus=False)
    assert hw.memory_bandwidth == 30e9
    assert asked == [(hw.fingerprint, 6)]
    failing = dataclasses.replace(probes, bandwidth=lambda f, t: 1 / 0)
    broken = hardware.probe(failing, os_gpus=False)
    assert broken.memory_bandwidth is None
    assert any(n.startswith("memory bandwidth: ZeroDivisionError") for n in broken.notes)
    assert any("speeds are guessed" in n for n in broken.notes)
    unmeasured = hardware.probe(dataclasses.replace(probes, bandwidth=None), os_gpus=False)
    assert unmeasured.memory_bandwidth is None


# ------------------------------------------------------------ fit and recommendation


def test_recommendation_is_the_most_capable_distill_that_thinks_fast_enough() -> None:
    hw = machine(LAPTOP)
    rec = hardware.recommend(catalog(), hw)
    assert rec is not None and rec.plan.speed is not None
    assert rec.model.short_name == "r1:1.5b" and rec.plan.speed.decode_tok_s >= 8
    assert "8 tokens/s or more" in rec.reason
    # The 7B fits too, but thinks at a few tokens a second here: one key away.
    assert rec.bigger is not None and rec.bigger.model.short_name == "r1:7b"
    assert rec.bigger.plan.speed is not None and rec.bigger.plan.speed.decode_tok_s < 8
    patient = hardware.recommend(catalog(), hw, usable_tok_s=2.0)
    assert patient is not None and patient.model.short_name == "r1:7b"
    impatient = hardware.recommend(catalog(), hw, usable_tok_s=1000.0)
    assert impatient is not None and impatient.model.short_name == "r1:1.5b"
    assert "this is the fastest" in impatient.reason


def test_nothing_bigger_when_the_largest_that_fits_is_usable() -> None:
    rec = hardware.recommend(catalog(), machine("dual_rtx3090"))
    assert rec is not None and rec.model.short_name == "r1-llama:70b" and rec.bigger is None


def test_fit_table_puts_the_best_choices_here_first() -> None:
    hw = machine(LAPTOP)
    rows = hardware.fit_table(catalog(), hw)
    groups = [
        0 if hardware.is_usable(r) else 1 if r.plan.fits else 2 for r in rows
    ]  # usable, then slow or short of context, then too big
    assert groups == sorted(groups) and set(groups) == {0, 1, 2}
    usable = [r for r in rows if hardware.is_usable(r)]
    sizes = [hardware.params_billions(r.model) or 0 for r in usable]
    assert sizes == sorted(sizes, reverse=True)
    slow = [r.speed.decode_tok_s for r in rows if r.speed is not None and not hardware.is_usable(r)]
    assert slow == sorted(slow, reverse=True)
    first = hardware.fit_cells(rows[0])
    assert first[-1].startswith("≈ ") and first[-1].endswith(" for a 1,500-token reply")
    assert hardware.fit_cells(rows[-1])[-1] == "-"  # too big: no speed
    lines = hardware.render_fit_table(rows).splitlines()
    assert lines[0].split()[-1] == "SPEED"


def test_fit_json_rows_carry_the_speeds() -> None:
    hw = machine("rtx4060_laptop")
    rows = hardware.fit_table(catalog(), hw)
    data = json.loads(json.dumps(hardware.fit_data(rows, hw, 8.0, ["r1:671b"])))
    assert data["machine"]["ram_bandwidth_bytes_per_s"] == 55e9
    assert data["machine"]["gpus"] == [
        {"device": "CUDA0", "bandwidth_bytes_per_s": 256e9, "known": True}
    ]
    first = data["rows"][0]
    assert first["usable"] and first["decode_tok_s"] > 8 and first["prompt_tok_s"] > 0
    assert first["decode_tok_s"] == round(rows[0].plan.speed.decode_tok_s, 2)  # type: ignore[union-attr]
    too_big = data["rows"][-1]
    assert too_big["verdict"] == "too_big" and too_big["decode_tok_s"] is None
    assert data["served_only"] == ["r1:671b"]


def test_the_usable_speed_is_a_setting(tmp_path: Path) -> None:
    def session(usable: float) -> Session:
        return Session(
            settings=Settings(usable_tok_s=usable),
            paths=default_paths(),
            catalog=catalog(),
            hardware_profile=machine(LAPTOP),
        )

    default = session_machine.recommend(session(8.0))
    assert default is not None and default.ref.startswith("r1:1.5b@")
    assert default.bigger is not None and default.bigger.ref.startswith("r1:7b@")
    assert "tok/s · about" in default.speed and "tok/s · about" in default.bigger.speed
    patient = session_machine.recommend(session(2.0))
    assert patient is not None and patient.ref.startswith("r1:7b@")
    assert Settings().usable_tok_s == 8.0
    with pytest.raises(ValueError):
        Settings(usable_tok_s=0)
