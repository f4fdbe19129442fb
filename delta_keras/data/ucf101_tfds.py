"""UCF101 through TensorFlow Datasets (`tfds.load("ucf101/...")`)."""

from __future__ import annotations

import os

import tensorflow as tf
import tensorflow_datasets as tfds

from delta_keras.data.sampling import ClipSampling, clip_dataset, first_videos_per_class, resize_short_side


def ucf101_tfds(
    config: str = "ucf101_1_256",
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    sampling: ClipSampling | None = None,
    *,
    with_video_id: bool = False,
    download: bool = True,
    shuffle_buffer: int = 256,
    videos_per_class: int | None = None,
    **sampling_fields,
) -> tf.data.Dataset:
    """UCF101 as prepared by TensorFlow Datasets, in the common clip format.

    The first call downloads (~6.5 GB) and prepares the dataset, which needs
    `ffmpeg` on the `PATH` and tens of GB of free disk in `data_dir`. The
    `ucf101_1_256` config stores frames stretched to 256x256 (aspect ratio
    not kept); `ucf101_1`, `ucf101_2`, `ucf101_3` keep the original 320x240.
    Frames are stored as JPEG; only the frames of each clip are decoded.

    Args:
        config: tfds config name, e.g. `"ucf101_1_256"` or `"ucf101_2"`.
        split: `"train"` or `"test"`.
        data_dir: tfds data folder; `None` uses tfds' default (`~/tensorflow_datasets`).
        sampling: how clips are cut, resized and augmented (`ClipSampling`); or,
            instead, its fields as keywords (`frames=16, image_size=112, ...`),
            with `training` defaulting to `split == "train"`. Its `seed` also
            seeds the file shuffling.
        with_video_id: yield `(clip, label, video_id)`; the id is the video's
            position in the split as read (stable when `training` is off,
            since files are then read in order).
        download: download and prepare the dataset when it is not in `data_dir`.
        shuffle_buffer: in training, clips are shuffled with a buffer of this size
            (whole videos are too large to shuffle before cutting clips).
        videos_per_class: only the first this many videos of each class (filtered before any
            frame is decoded).
        **sampling_fields: `ClipSampling` fields, when `sampling` is not given.

    Returns:
        A `tf.data.Dataset` of `(clip, label)`: clip float32
        `(frames, image_size, image_size, 3)` RGB in [0, 255], label int32 in
        `[0, 101)` (tfds' label order, which is `classInd.txt`'s).

    Example:

    >>> test = ucf101_tfds(split="test", clips_per_video=3, with_video_id=True)  # doctest: +SKIP
    """
    sampling = ClipSampling.of(sampling, split, "ucf101_tfds", **sampling_fields)
    seed = sampling.seed
    examples, info = tfds.load(
        f"ucf101/{config}",
        split=split,
        data_dir=data_dir,
        download=download,
        shuffle_files=sampling.training,
        read_config=tfds.ReadConfig(shuffle_seed=seed),
        # Keep frames JPEG-encoded so that only the sampled ones get decoded.
        decoders={"video": tfds.decode.SkipDecoding()},
        with_info=True,
    )
    videos = examples.enumerate().map(
        lambda index, example: {
            "jpegs": example["video"],
            "num_frames": tf.shape(example["video"])[0],
            "label": example["label"],
            "video_id": tf.cast(index, tf.int32),
        }
    )

    if videos_per_class is not None:
        videos = first_videos_per_class(videos, videos_per_class, info.features["label"].num_classes)

    def load(video: dict, indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        decoded = tf.map_fn(
            lambda jpeg: tf.io.decode_image(jpeg, channels=3, expand_animations=False),
            tf.gather(video["jpegs"], indices),
            fn_output_signature=tf.TensorSpec((None, None, 3), tf.uint8),
        )
        return resize_short_side(decoded, sampling.resize_to), tf.constant(True)

    clips = clip_dataset(videos, load, sampling, with_video_id)
    return clips.shuffle(shuffle_buffer, seed=seed) if sampling.training else clips


def tfds_ready(config_name: str, data_dir: str | None) -> str | None:
    """Returns ``None`` when tfds has prepared ``config_name`` in ``data_dir``, else what is missing."""
    builder = tfds.builder(config_name, data_dir=data_dir)
    if tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json")):
        return None
    return (
        f"{config_name} is not prepared in {builder.data_dir}; prepare it first "
        f"(tfds build {config_name.replace('/', ' --config ')}{' --data_dir ' + data_dir if data_dir else ''}, "
        "about 7 GB, needs ffmpeg)"
    )
