"""mixed_precision auto: the faster precision that keeps the loss, recorded and reused."""

import json

import pytest

from talk2face_train import precision
from talk2face.errors import UserError


def fake_steps(seconds: dict[str, float], losses: dict[str, float], clock: list[float]):
    """make_step for `measure`: each step advances a fake clock by its precision's cost."""
    def make_step(p: str):
        def step() -> float:
            clock[0] += seconds[p]
            return losses[p]
        return step
    return make_step


@pytest.fixture
def clock(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(precision.time, "perf_counter", lambda: now[0])
    return now


def test_the_faster_precision_wins_when_the_losses_agree(clock):
    choice = precision.measure(fake_steps({"no": 0.4, "bf16": 0.1}, {"no": 2.0, "bf16": 2.01}, clock), "cpu")
    assert choice.mixed_precision == "bf16" and choice.steps_per_s == pytest.approx({"no": 2.5, "bf16": 10.0})
    choice = precision.measure(fake_steps({"no": 0.1, "bf16": 0.4}, {"no": 2.0, "bf16": 2.0}, clock), "cpu")
    assert choice.mixed_precision == "no"  # bf16 slower: fp32


def test_a_faster_bf16_whose_loss_differs_is_refused(clock):
    choice = precision.measure(fake_steps({"no": 0.4, "bf16": 0.1}, {"no": 2.0, "bf16": 2.5}, clock), "cpu")
    assert choice.mixed_precision == "no" and choice.first_loss == {"no": 2.0, "bf16": 2.5}


def test_the_choice_is_recorded_and_reused_whatever_the_machine_does_later(clock, tmp_path):
    logged = []
    first = precision.resolve("auto", tmp_path, fake_steps({"no": 0.4, "bf16": 0.1}, {"no": 1.0, "bf16": 1.0}, clock),
                              "cpu", log=logged.append)
    assert first == "bf16" and json.loads((tmp_path / "precision.json").read_text())["mixed_precision"] == "bf16"
    assert "bf16 10.00 steps/s" in logged[0] and "no 2.50 steps/s" in logged[0]
    # a rerun on a machine where fp32 now looks faster still uses the recorded choice
    again = precision.resolve("auto", tmp_path, fake_steps({"no": 0.1, "bf16": 0.4}, {"no": 1.0, "bf16": 1.0}, clock),
                              "cpu", log=logged.append)
    assert again == "bf16" and "as recorded" in logged[1]
    # an explicit choice wins and measures nothing
    assert precision.resolve("no", tmp_path / "other", None, "cpu") == "no" and not (tmp_path / "other").exists()


def test_unknown_precision_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match=r"mixed_precision='fp7' is not one of"):
        precision.resolve("fp7", tmp_path, None, "cpu")


def test_a_hopelessly_slow_candidate_is_not_timed_again(clock):
    calls = {"no": 0, "bf16": 0}

    def make_step(p):
        def step():
            calls[p] += 1
            clock[0] += {"no": 0.1, "bf16": 5.0}[p]
            return 1.0
        return step
    choice = precision.measure(make_step, "cpu", repeats=3)
    assert choice.mixed_precision == "no" and calls == {"no": 4, "bf16": 1}
    assert choice.steps_per_s["bf16"] == pytest.approx(0.2)


def test_a_second_run_in_the_same_process_gets_its_own_precision():
    # accelerate alone refuses a second precision per process; the demo trains two models in one
    first = precision.accelerator_for("no")
    assert first.mixed_precision == "no"
    second = precision.accelerator_for("bf16")
    assert second.mixed_precision == "bf16"
    assert precision.accelerator_for("no").mixed_precision == "no"
