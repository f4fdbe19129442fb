"""MacReport outputs, energy, the CLI, and bad input."""

import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from delta_keras.cli import sim_main as main
from delta_keras.sim import EnergyModel, count_macs
from tests.sim.helpers import mobilenet_like, smooth_clips


@pytest.fixture(scope="module")
def report():
    rng = np.random.default_rng(0)
    return count_macs(mobilenet_like(frames=3), smooth_clips(2, 3, 16, rng))


def test_table_json_csv_plot_tensorboard(report, tmp_path):
    table = report.table()
    assert "conv2d" in table and "total" in table and "zero_delta" in table
    report.to_json(tmp_path / "r.json")
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["totals"]["dense"] == report.total("dense")
    assert len(saved["layers"][0]["macs_per_frame"]["zero_delta"]) == 3
    report.to_csv(tmp_path / "r.csv")
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert rows[-1]["layer"] == "total" and float(rows[-1]["dense"]) == report.total("dense") / 2
    report.plot(tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 0
    report.write_tensorboard(str(tmp_path / "tb"))
    tags = {v.tag for e in tf.compat.v1.train.summary_iterator(str(next((tmp_path / "tb").iterdir())))
            for v in e.summary.value}
    assert "sim/total/reduction_zero_delta" in tags


def test_energy_and_delta_state(report):
    dense, delta = report.energy("dense"), report.energy("zero_delta")
    assert delta["macs"] < dense["macs"] and delta["energy_pj"] < dense["energy_pj"]
    assert delta["state_bytes"] > 0 and dense["state_bytes"] == 0 and dense["state_reads"] == 0
    assert report.energy("dense", EnergyModel.fp32())["energy_pj"] > dense["energy_pj"]


def test_uncounted_layers_are_listed():
    clips = keras.Input((2, 4))
    x = keras.layers.EinsumDense("btf,fg->btg", (2, 3))(clips)
    x = keras.layers.Bidirectional(keras.layers.LSTM(2, return_sequences=True))(x)
    report = count_macs(keras.Model(clips, keras.layers.Dense(1)(x)), np.ones((1, 2, 4)))
    assert [layer.name for layer in report.layers] == ["dense"]
    assert set(report.uncounted) == {"einsum_dense", "bidirectional"}
    assert "uncounted: einsum_dense" in report.table()


def test_bad_input():
    model = mobilenet_like(frames=3)
    with pytest.raises(ValueError, match="do not fit"):
        count_macs(model, np.zeros((2, 16, 16, 3)))
    with pytest.raises(ValueError, match="do not fit"):
        count_macs(model, np.zeros((1, 2, 3, 16, 16, 3)))
    with pytest.raises(ValueError, match="unknown policies"):
        count_macs(model, np.zeros((3, 16, 16, 3)), policies=("sparse",))
    with pytest.raises(ValueError, match="granularity"):
        count_macs(model, np.zeros((3, 16, 16, 3)), granularity="block:2")


def test_cli(tmp_path, capsys, real_clip):
    path = str(tmp_path / "model.keras")
    mobilenet_like(frames=3).save(path)
    assert main([path, real_clip, real_clip, "--json", str(tmp_path / "out.json")]) == 0
    printed = capsys.readouterr().out
    assert "total" in printed and "NeuroBench Effective_MACs" in printed
    assert json.loads((tmp_path / "out.json").read_text())["samples"] == 2
    # Its own JSON is replaced on a rerun; a file it did not write is not, nor an existing --csv without --overwrite.
    assert main([path, real_clip, "--json", str(tmp_path / "out.json")]) == 0
    (tmp_path / "mine.csv").write_text("the user's")
    with pytest.raises(SystemExit) as exit_info:
        main([path, real_clip, "--csv", str(tmp_path / "mine.csv")])
    assert exit_info.value.code == 2 and (tmp_path / "mine.csv").read_text() == "the user's"
    with pytest.raises(SystemExit):
        main([path, str(tmp_path / "missing.avi")])
    assert os.path.getsize(tmp_path / "out.json") > 0


def test_a_dead_layer_reads_all_skipped_not_inf_and_is_warned_about():
    clips = keras.Input((3, 8, 8, 2))
    dead = keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3, activation="relu", name="c1",
                                                            bias_initializer="zeros", kernel_initializer="zeros"))
    second = keras.layers.TimeDistributed(keras.layers.Conv2D(2, 3, name="c2"))
    report = count_macs(keras.Model(clips, second(dead(clips))), np.ones((1, 3, 8, 8, 2)))
    table = report.table()
    assert "inf" not in table and " all " in table + " "
    assert report.dead_layers() == [report.layers[1].name]
    assert f"warning: 1 of 2 MAC layers received no nonzero input on any frame ({report.layers[1].name})" in table
