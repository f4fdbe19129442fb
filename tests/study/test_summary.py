"""study/summary.py: Pareto front and best points per method."""

from delta_keras.study import summary as summary_lib


def test_pareto_front_and_best_points():
    assert summary_lib.pareto_front([(1, 0.9), (2, 0.8), (1.5, 0.7), (3, 0.85)]) == [0, 3]
    runs = [{"name": "d", "method": "dense", "video_accuracy": 0.9, "reduction_zero_delta": 2},
            {"name": "a", "method": "delta_refine", "video_accuracy": 0.895, "reduction_zero_delta": 8},
            {"name": "b", "method": "delta_refine", "video_accuracy": 0.7, "reduction_zero_delta": 30},
            {"name": "c", "method": "l1", "video_accuracy": 0.5, "reduction_zero_delta": 3}]
    best = summary_lib.best_points(runs, tolerance=0.01)
    assert best["delta_refine"] == {"name": "a", "within_tolerance": True}
    assert best["l1"] == {"name": "c", "within_tolerance": False}
