"""DeltaRuntime: the forward pass's outputs and count_macs' zero_delta MACs, while multiplying only what changed."""

import keras
import numpy as np
import pytest

from delta_keras import DeltaActivation, sparsify, strip_sparsity
from delta_keras.models import video_classifier
from delta_keras.runtime import DeltaRuntime
from delta_keras.runtime.kernels import _list_changes, break_even
from delta_keras.runtime.runs import ConvolutionRun
from delta_keras.runtime.fused import KEEP, MEMORY, QUANTIZE, ChangeList
from delta_keras.sim import count_macs
from delta_keras.sim.engine import DeltaInference
from delta_keras.data import read_clip
from tests.sim.helpers import mobilenet_like, randomize_batch_norm, resnet_like, smooth_clips

L = keras.layers
pytest.importorskip("numba")


def dyadic_clip_model(size: int = 24, memory: bool = False) -> keras.Model:
    """A clip model in which float32 arithmetic is exact: integer pixels (input quantised at step 1), weights and
    biases multiples of 1/16, activation steps 1/4. Its convolutions cover what the sparse kernel must get
    right: "same" and "valid" padding, stride 2, dilation 2, a 1x1 convolution, then a dense layer; a max pooling
    after the first (fused into its epilogue, as the other convolutions' ReLU and quantiser)."""
    image = keras.Sequential([
        keras.Input((size, size, 3)),
        L.Conv2D(8, 3, padding="same", activation="relu", name="same"),
        L.MaxPooling2D(3, strides=2, padding="same"),
        L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="strided"),
        L.Conv2D(8, 3, dilation_rate=2, padding="valid", activation="relu", name="dilated"),
        L.Conv2D(4, 1, activation="relu", name="pointwise"),
        L.GlobalAveragePooling2D(),
        L.Dense(6, activation="relu", name="hidden"),
        L.Dense(3, name="logits"),
    ])
    return dyadic(sparsify(image, frames=None, step_init=0.25, include_input={"step_init": 1.0}, memory=memory), 0)


def dyadic(model: keras.Model, seed: int) -> keras.Model:
    """``model`` with random weights and biases that are multiples of 1/16 in [-1/4, 1/4]."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, (L.Conv2D, L.Dense)):
            layer.set_weights([rng.integers(-4, 5, w.shape).astype("float32") / 16 for w in layer.get_weights()])
    return model


def moving_square(frames: int, size: int = 24, cut_at: int | None = None) -> np.ndarray:
    """Integer pixels: a fixed random background with a 6x6 square moving one pixel a frame; from ``cut_at`` on,
    another background (a scene cut)."""
    rng = np.random.default_rng(1)
    backgrounds = rng.integers(0, 256, (2, size, size, 3)).astype("float32")
    clip = np.stack([backgrounds[int(cut_at is not None and t >= cut_at)].copy() for t in range(frames)])
    for t in range(frames):
        clip[t, 4 + t:10 + t, 6:12] = 255.0
    return clip[None]


def check_against_forward_and_count(model, clips, exact: bool, **runtime_kwargs) -> DeltaRuntime:
    # min_fan_out=0: the test models' small convolutions run with the sparse kernel, whatever their speed.
    runtime = DeltaRuntime(model, batch_size=clips.shape[0], **{"min_fan_out": 0, **runtime_kwargs})
    outputs, expected = runtime.run(clips), np.asarray(model(clips))
    if exact:
        np.testing.assert_array_equal(outputs, expected)
    else:
        np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-4)
    report = count_macs(model, clips, policies=("zero_delta",))
    assert {layer.name: layer.macs("zero_delta").tolist() for layer in report.layers} == runtime.macs
    return runtime


@pytest.mark.parametrize("dense_above", [0.0, 0.1, 1.0])  # dense on any sampled change, the default, never
@pytest.mark.parametrize("memory", [False, True])
def test_exact_on_every_convolution_geometry(dense_above, memory):
    model = dyadic_clip_model(memory=memory)
    # Memory mode sends activations themselves, not multiples of the step: equal up to float rounding.
    runtime = check_against_forward_and_count(model, moving_square(6), exact=not memory, dense_above=dense_above)
    executed, dense = runtime.executed_macs["same"], runtime.dense_macs["same"]
    if dense_above < 1.0:
        assert executed[0] == dense  # frame 0: everything changed from the zero state
    else:
        # Later frames: the square's move changes a small part of the frame, and only that is multiplied,
        # exactly the zero_delta MACs.
        assert executed[1:] == runtime.macs["same"][1:] and max(executed[1:]) < dense / 4
    # Otherwise each frame is either recomputed densely or updated with exactly its changes' MACs.
    assert all(e in (dense, m) for e, m in zip(executed, runtime.macs["same"]))


@pytest.mark.parametrize("memory", [False, True])
def test_fused_layers_hand_on_change_lists(memory):
    # Each convolution evaluates its ReLU, quantiser (or memory threshold) and the max pooling itself, where its
    # changes landed, and the next convolution reads that list instead of comparing frames: the same outputs and
    # MAC counts as without fusing.
    model = dyadic_clip_model(memory=memory)
    clip = moving_square(6)
    runtime = check_against_forward_and_count(model, clip, exact=not memory, dense_above=1.0, fuse=True)
    chains = runtime.fusion.chains
    assert chains["same"].epilogue.relu and chains["same"].epilogue.pool == (3, 3)
    assert {reader: producer for reader, (producer, _) in runtime.fusion.sources.items()} == {
        "strided": "same", "dilated": "strided", "pointwise": "dilated"}
    assert runtime.fusion.sources["strided"][1] == "pooled"
    unfused = DeltaRuntime(model, dense_above=1.0, min_fan_out=0)
    np.testing.assert_array_equal(runtime.run(clip), unfused.run(clip))
    assert runtime.macs == unfused.macs and runtime.executed_macs == unfused.executed_macs
    assert not unfused.fusion.chains


@pytest.mark.parametrize("memory", [False, True])
def test_relu_and_quantiser_run_in_the_convolutions_output_pass(memory):
    # Unfused, each convolution hands on its output whole, with the ReLU and the per-frame quantiser after it
    # evaluated in its output pass (a memory threshold keeps state: it stays a layer of its own). The outputs
    # equal the forward pass on sparse and dense frames alike (test_exact_on_every_convolution_geometry).
    runtime = DeltaRuntime(dyadic_clip_model(memory=memory), dense_above=1.0, min_fan_out=0)
    assert set(runtime.finishes) == {"same", "strided", "dilated", "pointwise"}
    for key, chain in runtime.finishes.items():
        assert chain.epilogue.relu and chain.epilogue.mode == (KEEP if memory else QUANTIZE)
        assert chain.epilogue.pool is None and runtime._kernels[key].finish is chain.epilogue
        layers = [type(node.layer).__name__ for node in chain.absorbed if node.kind not in ("fold", "unfold")]
        assert layers == ["Activation"] + ([] if memory else ["DeltaActivation"])
    assert not DeltaRuntime(dyadic_clip_model(), fuse=True, min_fan_out=0).finishes


@pytest.mark.parametrize("dense_above", [0.0, 0.1, 1.0])
def test_without_counting_memory_thresholds_run_in_the_output_pass(dense_above):
    # Without counting, a memory threshold joins its convolution's output pass and its state lives in the kernel (no
    # TensorFlow variable): each such convolution is in a run, alone if need be, so that its dense frames (re-syncs,
    # samples) go through the pass too; on a frame run densely as a whole (frame 0, the scene cut at frame 5) the
    # kernel applies it to TensorFlow's output. Twice from a reset: the state starts again from zeros.
    model, clip = dyadic_clip_model(memory=True), moving_square(9, cut_at=5)
    runtime = DeltaRuntime(model, count_macs=False, min_fan_out=0, dense_above=dense_above, resync_every=2)
    assert {key: chain.epilogue.mode for key, chain in runtime.finishes.items()} == dict.fromkeys(
        ("same", "strided", "dilated", "pointwise"), MEMORY)
    assert [keys for keys, _ in runtime.runs.values()] == [["same"], ["strided", "dilated", "pointwise"]]
    remembered = {node.key: (key, node.layer) for key, chain in runtime.finishes.items() for node in chain.absorbed
                  if node.kind == "memory"}
    assert len(remembered) == 4 and not set(remembered) & set(runtime._state)
    expected = np.asarray(model(clip))
    counting = check_against_forward_and_count(model, clip, exact=False, dense_above=dense_above, resync_every=2)
    assert not counting.finishes["same"].epilogue.mode == MEMORY  # counting: the thresholds stay layers
    for _ in range(2):
        np.testing.assert_allclose(runtime.run(clip), expected, rtol=0, atol=1e-5)  # the dense layers' rounding
        # What each threshold sent on last, kept by its convolution's kernel: the model's, exactly.
        for key, layer in remembered.values():
            sent = np.asarray(keras.Model(model.inputs[0], layer.output)(clip))[:, -1]
            np.testing.assert_array_equal(runtime._kernels[key].sent, sent)
    assert runtime.executed_macs["same"][5] == runtime.dense_macs["same"]  # the cut


def test_convolutions_below_min_fan_out_run_densely_every_frame():
    # Fan-outs (kernel h x w x filters / strides): same 72, strided 18, dilated 72, pointwise 4.
    model = dyadic_clip_model()
    runtime = check_against_forward_and_count(model, moving_square(4), exact=True, min_fan_out=72,
                                              dense_above=1.0)
    executed, dense = runtime.executed_macs, runtime.dense_macs
    for name in ("strided", "pointwise"):
        assert executed[name] == [dense[name]] * 4
    for name in ("same", "dilated"):
        assert executed[name][1:] == runtime.macs[name][1:] and max(executed[name][1:]) < dense[name]


@pytest.mark.parametrize("dense_above", [0.0, 1.0])  # every frame dense, every frame sparse
def test_pointwise_convolutions_that_run_densely_are_computed_in_the_output_pass(dense_above):
    # With min_fan_out=72, "pointwise" (1x1, 4 MACs an input element) runs densely every frame; it reads the output
    # of "dilated"'s output pass (ReLU, quantiser), which computes it from each finished row without counting
    # (exact, on sparse and dense frames; the graph choosing dense or sparse); counting, it runs as a layer.
    model, clip = dyadic_clip_model(), moving_square(6)
    runtime = check_against_forward_and_count(model, clip, exact=True, min_fan_out=72, dense_above=dense_above)
    assert not runtime.finishes["dilated"].sides
    assert runtime.executed_macs["pointwise"] == [runtime.dense_macs["pointwise"]] * 6
    quick = DeltaRuntime(model, count_macs=False, min_fan_out=72, dense_above=dense_above)
    assert [node.layer.name for node in quick.finishes["dilated"].sides] == ["pointwise"]
    np.testing.assert_array_equal(quick.run(clip), model(clip))
    assert quick.executed_macs["pointwise"] == [runtime.dense_macs["pointwise"]] * 6
    if dense_above == 1.0:  # the model's output is the output pass's: wrong side weights change it from frame 1 on
        quick._kernels["dilated"].side_kernel[:] = 0
        outputs = quick.run(clip)
        np.testing.assert_array_equal(outputs[:, 0], np.asarray(model(clip))[:, 0])
        assert not np.array_equal(outputs[:, 1:], np.asarray(model(clip))[:, 1:])


def pooled_clip_model(size: int, padding: str) -> keras.Model:
    """Exact as `dyadic_clip_model`: two convolutions, each followed by a 2x2 max pooling of stride 2, and a 1x1
    side convolution to one channel reading the first (as HED's blocks)."""
    inputs = keras.Input((size, size, 3))
    first = L.Conv2D(8, 3, padding="same", activation="relu", name="first")(inputs)
    side = L.Dense(1, name="side_logit")(L.Flatten()(L.Conv2D(1, 1, name="side")(first)))
    second = L.Conv2D(8, 3, padding="same", activation="relu", name="second")(L.MaxPooling2D(2, padding=padding)(first))
    pooled = L.Flatten()(L.MaxPooling2D(2, padding=padding)(second))
    image = keras.Model(inputs, L.Add()([side, L.Dense(1, name="logit")(pooled)]))  # sums of exact products
    return dyadic(sparsify(image, frames=None, step_init=0.25, include_input={"step_init": 1.0}), 1)


@pytest.mark.parametrize("size, padding", [(24, "valid"), (21, "valid"), (21, "same")])  # 21: odd rows and columns
@pytest.mark.parametrize("dense_above", [0.0, 1.0])
def test_a_max_pooling_by_two_that_alone_reads_a_convolution_is_computed_in_its_output_pass(size, padding,
                                                                                            dense_above):
    # The pass writes the pooled rows alone (from pairs of finished rows), the 1x1 side convolution from each row;
    # exact on sparse and dense frames, counting or not. Counting, the side convolution runs as a layer and reads
    # "first" whole, which then is handed on whole and pooled in TensorFlow.
    model, clip = pooled_clip_model(size, padding), moving_square(5, size)
    for count in (True, False):
        runtime = DeltaRuntime(model, count_macs=count, min_fan_out=9, dense_above=dense_above)
        assert {name: runtime._kernels[name].pools for name in ("first", "second")} == {"first": not count,
                                                                                        "second": True}
        finish = runtime.finishes["second"]
        assert finish.pooled in {id(node.output) for node in finish.absorbed}
        np.testing.assert_array_equal(runtime.run(clip), np.asarray(model(clip)))
    check_against_forward_and_count(model, clip, exact=True, min_fan_out=9, dense_above=dense_above)


def test_convolutions_resync_densely_one_after_another():
    # resync_every=4 over the 4 convolutions: phases 0, 1, 2, 3 in the plan's order, so each is recomputed densely
    # after 4 - phase sparse updates with changes (here every frame changes) and then every fifth frame, never two
    # on the same frame; outputs stay exact.
    runtime = check_against_forward_and_count(dyadic_clip_model(), moving_square(10), exact=True, dense_above=1.0,
                                              resync_every=4)
    resyncs = {name: [t for t, e in enumerate(runtime.executed_macs[name]) if e == runtime.dense_macs[name]]
               for name in ("same", "strided", "dilated", "pointwise")}
    assert resyncs == {"same": [4, 9], "strided": [3, 8], "dilated": [2, 7], "pointwise": [1, 6]}
    # A still scene adds no rounding, so no re-sync comes due after the one frame 0's changes made due (pointwise,
    # from its phase 3): nothing is multiplied after frame 1.
    still = check_against_forward_and_count(dyadic_clip_model(), np.repeat(moving_square(1), 10, axis=1), exact=True,
                                            dense_above=1.0, resync_every=4)
    assert {name: [t for t, e in enumerate(still.executed_macs[name]) if t and e] for name in resyncs} == {
        "same": [], "strided": [], "dilated": [], "pointwise": [1]}
    assert still.executed_macs["pointwise"][1] == still.dense_macs["pointwise"]
    with pytest.raises(ValueError, match="resync_every"):
        DeltaRuntime(dyadic_clip_model(), resync_every=-1)


def test_a_scene_cut_falls_back_to_dense_and_stays_exact():
    model = dyadic_clip_model()
    runtime = check_against_forward_and_count(model, moving_square(6, cut_at=3), exact=True, dense_above=0.1)
    executed, dense = runtime.executed_macs["same"], runtime.dense_macs["same"]
    assert executed[3] == dense and executed[2] < dense and executed[4] < dense


@pytest.mark.parametrize("fuse", [False, True])
def test_without_counting_a_scene_cut_runs_the_whole_frame_densely(fuse):
    # Detected on the frame itself; the kernels (and fused epilogues) then get their state in one hand-over, and
    # the frame after the cut is sparse again, from that state.
    model = dyadic_clip_model()
    clip = moving_square(6, cut_at=3)
    runtime = DeltaRuntime(model, count_macs=False, dense_above=1.0, fuse=fuse, min_fan_out=0)
    np.testing.assert_array_equal(runtime.run(clip), np.asarray(model(clip)))
    executed = runtime.executed_macs
    convolutions = ("same", "strided", "dilated", "pointwise")
    assert all(executed[name][3] == runtime.dense_macs[name] for name in convolutions)
    assert executed["same"][4] < runtime.dense_macs["same"] / 4 and executed["same"][2] < runtime.dense_macs["same"] / 4


def test_without_counting_layers_choose_dense_in_the_graph_as_the_counting_runtime_does():
    # The choice is made on the same samples of the input (kept in the graph instead of the kernel); a layer run
    # densely hands its state over at the end of the frame, and the frame after it is sparse from that state.
    model = dyadic_clip_model()
    clip = moving_square(7, cut_at=3)
    counting = check_against_forward_and_count(model, clip, exact=True, cut_above=np.inf, dense_above=0.1)
    runtime = DeltaRuntime(model, count_macs=False, min_fan_out=0, cut_above=np.inf, dense_above=0.1)
    np.testing.assert_array_equal(runtime.run(clip), np.asarray(model(clip)))
    assert runtime.executed_macs == counting.executed_macs
    executed, dense = runtime.executed_macs["same"], runtime.dense_macs["same"]
    assert executed[3] == dense and 0 < executed[2] < dense / 4 and 0 < executed[4] < dense / 4
    runtime.reset()  # the samples too: frame 0 again runs densely, then the same choices
    np.testing.assert_array_equal(runtime.run(clip), np.asarray(model(clip)))
    assert runtime.executed_macs == counting.executed_macs


@pytest.mark.parametrize("dense_above", [0.05, 1.0])  # "second" dense on the moving square's samples; never
def test_without_counting_convolutions_in_a_row_run_in_one_call(monkeypatch, dense_above):
    # "first" (its side convolution and pooling in its output pass) and "second" read nothing but each other's output
    # pass: one call into the kernels a frame (but frame 0, run densely as a whole). A convolution of the run that goes
    # dense computes its frame there (re-syncs every 2 frames; at 0.05 "second" on every frame's samples): exact, and
    # the same choices as the counting runtime, which calls each convolution on its own.
    model, clip = pooled_clip_model(21, "same"), moving_square(9, 21)
    calls, frame = [], ConvolutionRun._frame

    def counted(self, value):
        calls.append(value.shape)
        return frame(self, value)

    monkeypatch.setattr(ConvolutionRun, "_frame", counted)
    options = dict(min_fan_out=9, dense_above=dense_above, resync_every=2, cut_above=np.inf)
    runtime = DeltaRuntime(model, count_macs=False, **options)
    assert [keys for keys, _ in runtime.runs.values()] == [["first", "second"]]
    np.testing.assert_array_equal(runtime.run(clip), np.asarray(model(clip)))
    assert calls == [(1, 21, 21, 3)] * 8
    # Sparse frames and dense ones (the re-syncs) call the multiply pass with arguments of one type: one compilation,
    # not a second one in the middle of a stream.
    assert all(len(kernel.multiply.signatures) == 1 for _, run in runtime.runs.values() for kernel in run.kernels)
    dense = {name: [t for t, e in enumerate(runtime.executed_macs[name]) if t and e == runtime.dense_macs[name]]
             for name in ("first", "second")}
    if dense_above == 1.0:  # counting, frame 0 is not dense, so its re-syncs come a frame earlier
        assert dense == {"first": [3, 6], "second": [2, 5, 8]}
    else:  # "second" dense on every frame's samples, "first" on its re-syncs
        assert dense == {"first": [3, 6], "second": list(range(1, 9))}
        counting = check_against_forward_and_count(model, clip, exact=True, **options)
        assert not counting.runs and runtime.executed_macs == counting.executed_macs


@pytest.mark.parametrize("dense_above", [1.0, 0.2])
def test_in_a_run_the_output_pass_lists_the_next_convolutions_input_changes(dense_above):
    # "first"'s output pass compares its pooled output with the last frame's and lists "second"'s input changes: the
    # lists a comparison of the two whole frames finds, also after a frame run densely as a whole (frame 0), whose
    # input the pass then compares with. At 0.2 the scene cut at frame 5 (not taken for one: cut_above=inf) makes a
    # band list more changes than make "second" run densely: it stops listing and marks itself full, and on the next
    # frame "second" compares its input itself and chooses on samples, then takes lists again. The outputs stay exact.
    model, clip = pooled_clip_model(21, "same"), moving_square(9, 21, cut_at=5)
    runtime = DeltaRuntime(model, count_macs=False, min_fan_out=9, dense_above=dense_above, resync_every=0,
                           cut_above=np.inf)
    (_, run), = runtime.runs.values()
    first, second = run.kernels
    assert first.next_in_run is second
    listed, full, outputs, previous = [], [], [], None
    for t in range(clip.shape[1]):
        listed.append(second.takes_lists)
        outputs.append(np.asarray(runtime.step(clip[:, t])))
        current = np.array(second.previous)  # (frame 0: TensorFlow's input of "second"; then the list's value)
        full.append(listed[-1] and bool(first.lists_full.any()))
        if t and listed[-1] and not full[-1]:
            compared = ChangeList(current.shape)
            _list_changes(previous, current, second.fan_out, compared.index, compared.change, compared.count)
            np.testing.assert_array_equal(second.source.count, compared.count)
            for y in range(current.shape[1]):
                changes = slice(0, compared.count[0, y])
                np.testing.assert_array_equal(second.source.index[0, y, changes], compared.index[0, y, changes])
                np.testing.assert_array_equal(second.source.change[0, y, changes], compared.change[0, y, changes])
        previous = current
    np.testing.assert_array_equal(np.concatenate(outputs, 1), np.asarray(model(clip)))
    cut = dense_above < 1.0
    assert listed[1:] == [True, True, True, True, True, not cut, True, True]
    assert [t for t, f in enumerate(full) if f] == ([5] if cut else [])


def test_what_a_step_hands_back_stays_as_it_was_while_the_kernels_update_their_state():
    # After a frame run densely as a whole the kernels take TensorFlow's buffers of sums and inputs that nothing else
    # reads as their state, and update them in place. Here a 1x1 side convolution, computed in the output pass of a
    # convolution with a memory threshold (a run of its own), is the model's output, of which the pass keeps the sums:
    # the outputs of every frame, kept as views of the tensors the steps returned, stay exact.
    inputs = keras.Input((21, 21, 3))
    first = L.Conv2D(8, 3, padding="same", activation="relu", name="first")(inputs)
    model = dyadic(sparsify(keras.Model(inputs, L.Conv2D(1, 1, name="side")(first)), frames=None, step_init=0.25,
                            include_input={"step_init": 1.0}, memory=True), 1)
    clip = moving_square(6, 21, cut_at=3)
    runtime = DeltaRuntime(model, count_macs=False, min_fan_out=9, dense_above=1.0, resync_every=0)
    assert list(runtime.runs) == ["first"] and [side.layer.name for side in runtime.finishes["first"].sides] == ["side"]
    outputs = [np.asarray(runtime.step(clip[:, t])) for t in range(clip.shape[1])]
    np.testing.assert_array_equal(np.concatenate(outputs, 1), np.asarray(model(clip)))


@pytest.mark.parametrize("side_activation", [None, "sigmoid"])
def test_in_a_run_the_output_pass_finishes_only_the_pixels_changes_reached(side_activation):
    # The square moves down columns 6-11; "second"'s input far from it (its last pooled row and column) is neither
    # finished again nor compared by "first"'s pass on a frame it lists: a value planted there stays, unlisted. That
    # holds on the frame after one run densely as a whole (frame 0) too: the kernels then took that frame's sums and
    # inputs as their state, "second"'s input as the dense model computes it, and the side convolution's sums: its
    # output where its activation is linear, else computed again (`sparsify` moves activations into layers of their
    # own; here one is put back into the side convolution).
    model, clip = pooled_clip_model(21, "same"), moving_square(7, 21)
    model.get_layer("side").activation = keras.activations.get(side_activation)
    runtime = DeltaRuntime(model, count_macs=False, min_fan_out=9, dense_above=1.0, resync_every=0, cut_above=np.inf)
    (_, run), = runtime.runs.values()
    first, second = run.kernels
    outputs = [np.asarray(runtime.step(clip[:, 0]))]
    inputs = keras.Model(model.inputs, model.get_layer("second").input)([clip[:, :1]])  # (frames folded into batch)
    np.testing.assert_array_equal(second.source.value, np.asarray(inputs))
    for t in range(1, clip.shape[1]):
        value = second.source.value
        assert second.takes_lists and not first.finish_every
        truth = value[0, -1, -1, 0]
        value[0, -1, -1, 0] = truth + 1.0
        outputs.append(np.asarray(runtime.step(clip[:, t])))
        assert second.source.value[0, -1, -1, 0] == truth + 1.0 and second.source.count[0, -1] == 0
        second.source.value[0, -1, -1, 0] = truth
    np.testing.assert_array_equal(np.concatenate(outputs, 1), np.asarray(model(clip)))


@pytest.mark.parametrize("resync_every", [0, 2])
def test_kernel_seconds_time_the_dense_frames_of_a_run_apart(resync_every):
    # Frame 0 runs densely as a whole, in the graph; afterwards a convolution of the run computes a frame densely
    # only on a re-sync here (no share of changes reaches 1.0): its time is the ``dense`` part, and only then.
    model, clip = pooled_clip_model(21, "same"), moving_square(9, 21)
    runtime = DeltaRuntime(model, count_macs=False, min_fan_out=9, dense_above=1.0, resync_every=resync_every,
                           cut_above=np.inf)
    runtime.run(clip)
    seconds = runtime.kernel_seconds
    assert set(seconds) == {"changes", "multiply", "epilogue", "dense"}
    assert seconds["changes"] > 0 and seconds["multiply"] > 0
    assert (seconds["dense"] > 0) == (resync_every > 0)


def test_real_clips_with_a_scene_cut(real_clip):
    other = real_clip.replace("v_ApplyEyeMakeup_g01_c01.avi", "hmdb51_talk.mp4")
    clip = np.concatenate([read_clip(real_clip, 4, (24, 24)), read_clip(other, 3, (24, 24))])[None]
    runtime = check_against_forward_and_count(dyadic_clip_model(), np.round(clip), exact=True)
    assert runtime.executed_macs["same"][4] == runtime.dense_macs["same"]


@pytest.mark.parametrize("build, dense_above", [
    (lambda: video_classifier("tiny", 5, frames=4, image_size=32, sparsity="delta", step_init=0.05), 1.0),
    (lambda: strip_sparsity(video_classifier("tiny", 5, frames=4, image_size=32, sparsity="delta", step_init=0.05)),
     1.0),
    (lambda: mobilenet_like(frames=4), 1.0),
    # Its last quantiser's inputs sit on rounding ties by design (tests/sim/helpers.py), where an accumulator's
    # float rounding may pick the other level: only layers recomputed densely reproduce those bit for bit.
    (lambda: resnet_like(frames=4), 0.0),
], ids=["tiny", "tiny-stripped", "mobilenet-like", "resnet-like"])
@pytest.mark.parametrize("fuse", [False, True])
def test_package_models_match_forward_and_count(build, dense_above, fuse):
    # Time folding, TimeDistributed, FrameDifference, batch norm, depthwise and residual layers, a time average.
    rng = np.random.default_rng(4)
    model = build()
    randomize_batch_norm(model, rng)
    size = model.inputs[0].shape[2]
    check_against_forward_and_count(model, smooth_clips(2, 4, size, rng), exact=False, dense_above=dense_above,
                                    fuse=fuse)


def test_streaming_api():
    model = dyadic_clip_model()
    clip = moving_square(5)
    runtime = DeltaRuntime(model, count_macs=False, min_fan_out=0)
    first = [np.asarray(runtime.step(frame)) for frame in clip[0]]  # frames without a batch axis at batch 1
    runtime.reset()
    again = [np.asarray(runtime.step(clip[:, t])) for t in range(5)]
    np.testing.assert_array_equal(np.concatenate(first, axis=1), np.concatenate(again, axis=1))
    np.testing.assert_array_equal(np.concatenate(again, axis=1), np.asarray(model(clip)))
    assert runtime._step.experimental_get_tracing_count() == 1  # one trace for every frame
    with pytest.raises(ValueError, match=r"a frame must have shape \(1, 24, 24, 3\)"):
        runtime.step(np.zeros((2, 24, 24, 3)))
    with pytest.raises(RuntimeError, match="count_macs=False"):
        runtime.macs
    with pytest.raises(ValueError, match="dense_above"):
        DeltaRuntime(model, dense_above=2.0)
    with pytest.raises(ValueError, match="cut_above"):
        DeltaRuntime(model, cut_above=-0.1)


def test_by_default_each_layer_runs_densely_above_its_break_even():
    model = dyadic_clip_model()
    runtime = check_against_forward_and_count(model, moving_square(4), exact=True, min_fan_out=0)
    shapes = {"same": (24, 24, 3), "strided": (24, 24, 8), "dilated": (12, 12, 8), "pointwise": (8, 8, 8),
              "hidden": (4,), "logits": (6,)}
    assert runtime.dense_above == {name: break_even(model.get_layer(name), shape) for name, shape in shapes.items()}
    # On 3 colour channels listing and finishing cost as much as the layer: dense on every frame that changed.
    assert runtime.dense_above["same"] == 0.0 and runtime.executed_macs["same"] == [runtime.dense_macs["same"]] * 4
    # One layer's share set, the others' kept; the square's move is then multiplied sparsely there.
    chosen = check_against_forward_and_count(model, moving_square(4), exact=True, min_fan_out=0,
                                             dense_above={"same": 0.5})
    assert chosen.dense_above == {**runtime.dense_above, "same": 0.5}
    assert chosen.executed_macs["same"][1:] == chosen.macs["same"][1:]
    with pytest.raises(ValueError, match=r"dense_above\['same'\] must be a share in \[0, 1\], got 1.5"):
        DeltaRuntime(model, dense_above={"same": 1.5})
    with pytest.raises(ValueError, match="dense_above names 'flatten': not a layer with a delta kernel"):
        DeltaRuntime(model, dense_above={"flatten": 0.2})


def test_batches_stream_side_by_side():
    model = dyadic_clip_model()
    clips = np.concatenate([moving_square(4), moving_square(4, cut_at=2)])
    check_against_forward_and_count(model, clips, exact=True, dense_above=1.0)


def test_models_it_cannot_stream_are_refused():
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    for executor in (DeltaRuntime, DeltaInference):  # the simulator's engine refuses them the same way
        with pytest.raises(ValueError, match="only functional and Sequential models"):
            executor(Subclassed())
    a, b = keras.Input((None, 4)), keras.Input((None, 4))
    with pytest.raises(NotImplementedError, match="single-input, single-output"):
        DeltaRuntime(keras.Model([a, b], L.Add()([a, b])))


def test_delta_outputs_are_refused():
    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, L.Dense(2)(DeltaActivation(output="delta")(inputs)))
    with pytest.raises(NotImplementedError, match="output='quantized'"):
        DeltaRuntime(model)


def test_the_runtime_and_the_engine_share_one_frame_plan_and_the_runtime_needs_no_simulator():
    import subprocess
    import sys

    loaded = subprocess.run([sys.executable, "-c", "import sys, delta_keras.runtime; "
                             "print(sorted(m for m in sys.modules if m.startswith('delta_keras.sim')))"],
                            capture_output=True, text=True, timeout=300)
    assert loaded.stdout.strip().splitlines()[-1] == "[]"
    # One rule for what a clip's steps return: a time mean over a clip whose frames are as tall as it is long
    # returns the mean, not a stack (the output has no time axis).
    clips = keras.Input((4, 4, 4, 2))
    conv = keras.layers.TimeDistributed(keras.layers.Conv2D(3, 1))(clips)
    model = keras.Model(clips, keras.ops.mean(conv, axis=1))
    data = np.random.default_rng(0).uniform(0, 1, (1, 4, 4, 4, 2)).astype("float32")
    expected = np.asarray(model(data))
    for executor in (DeltaInference(model), DeltaRuntime(model)):
        assert executor.plan.nodes and executor.run(data).shape == expected.shape == (1, 4, 4, 3)
        np.testing.assert_allclose(executor.run(data), expected, atol=1e-5)


def test_a_temporal_head_streams_the_model_output_on_the_frames_so_far():
    # The temporal head's Conv1D reads neighbouring frames, future ones too: it and the layers after it (the tail)
    # are evaluated at each step on the frames so far, the backbone frame by frame.
    model = video_classifier("tiny", 3, frames=None, image_size=16, head="temporal", sparsity="delta", step_init=0.05)
    model = strip_sparsity(model)
    clip = smooth_clips(1, 6, 16, np.random.default_rng(3))
    counted = count_macs(model, clip, policies=("zero_delta",))
    per_frame = {layer.name: list(layer.macs("zero_delta")) for layer in counted.layers
                 if len(layer.macs("zero_delta")) == 6}
    for executor in (DeltaRuntime(model, min_fan_out=0), DeltaRuntime(model, min_fan_out=0, count_macs=False, fuse=True),
                     DeltaInference(model)):
        assert [node.key for node in executor.plan.tail_nodes] == ["temporal_conv", "time_average", "logits_dropout",
                                                                   "logits"]
        assert executor._tail.window[1:] == (1, 1)  # the Conv1D's 3 frames: one before, one after
        executor.reset()
        for t in range(6):
            np.testing.assert_allclose(np.asarray(executor.step(clip[:, t])), np.asarray(model(clip[:, :t + 1])),
                                       rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(executor.run(clip), np.asarray(model(clip)), rtol=1e-4, atol=1e-5)
        assert executor._tail._step.experimental_get_tracing_count() <= 2  # relaxed to any frame count
        if getattr(executor, "count", True):  # the backbone's MACs per frame, as count_macs counts them
            assert set(executor.macs) == set(per_frame) and all(list(executor.macs[k]) == v for k, v in per_frame.items())


@pytest.mark.parametrize("strides, window", [(1, (3, 2)), (2, None)])
def test_a_tail_of_windows_over_time_costs_the_same_at_any_frame(strides, window):
    # Conv1D layers of stride 1 ("same" and "causal" padding, dilated) before a time average: only the positions
    # near the end are evaluated, from the inputs of the frames their windows read; a stride of 2 leaves the
    # tail evaluated on every frame so far. Both give the model's output on the frames so far.
    clips = keras.Input((None, 6, 6, 2))
    x = L.TimeDistributed(L.GlobalAveragePooling2D())(L.TimeDistributed(L.Conv2D(4, 3, activation="relu"))(clips))
    x = L.Conv1D(4, 3, padding="same", dilation_rate=2, activation="relu", name="same")(x)
    x = L.Conv1D(4, 2, strides=strides, padding="causal", name="causal")(x)
    model = keras.Model(clips, L.Dense(2)(L.Dense(3)(L.GlobalAveragePooling1D()(x))))
    clip = np.random.default_rng(4).uniform(0, 1, (2, 9, 6, 6, 2)).astype("float32")
    for executor in (DeltaRuntime(model, batch_size=2, min_fan_out=0), DeltaInference(model)):
        assert (executor._tail.window and executor._tail.window[1:]) == window
        executor.reset()
        for t in range(9):
            np.testing.assert_allclose(np.asarray(executor.step(clip[:, t])), np.asarray(model(clip[:, :t + 1])),
                                       rtol=1e-5, atol=1e-6)
            if window:  # the inputs of the frames the last positions read, no more
                assert executor._tail.sequences[0].shape[1] == min(t + 1, sum(window) + 1)
        assert executor._tail._step.experimental_get_tracing_count() <= 2  # relaxed to any frame count


def test_a_layer_over_time_whose_output_keeps_the_time_axis_is_refused():
    # Each frame's output would change after it was returned (its window reaches later frames).
    clips = keras.Input((None, 8, 8, 3))
    features = L.TimeDistributed(L.GlobalAveragePooling2D())(L.TimeDistributed(L.Conv2D(4, 3))(clips))
    model = keras.Model(clips, L.Conv1D(2, 3, padding="same", name="over_time")(features))
    for executor in (DeltaRuntime, DeltaInference):
        with pytest.raises(NotImplementedError, match="over_time: Conv1D runs over the clip's time axis .* keeps"):
            executor(model)
