"""Video data sources yielding `(clip, label[, video_id])` in one format.

Every source returns a `tf.data.Dataset` whose clips are float32
`(frames, image_size, image_size, 3)` RGB with raw pixel values in [0, 255]
(models do their own preprocessing) and whose labels are int32 class indices.
Clip sampling, resizing and augmentation are shared (`ClipSampling`).
"""

from delta_keras.data.cache import FrameCache
from delta_keras.data.class_folder import ClassFolder, grouped_split, jhmdb_group
from delta_keras.data.sampling import ClipSampling, clip_dataset, first_videos_per_class, resize_short_side
from delta_keras.data.synthetic import (SYNTHETIC_CLASSES, synthetic_actions, synthetic_video, write_class_folder,
                                       write_ucf101_folder)
from delta_keras.data.ucf101 import VideoFolder, ucf101
from delta_keras.data.video_files import (DataLayoutError, DecodeReport, ProbedVideos, ProbeIndex, VideoEntry, VideoFiles,
                                          usable_cores)
from delta_keras.data.ucf101_tfds import ucf101_tfds
from delta_keras.data.video import VideoDecodeError, count_frames, probe_video, read_clip, read_frames, write_video

__all__ = [
    "SYNTHETIC_CLASSES",
    "ClassFolder",
    "ClipSampling",
    "DataLayoutError",
    "DecodeReport",
    "FrameCache",
    "VideoDecodeError",
    "ProbeIndex",
    "ProbedVideos",
    "VideoEntry",
    "VideoFiles",
    "VideoFolder",
    "clip_dataset",
    "first_videos_per_class",
    "grouped_split",
    "jhmdb_group",
    "probe_video",
    "read_clip",
    "read_frames",
    "write_video",
    "count_frames",
    "resize_short_side",
    "synthetic_actions",
    "synthetic_video",
    "ucf101",
    "ucf101_tfds",
    "usable_cores",
    "write_class_folder",
    "write_ucf101_folder",
]
