"""study/report.py: how the report formats its cells."""

from delta_keras.study.report import cell


def test_cell_formats():
    assert cell("video_accuracy", 0.8125) == "81.2"
    assert cell("reduction_zero_delta", 12.345) == "12.35x"
    assert cell("macs_zero_delta", 1_404_000) == "1.404M"
    assert cell("temporal_density_mac", None) == "–"
