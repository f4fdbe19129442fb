"""`DeltaRuntime.calibrate`: break-evens measured inside a run, and the line they come from."""

import keras
import numpy as np
import pytest
from keras import layers as L

from delta_keras import sparsify
from delta_keras.files import UnsafeWriteError
from delta_keras.runtime import DeltaRuntime, load_break_evens, machine_summary, save_break_evens
from delta_keras.runtime.calibration import CANDIDATES, chosen
from tests.runtime.test_delta_runtime import dyadic, moving_square

STRIDES = (1, 2, 4)


def chain_model(size: int = 24) -> keras.Model:
    """Four 3x3 convolutions in a row (one run), exact in float32 (`dyadic`, integer pixels, steps of 1/4)."""
    names = ("first", "second", "third", "fourth")
    image = keras.Sequential([keras.Input((size, size, 3)),
                              *[L.Conv2D(8, 3, padding="same", activation="relu", name=name) for name in names]])
    return dyadic(sparsify(image, frames=None, step_init=0.25, include_input={"step_init": 1.0}), 0)


FRAMES = [(0, t) for t in range(1, 9)]


def timed(per_frame, repeats: int = 3, seed: int = 0, noisy=()) -> dict:
    """``{repeat: {frame: seconds}}``: ``per_frame(frame)`` seconds plus noise of 0.1 ms, and of a second on the
    ``noisy`` frames (what the host does to frames both settings chose alike)."""
    rng = np.random.default_rng(seed)
    return {r: {f: per_frame(f) + rng.normal(0, 1.0 if f in noisy else 1e-4) for f in FRAMES} for r in range(repeats)}


def test_a_share_replaces_the_modelled_one_where_its_choices_saved_in_every_repeat():
    # Dense on frames 5-8 saves 5 ms each; 0.3 and 0.45 choose alike (one setting), 0.3 nearest the model's 0.2.
    late = frozenset(FRAMES[4:])
    choices = {0.2: frozenset(), 0.3: late, 0.45: late, 1.0: frozenset()}
    sparse, dense = timed(lambda f: 0.010, seed=1), timed(lambda f: 0.005 if f in late else 0.010, seed=2)
    seconds = {0.2: sparse, 0.3: dense, 0.45: timed(lambda f: 0.005 if f in late else 0.010, seed=3),
               1.0: timed(lambda f: 0.010, seed=4)}
    measured = chosen("conv", 0.2, choices, seconds, [0.1, 0.3])
    assert measured.share == 0.3 and measured.modelled == 0.2 and measured.shares == (0.1, 0.3)
    assert measured.saved == pytest.approx(20 / 80, abs=0.01) and measured.milliseconds[0.2] == pytest.approx(80, abs=1)


def test_frames_both_settings_chose_alike_add_no_noise_to_the_saving():
    # A second of noise on frames 1-4, where both choose sparse: the 20 ms saved on frames 5-8 still stand out.
    late = frozenset(FRAMES[4:])
    noisy = set(FRAMES[:4])
    seconds = {0.2: timed(lambda f: 0.010, seed=1, noisy=noisy),
               0.3: timed(lambda f: 0.005 if f in late else 0.010, seed=2, noisy=noisy)}
    assert chosen("conv", 0.2, {0.2: frozenset(), 0.3: late}, seconds, []).share == 0.3
    # A frame's time depends on the choice on the frame before too: with a dense frame 4, frame 5 differs as well.
    # Dense, frame 4 costs 2 ms more, and frame 5 (sparse after a dense frame) 9 ms less; frames 1-3 are noisy.
    noisy = set(FRAMES[:3])
    cost = {FRAMES[3]: 0.012, FRAMES[4]: 0.001}
    assert chosen("conv", 0.2, {0.2: frozenset(), 0.3: frozenset({FRAMES[3]})}, {
        0.2: timed(lambda f: 0.010, seed=1, noisy=noisy),
        0.3: timed(lambda f: cost.get(f, 0.010), seed=2, noisy=noisy)}, []).share == 0.3


def test_a_saving_the_repeats_do_not_agree_on_keeps_the_modelled_share():
    late = frozenset(FRAMES[4:])
    # Saved 20 ms in two repeats, lost 30 ms in the third: not significant.
    seconds = {0.2: timed(lambda f: 0.010), 0.3: timed(lambda f: 0.005 if f in late else 0.010)}
    for frame in late:
        seconds[0.3][2][frame] += 0.0125
    measured = chosen("conv", 0.2, {0.2: frozenset(), 0.3: late}, seconds, [])
    assert measured.share == 0.2 and measured.saved == 0.0
    # One repeat cannot tell noise from a saving.
    one = {share: {0: times[0]} for share, times in seconds.items()}
    assert chosen("conv", 0.2, {0.2: frozenset(), 0.3: late}, one, []).share == 0.2


def changed_shares(clip: np.ndarray) -> list[float]:
    """The share of changed elements between consecutive frames of ``clip`` ``(1, T, H, W, C)`` streamed at each of
    STRIDES: what the first convolution reads (integer pixels, unchanged by the input quantiser)."""
    return [float(np.mean(frames[t] != frames[t - 1])) for frames in (clip[0, ::s] for s in STRIDES)
            for t in range(1, len(frames))]


def test_calibration_times_each_convolution_of_a_run_and_keeps_the_runtime_exact():
    model, clip = chain_model(), moving_square(9)
    runtime = DeltaRuntime(model, count_macs=False, min_fan_out=0, cut_above=np.inf)
    names = ["first", "second", "third", "fourth"]
    assert [kernel.layer.name for kernel in runtime.run_kernels] == names
    modelled = dict(runtime.dense_above)
    runtime.run(clip)  # compiled before timing
    measured = runtime.calibrate(clip, strides=STRIDES, repeats=2)
    assert list(measured) == names
    # Every frame after the first of each stream (nothing is a scene cut here); the first convolution's input shares
    # as the clip's.
    assert all(m.frames == sum(len(range(0, 9, s)) - 1 for s in STRIDES) for m in measured.values())
    shares = changed_shares(clip)
    assert measured["first"].shares == pytest.approx((min(shares), max(shares)))
    for name, m in measured.items():
        assert m.modelled == modelled[name] and set(m.milliseconds) == {*CANDIDATES, modelled[name]}
        assert m.share in m.milliseconds and m.saved >= 0
        kernel = runtime.run_kernels[names.index(name)]
        assert runtime.dense_above[name] == kernel.dense_above == m.share
        assert kernel.dense_from == int(m.share * kernel.sample_count) + 1
    # Reset, and exact whatever the shares chose.
    assert all(kernel.first for kernel in runtime.run_kernels)
    np.testing.assert_array_equal(runtime.run(clip), np.asarray(model(clip)))


@pytest.mark.parametrize("dearer", ["sparse", "dense"])
def test_a_convolution_whose_sparse_or_dense_frames_cost_more_is_calibrated_the_other_way(dearer):
    # A second charged to "second"'s clock on each of its sparse (or dense) frames, far above anything the tiny layers
    # cost: the calibration must then move it from never dense to dense on any change (or back), whatever the host's
    # noise.
    model, clip = chain_model(), moving_square(9)
    start = 1.0 if dearer == "sparse" else 0.0
    runtime = DeltaRuntime(model, count_macs=False, min_fan_out=0, cut_above=np.inf, dense_above=start)
    kernel = runtime.run_kernels[1]
    sparse, dense = kernel._sparse, kernel._dense_pass

    def sparse_charged(*args):
        result = sparse(*args)
        kernel.seconds["multiply"] += 0.0 if result[1] else 1.0
        return result

    def dense_charged(*args):
        kernel.seconds["dense"] += 1.0
        return dense(*args)

    if dearer == "sparse":
        kernel._sparse = sparse_charged
    else:
        kernel._dense_pass = dense_charged
    measured = runtime.calibrate(clip, strides=STRIDES)["second"]
    assert measured.modelled == start
    if dearer == "sparse":  # below the least share of changed inputs it saw: dense on every frame
        assert measured.share < measured.shares[0]
    else:  # at or above the largest: never dense
        assert measured.share >= measured.shares[1] and measured.share > 0
    # Its setting saved the seconds charged (a second a frame), far more than any noise.
    assert measured.milliseconds[measured.share] < min(measured.milliseconds.values()) + 500
    assert measured.saved > 0.5


def test_frames_that_are_all_scene_cuts_leave_every_share_as_it_was():
    # Two backgrounds alternating: every frame a scene cut, run densely as a whole, so no kernel runs to be timed.
    model, clip = chain_model(), moving_square(9)
    other = np.random.default_rng(5).integers(0, 256, clip.shape).astype("float32")
    cuts = np.where((np.arange(9) % 2 == 1)[None, :, None, None, None], other, clip)
    runtime = DeltaRuntime(model, count_macs=False, min_fan_out=0, cut_above=0.35)
    before = dict(runtime.dense_above)
    measured = runtime.calibrate(cuts, strides=(1,))
    assert {name: m.share for name, m in measured.items()} == before and all(m.saved == 0 for m in measured.values())
    assert all(set(m.milliseconds.values()) == {0.0} for m in measured.values())


def test_calibration_refuses_what_it_cannot_time():
    model, clip = chain_model(), moving_square(9)
    with pytest.raises(ValueError, match="no convolution of this runtime chooses dense or sparse in a run"):
        DeltaRuntime(model, min_fan_out=0).calibrate(clip)  # counting: no runs
    runtime = DeltaRuntime(model, count_macs=False, min_fan_out=0)
    with pytest.raises(ValueError, match="need at least 2 frames"):
        runtime.calibrate(clip[:, :1])
    with pytest.raises(ValueError, match="expected a batch of 1 clips, got 2"):
        runtime.calibrate(np.concatenate([clip, clip]))
    with pytest.raises(ValueError, match="do not fit the model input"):
        runtime.calibrate(clip[..., :2])


def test_only_a_convolution_that_chooses_in_its_kernel_takes_a_new_share():
    model = chain_model()
    kernel = DeltaRuntime(model, count_macs=False, min_fan_out=0, fuse=True)._kernels["second"]
    with pytest.raises(ValueError, match="second: only a convolution of a run chooses dense or sparse in its kernel"):
        kernel.use_dense_above(0.5)


def test_break_evens_kept_in_a_file_set_a_later_runtime(tmp_path):
    model, clip = chain_model(), moving_square(9)
    runtime = DeltaRuntime(model, count_macs=False, min_fan_out=0)
    runtime.calibrate(clip, repeats=2)
    shares = {**runtime.dense_above, "second": 0.7}  # a share no model gives, so that the file is what sets it
    path = save_break_evens(tmp_path / "chain.json", shares, frame_size=[24, 24])
    loaded, about = load_break_evens(path)
    assert loaded == shares and about == {"machine": machine_summary(), "frame_size": [24, 24]}
    later = DeltaRuntime(model, count_macs=False, min_fan_out=0, dense_above=loaded)
    assert later.dense_above == shares and later._kernels["second"].dense_above == 0.7
    np.testing.assert_array_equal(later.run(clip), np.asarray(model(clip)))
    save_break_evens(path, later.dense_above)  # the package's own file: replaced


def test_a_file_that_is_not_break_evens_is_refused_and_a_users_file_is_never_overwritten(tmp_path):
    for name, text in (("notes.json", "my notes"), ("other.json", '{"dense_above": {"first": 1.5}}'),
                       ("empty.json", '{"dense_above": {}}'), ("list.json", "[0.2]")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=f"{name}: .*(not a JSON file of break-evens|shares in \\[0, 1\\])"):
            load_break_evens(tmp_path / name)
    with pytest.raises(UnsafeWriteError, match="was not written by delta_keras"):
        save_break_evens(tmp_path / "other.json", {"first": 0.2})
    assert (tmp_path / "other.json").read_text() == '{"dense_above": {"first": 1.5}}'
    with pytest.raises(ValueError, match="dense_above names 'fifth': not a layer with a delta kernel"):
        DeltaRuntime(chain_model(), count_macs=False, min_fan_out=0, dense_above={"fifth": 0.2})
