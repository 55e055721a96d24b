"""Mixed precision chosen by measurement: `mixed_precision: auto`.

The CPUs under this project differ widely in bf16 speed (from half to four times the fp32 rate),
so no precision is assumed. `auto` times the model's own training step in fp32 and under bf16
autocast, interleaved on identical copies, and keeps bf16 only where it is faster and its first
loss agrees with fp32's within `LOSS_TOLERANCE`. The choice and both rates are written to the
run's folder (`precision.json`), so a resumed or repeated run reuses it and computes the same
steps whatever the machine's load at the time.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from talk2face.device import cpu_model
from talk2face.errors import UserError

CHOICES = ("auto", "no", "bf16", "fp16")
LOSS_TOLERANCE = 0.05  # largest relative difference of the first losses for bf16 to count as equal
RECORD_NAME = "precision.json"


@dataclass
class PrecisionChoice:
    mixed_precision: str  # "no" or "bf16": what the run uses
    steps_per_s: dict[str, float]  # measured rate of each candidate
    first_loss: dict[str, float]  # loss of the first step of each candidate, from the same weights
    device: str  # "cpu", "cuda", ...
    hardware: str  # CPU model or GPU name

    def describe(self) -> str:
        rates = ", ".join(f"{p} {r:.2f} steps/s" for p, r in self.steps_per_s.items())
        return f"mixed_precision auto -> {self.mixed_precision!r} on {self.hardware} ({rates})"


def validate(value: str, where: str = "mixed_precision") -> str:
    if value not in CHOICES:
        raise UserError(f"{where}={value!r} is not one of {list(CHOICES)}")
    return value


def autocast(device: str, precision: str):
    """The autocast context of `precision` ("no" = fp32) on a device type."""
    enabled = precision in ("bf16", "fp16")
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type=device, dtype=dtype, enabled=enabled)


def measure(make_step: Callable[[str], Callable[[], float]], device: str, repeats: int = 3) -> PrecisionChoice:
    """Time one training step per candidate precision and pick the faster that keeps the loss.

    Args:
        make_step: precision -> a function that runs one training step (forward, backward,
            optimiser) on its own fresh copy of the model, under that precision's autocast, and
            returns the loss. Each candidate's copy starts from the same weights and batch.
        device: the device type the steps run on.
        repeats: timed steps per candidate, after one warm-up step; interleaved between the
            candidates so that a change of the machine's load hits both alike. A candidate whose
            warm-up took over 4x the fastest one's is rated by its warm-up alone.
    Returns:
        the choice, with the measured median rates and first losses.
    """
    candidates = ["no"]
    if device != "cuda" or torch.cuda.is_bf16_supported():
        candidates.append("bf16")
    with torch.random.fork_rng(devices=[]):  # the probe must not move the run's random streams
        steps = {p: make_step(p) for p in candidates}
        first, seconds = {}, {}
        for p in candidates:  # warm-up; same weights -> comparable first losses
            start = time.perf_counter()
            first[p] = float(steps[p]())
            seconds[p] = [time.perf_counter() - start]
        # a candidate whose warm-up took over 4x the fastest one's is not timed further: it cannot
        # win, and on a CPU without native bf16 its steps cost tens of seconds each
        fastest = min(s[0] for s in seconds.values())
        timed = [p for p in candidates if seconds[p][0] <= 4 * fastest]
        for p in timed:
            seconds[p] = []
        for _ in range(repeats):
            for p in timed:
                if device == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                steps[p]()
                if device == "cuda":
                    torch.cuda.synchronize()
                seconds[p].append(time.perf_counter() - start)
    rates = {p: 1.0 / statistics.median(s) for p, s in seconds.items()}
    pick = "no"
    if "bf16" in rates and rates["bf16"] > rates["no"]:
        agree = abs(first["bf16"] - first["no"]) <= LOSS_TOLERANCE * max(abs(first["no"]), 1e-8)
        pick = "bf16" if agree else "no"
    hardware = torch.cuda.get_device_name() if device == "cuda" else cpu_model()
    return PrecisionChoice(pick, rates, first, device, hardware)


def step_probe(model: torch.nn.Module, make_optimizers: Callable[[torch.nn.Module], list[torch.optim.Optimizer]],
               loss_of: Callable[[torch.nn.Module], torch.Tensor], device: str) -> Callable[[str], Callable[[], float]]:
    """The `make_step` of `measure` for a training loop: a fresh copy of `model` per precision.

    Args:
        model: the freshly built model (left untouched).
        make_optimizers: the copy -> its optimisers, as the training loop makes them.
        loss_of: the copy -> the loss of one fixed batch already on `device`.
        device: where the copies run.
    """
    def make_step(precision: str) -> Callable[[], float]:
        copy_ = copy.deepcopy(model).to(device)
        optimizers = make_optimizers(copy_)

        def step() -> float:
            with autocast(device, precision):
                loss = loss_of(copy_)
            copy_.zero_grad(set_to_none=True)
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
            return loss.item()
        return step
    return make_step


def resolve(requested: str, run_dir: str | Path, make_step: Callable[[str], Callable[[], float]], device: str,
            log: Callable[[str], None] = print) -> str:
    """The precision a run uses: `requested` unless "auto"; for "auto" the run's recorded choice,
    or a fresh measurement (`measure`) recorded in `run_dir/precision.json`.

    Args:
        requested: the config's `mixed_precision`.
        run_dir: the run's output folder (created if missing).
        make_step: see `measure`.
        device: the device type.
        log: where the choice is reported.
    Returns:
        "no", "bf16" or "fp16".
    """
    validate(requested)
    if requested != "auto":
        return requested
    record = Path(run_dir) / RECORD_NAME
    if record.exists():
        try:
            chosen = json.loads(record.read_text())["mixed_precision"]
        except (ValueError, KeyError) as err:
            raise UserError(f"{record}: not a precision record ({err}); delete it to measure again") from err
        log(f"mixed_precision auto -> {chosen!r}, as recorded in {record}")
        return validate(chosen, str(record))
    choice = measure(make_step, device)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(asdict(choice), indent=2) + "\n")
    log(choice.describe())
    return choice.mixed_precision


def accelerator_for(precision: str, **kwargs):
    """An `accelerate.Accelerator` for one training run at `precision` ("no" or "bf16").

    accelerate keeps one AcceleratorState per process and refuses a second precision, but each run
    measures its own (`mixed_precision: auto`), so a process that trains twice (the tests and the
    demo's in-process VQGAN training; bench_train times both precisions) drops the previous run's
    state first. The distributed state (PartialState) is kept.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision=precision, **kwargs)
