"""count_macs: exact counts against a brute-force reference, published dense counts, NeuroBench's cases."""

import keras
import numpy as np
import pytest

from delta_keras.sim import Granularity, count, count_macs
from delta_keras.sim.count import POLICIES
from delta_keras.frames.geometry import is_mac_layer, stages
from delta_keras.registry import unwrap
from tests.sim.helpers import block_mask, random_sparse, reference_conv_macs


def _clip_model(layer, frame_shape, frames):
    clips = keras.Input((frames, *frame_shape))
    return keras.Model(clips, keras.layers.TimeDistributed(layer)(clips))


CONV_CASES = [
    (lambda: keras.layers.Conv2D(3, 3, padding="valid"), "element"),
    (lambda: keras.layers.Conv2D(3, 3, padding="same", strides=2), "element"),
    (lambda: keras.layers.Conv2D(2, (3, 2), padding="same", dilation_rate=2), "vector:2"),
    (lambda: keras.layers.Conv2D(4, 3, padding="same", strides=2), "tile:2"),
    (lambda: keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2), "element"),
    (lambda: keras.layers.DepthwiseConv2D(3, strides=2, padding="valid", depth_multiplier=3), "tile:3x2"),
    (lambda: keras.layers.DepthwiseConv2D(2, padding="same", dilation_rate=2), "vector:3"),
]


@pytest.mark.parametrize("make_layer, granularity", CONV_CASES)
def test_every_policy_matches_brute_force(make_layer, granularity):
    rng = np.random.default_rng(0)
    samples, frames, frame_shape = 2, 3, (7, 6, 4)
    layer = make_layer()
    model = _clip_model(layer, frame_shape, frames)
    layer.set_weights([np.where(rng.random(w.shape) < 0.4, 0.0, w) for w in layer.get_weights()])
    clips = random_sparse((samples, frames, *frame_shape), 0.6, rng)
    clips[:, 1, :3] = clips[:, 0, :3]  # partly unchanged: sparse changes

    (counted,) = count_macs(model, clips, granularity=granularity).layers

    gran = Granularity.parse(granularity)
    tile = gran.blocks(3, -1)[:2]
    kernel = layer.get_weights()[0]
    geometry = (layer.strides[0], layer.dilation_rate[0], layer.padding)

    def reference(frame, skip_weights=False, count_padding=False):
        mask = block_mask(frame != 0, gran.channels, tile)
        return reference_conv_macs(mask, (kernel != 0) | (not skip_weights), *geometry, count_padding=count_padding)

    changes = np.concatenate([clips[:, :1], np.diff(clips, axis=1)], axis=1)
    ones = np.ones(frame_shape)
    for t in range(frames):
        expected = {
            "dense": samples * reference(ones, count_padding=True),
            "zero_weight": samples * reference(ones, skip_weights=True, count_padding=True),
            "zero_activation": sum(reference(clips[n, t]) for n in range(samples)),
            "zero_delta": sum(reference(changes[n, t]) for n in range(samples)),
            "both": sum(reference(clips[n, t], skip_weights=True) for n in range(samples)),
        }
        assert {p: int(counted.macs(p)[t]) for p in POLICIES} == expected, f"frame {t}"


def test_separable_dense_and_folded_time():
    rng = np.random.default_rng(1)
    frames = 3
    clips = keras.Input((frames, 6, 6, 2))
    x = keras.ops.reshape(clips, (-1, 6, 6, 2))
    separable = keras.layers.SeparableConv2D(3, 3, padding="same", depth_multiplier=2)
    dense = keras.layers.Dense(4)
    model = keras.Model(clips, dense(separable(x)))
    data = random_sparse((2, frames, 6, 6, 2), 0.5, rng)
    sep, den = count_macs(model, data).layers
    assert sep.layout == den.layout == "folded"
    # The pointwise stage sees the depthwise output: every position of it is nonzero here.
    depthwise = reference_conv_macs(data[0, 0] != 0, np.ones((3, 3, 2, 2), bool), 1, 1, "same")
    depthwise += reference_conv_macs(data[1, 0] != 0, np.ones((3, 3, 2, 2), bool), 1, 1, "same")
    assert sep.stages[0].macs["zero_activation"][0] == depthwise
    assert sep.macs("dense")[0] == 2 * (36 * 9 * 4 + 36 * 4 * 3)
    separable_out = np.asarray(separable(data.reshape(-1, 6, 6, 2)))
    assert den.macs("zero_activation").sum() == np.count_nonzero(separable_out) * 4


def test_recurrent_input_and_recurrent_stages():
    rng = np.random.default_rng(2)
    clips = keras.Input((5, 6))
    lstm = keras.layers.LSTM(3)
    model = keras.Model(clips, lstm(clips))
    data = random_sparse((2, 5, 6), 0.5, rng)
    (counted,) = count_macs(model, data).layers
    input_stage, recurrent_stage = counted.stages
    assert [s.name for s in counted.stages] == ["input", "recurrent"]
    assert input_stage.macs["zero_activation"].sum() == np.count_nonzero(data) * 12
    assert input_stage.macs["dense"].sum() == 2 * 5 * 6 * 12
    # h[-1] = 0: the first step has no recurrent MACs; later hidden states are nonzero.
    assert recurrent_stage.macs["zero_activation"][0] == 0
    assert recurrent_stage.macs["zero_activation"][1] == 2 * 3 * 12


def test_a_gru_is_counted_unless_its_reset_gate_comes_before_the_recurrent_kernel():
    data = random_sparse((2, 5, 6), 0.5, np.random.default_rng(3))
    clips = keras.Input((5, 6))
    (counted,) = count_macs(keras.Model(clips, keras.layers.GRU(3)(clips)), data).layers
    assert [s.name for s in counted.stages] == ["input", "recurrent"]
    assert counted.stages[0].macs["dense"].sum() == 2 * 5 * 6 * 9  # 3 gates of 3 units
    report = count_macs(keras.Model(clips, keras.layers.GRU(3, reset_after=False, name="gru_v1")(clips)), data)
    assert not report.layers and "reset_after=False" in report.uncounted["gru_v1"]


@pytest.mark.parametrize("name, expected_millions", [
    ("MobileNet", 568.74), ("MobileNetV2", 300.77), ("ResNet50", 3857.97),
])
def test_published_dense_counts_from_static_shapes(name, expected_millions):
    model = getattr(keras.applications, name)(weights=None, input_shape=(224, 224, 3))
    total = 0
    for layer in model.layers:
        layer, _ = unwrap(layer)
        if is_mac_layer(layer):
            total += sum(stage.dense_macs() for stage in stages(layer, layer.input.shape[1:]))
    assert round(total / 1e6, 2) == expected_millions


def _neurobench(layer, data):
    inputs = keras.Input(data.shape[1:])
    return count_macs(keras.Model(inputs, layer(inputs)), data).neurobench()


def test_neurobench_hand_computed_cases():
    # NeuroBench's tests/test_metrics.py: a 3x3 conv on a 12x12 single-channel input, no padding: 900 ops.
    image = np.ones((1, 1, 12, 12, 1), "float32")
    image[0, 0, 0, 0] = 4  # not in {-1, 0, 1}: MACs rather than ACs, as in NeuroBench's test
    conv = keras.layers.TimeDistributed(keras.layers.Conv2D(1, 3, use_bias=False))
    assert _neurobench(conv, image) == {"ActivationSparsity": 0.0, "Dense": 900, "Effective_MACs": 900, "Effective_ACs": 0}
    # Conv1d(5, 1, 5) on a length-10 input: 150 MACs.
    signal = np.ones((1, 1, 10, 5), "float32")
    signal[0, 0, 0, 0] = 4
    conv1d = keras.layers.TimeDistributed(keras.layers.Conv1D(1, 5, use_bias=False))
    assert _neurobench(conv1d, signal)["Effective_MACs"] == 150
    # Spiking input (only 0/1) into Linear(20, 5) over 10 time steps: 1000 ACs per sample.
    spikes = np.ones((5, 10, 20), "float32")
    result = _neurobench(keras.layers.Dense(5, use_bias=False), spikes)
    assert (result["Effective_MACs"], result["Effective_ACs"]) == (0, 1000)
    # Half the activations of a ReLU are zero: activation sparsity 0.5.
    half = np.concatenate([np.ones((1, 1, 10)), -np.ones((1, 1, 10))], axis=-1).astype("float32")
    relu = keras.Sequential([keras.Input((1, 20)), keras.layers.ReLU(), keras.layers.Dense(2)])
    assert count_macs(relu, half).neurobench()["ActivationSparsity"] == 0.5


def test_zero_weights_are_skipped_by_weight_policies():
    dense = keras.layers.Dense(4, use_bias=False)
    clips = keras.Input((2, 3))
    model = keras.Model(clips, dense(clips))
    dense.set_weights([np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]], "float32")])
    (counted,) = count_macs(model, np.full((1, 2, 3), 2.0, "float32")).layers
    assert counted.macs("dense").tolist() == [12, 12]
    assert counted.macs("zero_weight").tolist() == [6, 6]
    assert counted.macs("zero_delta").tolist() == [12, 0]
    assert counted.macs("both").tolist() == [6, 6]


def test_nested_model_counts_like_a_flat_one():
    rng = np.random.default_rng(3)
    conv = keras.layers.Conv2D(3, 3, padding="same")
    frame = keras.Input((6, 6, 2))
    inner = keras.Model(frame, keras.layers.ReLU()(conv(frame)))
    clips = keras.Input((3, 6, 6, 2))
    nested = keras.Model(clips, keras.layers.TimeDistributed(inner)(clips))
    flat = _clip_model(conv, (6, 6, 2), 3)
    data = random_sparse((2, 3, 6, 6, 2), 0.5, rng)
    (counted,) = count_macs(nested, data).layers
    (expected,) = count_macs(flat, data).layers
    assert counted.name.endswith("/" + conv.name) and counted.layout == "folded"
    for policy in POLICIES:
        assert counted.macs(policy).tolist() == expected.macs(policy).tolist()


def test_strided_pointwise_conv():
    # Regression: the fan-out gradient of this convolution crashed TensorFlow's oneDNN filter gradient.
    model = _clip_model(keras.layers.Conv2D(16, 1, strides=2), (16, 16, 8), 2)
    (counted,) = count_macs(model, np.ones((1, 2, 16, 16, 8), "float32")).layers
    assert counted.macs("zero_activation").tolist() == [8 * 8 * 8 * 16] * 2


def test_repeated_calls_reuse_the_counter_until_kernel_zeros_change():
    layer = keras.layers.Conv2D(2, 3)
    model = _clip_model(layer, (6, 6, 1), 2)
    clips = np.ones((1, 2, 6, 6, 1), "float32")
    first = count_macs(model, clips).total("both")
    counter = count._COUNTERS[model][1]
    assert not counter.compiled  # the first call runs the model eagerly
    assert count_macs(model, clips).total("both") == first and count._COUNTERS[model][1] is counter
    assert counter.compiled  # used again: the probe runs compiled, with the same counts
    layer.kernel.assign(np.where(np.arange(2) == 0, 0.0, layer.kernel.numpy()))  # prune one filter
    assert count_macs(model, clips).total("both") == first / 2


def test_per_clip_totals_add_up_and_match_counting_each_clip_alone():
    import keras
    import numpy as np

    from delta_keras.sim import count_macs

    clips_in = keras.Input((4, 10, 10, 2))
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(3, 3, activation="relu"))(clips_in)
    model = keras.Model(clips_in, keras.layers.TimeDistributed(keras.layers.Conv2D(2, 3))(x))
    rng = np.random.default_rng(0)
    clips = rng.uniform(0, 1, (5, 4, 10, 10, 2)).astype("float32")
    clips[1] = clips[1, :1]  # a still clip: only frame 0 is charged
    clips[3] = 0.0  # a black clip
    report = count_macs(model, clips, batch_size=2)
    for policy in report.policies:
        assert report.clip_macs[policy].shape == (5,)
        np.testing.assert_allclose(report.clip_macs[policy].sum(), report.total(policy))
    for index in range(5):
        alone = count_macs(model, clips[index:index + 1])
        for policy in report.policies:
            assert report.clip_macs[policy][index] == alone.total(policy)
    reductions = report.clip_reductions("zero_delta")
    assert reductions[1] > reductions[0] and reductions[3] > reductions[1]
