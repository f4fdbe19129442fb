"""study/real_footage.py: edge F1, the targets and what the report says of them."""

import numpy as np
import pytest

from delta_keras.study.real_footage import edge_f1


def test_targets_compare_trained_points_with_the_best_posthoc_point():
    from delta_keras.study.real_footage import targets

    runs = [{"name": "p", "method": "posthoc", "edge_f1": 0.985, "reduction_zero_delta": 10.0},
            {"name": "m", "method": "posthoc_memory", "edge_f1": 0.99, "reduction_zero_delta": 12.0},
            {"name": "d", "method": "distill", "edge_f1": 0.982, "reduction_zero_delta": 26.0}]
    result = targets(runs)
    assert result["best_trained"] == "d" and result["target_reduction_met"]
    assert result["posthoc_reference"] == "m" and result["reduction_vs_posthoc"] == pytest.approx(26 / 12)
    assert result["target_posthoc_met"]
    assert not targets(runs, over_posthoc=2.5)["target_posthoc_met"]
    runs[2]["edge_f1"] = 0.97
    assert not targets(runs)["target_reduction_met"]


def test_edge_f1():
    reference = np.array([0.9, 0.9, 0.1, 0.1])
    assert edge_f1(reference, reference) == 1.0
    assert edge_f1(reference, np.array([0.9, 0.1, 0.9, 0.1])) == pytest.approx(0.5)
    assert edge_f1(np.zeros(4), np.zeros(4)) == 1.0


def test_the_report_says_what_the_25x_target_asks_of_later_frames():
    from delta_keras.study.real_footage import _why

    runs = [{"name": "dense", "method": "dense", "reduction_zero_activation": 4.0, "reduction_zero_delta": 4.0},
            {"name": "d", "method": "distill", "reduction_zero_delta": 10.0}]
    (line, _) = _why({"best_trained": "d"}, runs, frames=16)
    # Frame 0 costs 1/4 of a dense frame; 25x leaves (16/25 - 0.25) / 15 = 2.6% a later frame; 10x spends 9.0%.
    assert "exceed 64x" in line and "2.6%" in line and "9.0%" in line and "3.5x that" in line


def test_reduction_at_equal_f1_interpolates_along_the_frontier():
    from delta_keras.study.real_footage import reduction_at

    points = [(0.99, 4.0), (0.97, 16.0), (0.95, 20.0), (0.96, 10.0)]  # (0.96, 10) is dominated by (0.97, 16)
    assert reduction_at(points, 0.99) == pytest.approx(4.0)
    assert reduction_at(points, 0.98) == pytest.approx(8.0)  # halfway in F1, halfway in log reduction
    assert reduction_at(points, 0.96) == pytest.approx(np.sqrt(16 * 20))
    assert reduction_at(points, 0.97) == pytest.approx(16.0)
    assert reduction_at(points, 0.90) is None and reduction_at(points, 0.995) is None  # no extrapolation


def test_the_report_compares_methods_at_equal_fidelity():
    from delta_keras.study.real_footage import _equal_fidelity

    runs = [{"method": "dense", "edge_f1": 1.0, "reduction_zero_delta": 3.0},
            {"method": "posthoc", "edge_f1": 0.99, "reduction_zero_delta": 5.0},
            {"method": "posthoc", "edge_f1": 0.95, "reduction_zero_delta": 12.0},
            {"method": "posthoc_memory", "edge_f1": 0.99, "reduction_zero_delta": 4.0},
            {"method": "posthoc_memory", "edge_f1": 0.97, "reduction_zero_delta": 10.0},
            {"method": "posthoc_memory", "edge_f1": 0.94, "reduction_zero_delta": 11.0},
            {"name": "d", "method": "distill", "edge_f1": 0.99, "reduction_zero_delta": 10.0},
            {"name": "d-x2", "method": "distill", "rescaled_from": "d", "edge_f1": 0.97, "reduction_zero_delta": 20.0},
            {"name": "s", "method": "distill", "trains": "steps", "edge_f1": 0.99, "reduction_zero_delta": 6.0},
            {"name": "s-x2", "method": "distill", "rescaled_from": "s", "edge_f1": 0.97, "reduction_zero_delta": 12.0}]
    for index, run in enumerate(runs):
        run.setdefault("name", f"run{index}")
    rows = {line.split(" | ")[0].strip("| "): line for line in _equal_fidelity(runs) if line.startswith("| ")}
    assert "dense" not in rows
    # The best post-hoc method at each F1: fixed steps at 0.99, memory at 0.98 and 0.97, fixed steps at 0.95.
    assert rows["post-hoc, any kind"] == "| post-hoc, any kind | 5.00x | 6.32x | 10.00x | 12.00x |"
    assert rows["distill / post-hoc"] == "| distill / post-hoc | 2.00 | 2.24 | 2.00 | – |"
    # A refinement of the steps alone is a series of its own, its rescaled points with it.
    assert rows["distill (steps only)"] == "| distill (steps only) | 6.00x | 8.49x | 12.00x | – |"
