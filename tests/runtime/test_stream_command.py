"""delta-keras-stream: a video through a model frame by frame, runtime against dense, outputs written."""

import keras
import numpy as np
import pytest

from delta_keras.cli import stream_main
from delta_keras.data import count_frames, write_video
from delta_keras.models import video_classifier
from delta_keras.runtime import load_break_evens, machine_summary, save_break_evens


def _smooth_video(path, frames: int = 8, size: int = 24):
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 255, (size, size, 3))
    clip = np.stack([np.roll(base, t // 2, axis=1) for t in range(frames)])  # a slow pan, still pairs
    write_video(path, clip)
    return path


def _edge_model(path):
    images = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 255)(images)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv0")(x)  # 144 MACs an input: the sparse kernel
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(x)
    keras.Model(images, keras.layers.Conv2D(1, 1, activation="sigmoid", name="edges")(x)).save(path)
    return path


@pytest.mark.parametrize("options", [["--step", "0.05"], ["--step", "0.05", "--fuse"], ["--threshold", "0.05"],
                                     ["--step", "0.05", "--calibrate", "4"]])
def test_an_image_model_streams_with_a_step_and_writes_its_edge_maps(tmp_path, capsys, options):
    # --threshold: deltas with memory, the thresholds in the convolutions' output pass (the timed runtime does not count).
    # --calibrate: the break-evens measured on the first frames first, exact all the same.
    video = _smooth_video(tmp_path / "pan.avi")
    out = tmp_path / "edges.avi"
    assert stream_main([str(_edge_model(tmp_path / "edges.keras")), str(video), "--size", "24", *options,
                        "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "8 frames of 24x24" in text and " CPUs, " in text and "speedup (frames 1..7)" in text and "x fewer" in text
    largest = float(text.split("largest |runtime - forward pass| over the first 8 frames: ")[1].split()[0])
    assert largest < 1e-3
    assert count_frames(out) == 8
    if "--calibrate" in options:
        calibrated = text.split("calibrated on frames 0..3, dense above this share of changed inputs (before it): ")[1]
        assert calibrated.startswith("conv0 ") and " conv1 " in calibrated.splitlines()[0]


@pytest.mark.parametrize("head", ["average", "temporal"])
def test_a_clip_classifier_streams_and_writes_its_running_scores(tmp_path, capsys, head):
    # The temporal head (a Conv1D over the frames) runs at each step on the frames so far.
    video = _smooth_video(tmp_path / "pan.avi", frames=6, size=16)
    model = video_classifier("tiny", 3, frames=None, image_size=16, sparsity="delta", step_init=4.0, head=head)
    model.save(tmp_path / "clip.keras")
    out = tmp_path / "scores.csv"
    assert stream_main([str(tmp_path / "clip.keras"), str(video), "--out", str(out), "--check-frames", "4"]) == 0
    rows = out.read_text().splitlines()
    assert rows[0] == "frame,output_0,output_1,output_2" and len(rows) == 1 + 6
    text = capsys.readouterr().out
    assert float(text.split("largest |runtime - forward pass| over the first 4 frames: ")[1].split()[0]) < 1e-4


@pytest.mark.parametrize("extra, message", [
    ([], "an image model; give --step"),
    (["--step", "0"], "--step must be > 0"),
    (["--step", "1", "--frames", "1"], "--frames must be >= 2"),
    (["--step", "1", "--out", "x.mp4"], "expected a .avi (image outputs) or .csv"),
    (["--step", "1", "--size", "big"], "--size big: expected HxW"),
    (["--step", "1", "--resync-every", "-1"], "--resync-every must be >= 0"),
    (["--step", "1", "--dense-above", "1.5"], "--dense-above must be a share in [0, 1], got 1.5"),
    (["--step", "1", "--calibrate", "1"], "--calibrate N times the unfused runtime's convolutions on N >= 2 frames"),
    (["--step", "1", "--calibrate", "3", "--fuse"], "on N >= 2 frames, got 3 with --fuse"),
    (["--step", "1", "--dense-above", "shares.json"], "--dense-above shares.json: expected a share in [0, 1] or an "
                                                      "existing .json file of shares (--save-break-evens)"),
    (["--step", "1", "--save-break-evens", "shares.txt"], "--save-break-evens shares.txt: expected a .json file"),
])
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    video = _smooth_video(tmp_path / "pan.avi", frames=3, size=16)
    with pytest.raises(SystemExit) as stopped:
        stream_main([str(_edge_model(tmp_path / "edges.keras")), str(video), *extra])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


def test_paths_and_existing_outputs_are_refused_before_any_work(tmp_path, capsys):
    video = _smooth_video(tmp_path / "pan.avi", frames=3, size=16)
    model = _edge_model(tmp_path / "edges.keras")
    existing = tmp_path / "mine.csv"
    existing.write_text("my data\n")
    for argv, message in (([str(tmp_path / "none.keras"), str(video)], "no such file"),
                          ([str(model), str(tmp_path)], "is a folder, expected a file"),
                          ([str(model), str(video), "--step", "1", "--out", str(existing)], "exists; pass --overwrite")):
        with pytest.raises(SystemExit) as stopped:
            stream_main(argv)
        assert stopped.value.code == 2 and message in capsys.readouterr().err
    assert existing.read_text() == "my data\n"
    clip = video_classifier("tiny", 3, frames=None, image_size=16)
    clip.save(tmp_path / "clip.keras")
    with pytest.raises(SystemExit):
        stream_main([str(tmp_path / "clip.keras"), str(video), "--step", "1"])
    assert "already a clip model" in capsys.readouterr().err


def _executed(text: str) -> float:
    return float(text.split("the runtime executed ")[1].split()[0])


def test_break_evens_saved_by_one_stream_set_the_next(tmp_path, capsys):
    video, model = _smooth_video(tmp_path / "pan.avi"), str(_edge_model(tmp_path / "edges.keras"))
    shares = tmp_path / "shares.json"
    assert stream_main([model, str(video), "--size", "24", "--step", "0.05", "--calibrate", "4",
                        "--save-break-evens", str(shares)]) == 0
    assert f"break-evens: {shares}" in capsys.readouterr().out
    saved, about = load_break_evens(shares)
    assert set(saved) == {"conv0", "conv1"} and about["machine"] == machine_summary()
    assert about["frame_size"] == [24, 24] and about["calibrated_on"].endswith("pan.avi frames 0..3")
    # The file's shares are the runtime's: on a square moving over a still background, every layer dense on any
    # change executes more MACs than never dense.
    square = np.zeros((8, 24, 24, 3))
    for t in range(8):
        square[t, 8:16, 2 + t:10 + t] = 255
    write_video(tmp_path / "square.avi", square)
    executed = {}
    for share in (0.0, 1.0):
        save_break_evens(shares, {"conv0": share, "conv1": share}, frame_size=[24, 24])
        assert stream_main([model, str(tmp_path / "square.avi"), "--size", "24", "--step", "0.05",
                            "--dense-above", str(shares)]) == 0
        text = capsys.readouterr().out
        assert f"break-evens from {shares}, measured on {machine_summary()}" in text and "note:" not in text
        executed[share] = _executed(text)
    assert executed[0.0] > executed[1.0]
    # Shares measured elsewhere are used, with a note of where (the model by its file name: a copy may be elsewhere).
    save_break_evens(shares, {"conv0": 0.2}, model="/elsewhere/hed.keras", frame_size=[48, 48])
    text = shares.read_text().replace(machine_summary(), "another CPU")
    shares.write_text(text)
    assert stream_main([model, str(video), "--size", "24", "--step", "0.05", "--dense-above", str(shares)]) == 0
    assert ("note: they were measured on another CPU, for /elsewhere/hed.keras, at 48x48 frames, not for this stream"
            in capsys.readouterr().out)
    save_break_evens(shares, {"conv0": 0.2}, model="/elsewhere/edges.keras", frame_size=[24, 24])
    assert stream_main([model, str(video), "--size", "24", "--step", "0.05", "--dense-above", str(shares)]) == 0
    assert "note:" not in capsys.readouterr().out


def test_a_break_evens_file_that_does_not_fit_is_one_line_and_a_users_file_is_kept(tmp_path, capsys):
    video, model = _smooth_video(tmp_path / "pan.avi", frames=3, size=16), str(_edge_model(tmp_path / "edges.keras"))
    mine = tmp_path / "mine.json"
    mine.write_text('{"my": "settings"}')
    other = save_break_evens(tmp_path / "other.json", {"conv9": 0.2})
    for extra, message in ((["--dense-above", str(mine)], f"--dense-above {mine}: expected a JSON object whose"),
                           (["--dense-above", str(other)], f"--dense-above {other}: dense_above names 'conv9'"),
                           (["--save-break-evens", str(mine)], f"--save-break-evens {mine}: exists; pass --overwrite"),
                           (["--save-break-evens", str(mine), "--overwrite"], "was not written by delta_keras")):
        with pytest.raises(SystemExit) as stopped:
            stream_main([model, str(video), "--size", "16", "--step", "1", *extra])
        error = capsys.readouterr().err.strip()
        assert stopped.value.code == 2 and message in error and len(error.splitlines()) == 1
    assert mine.read_text() == '{"my": "settings"}'
