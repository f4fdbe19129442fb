"""`DataConfig`: where a run's videos come from and how they are cut into clips, batched and checked."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import ClassVar

from delta_keras.data.video_files import VERIFY_LEVELS
from delta_keras.train.config.setting import ConfigError, check_at_least_one, check_finite, setting

DATASETS = ("synthetic", "ucf101", "ucf101-tfds", "folder")
# Settings that change how data is read or checked, not what a run computes: a resume may change them.
READING_FIELDS = ("verify_videos", "decode_threads", "opencv_threads", "cache_dir", "cache_max_gb")


@dataclasses.dataclass
class DataConfig:
    """The data part of a `TrainConfig`: source, split, clips, batches, evaluation and reading.

    The data builders of `delta_keras.train.builders` take this part (a `TrainConfig` is one).
    """

    GROUP: ClassVar[str] = "data"

    dataset: str = setting("synthetic", "Data source: the embedded synthetic actions, the UCF101 folder "
                           "(UCF-101/ and ucfTrainTestlist/ under --data-dir), tfds 'ucf101', or a folder of class "
                           "folders (<data-dir>/<class>/<video>: JHMDB, Kinetics-style, your own).", choices=DATASETS)
    data_dir: str | None = setting(None, "Root of the UCF101 folder or of the class folders, or the tfds data_dir.")
    fold: int = setting(1, "UCF101 train/test split, or JHMDB's split files of --dataset folder (1, 2 or 3).",
                        choices=(1, 2, 3))
    test_share: float = setting(0.3, "--dataset folder without split files: share of each class's clips in test "
                                "(whole source videos, so no video has clips on both sides).")
    validation_share: float = setting(0.15, "--dataset folder: share of each class's clips carved from the training "
                                      "part for the per-epoch validation (whole source videos).")
    group_pattern: str | None = setting(None, "--dataset folder: regular expression whose group 'group' names a "
                                        "clip's source video in its file name (default: JHMDB's rule, the name "
                                        "before _<class>_).")
    unlabelled_dir: str | None = setting(None, "With --distill-from: train on every video under this folder (.avi, "
                                         ".mp4...; any names, no labels); --dataset then only validates and "
                                         "evaluates.")
    frames: int = setting(8, "Frames per clip (>= 2: deltas need a previous frame).")
    frame_stride: int = setting(1, "Take every n-th frame of a video.")
    image_size: int = setting(32, "Height and width of the frames fed to the model.")
    synthetic_videos: int = setting(480, "Synthetic training videos.")
    synthetic_test_videos: int = setting(120, "Synthetic test videos.")
    synthetic_video_frames: int | None = setting(None, "Length of each synthetic video (default: twice a clip's "
                                                 "span, so clips differ and video-level accuracy means something).")
    batch_size: int = setting(16, "Global batch size (split over replicas).")
    steps_per_epoch: int | None = setting(None, "Batches per epoch (default: one pass over the training set).")
    validation_steps: int | None = setting(None, "Validation batches per epoch, from a fixed, class-stratified "
                                           "sample of test videos (the first ones of each class; default: the whole "
                                           "test set). Validation clips are decoded each epoch, never held in "
                                           "memory.")
    seed: int = setting(0, "Seed of weights, data order and augmentation.")
    eval_clips: int = setting(4, "Clips per video, spread evenly, averaged for video-level accuracy.")
    eval_videos_per_class: int | None = setting(None, "Final evaluation on the first N test videos of each class "
                                                "only (a quick, class-stratified evaluation; default: the whole "
                                                "split).")
    cache_dir: str | None = setting(None, "Cache of decoded frames (lossless, about 4x smaller than raw; speeds up "
                                    "later epochs and runs); also where the video index is remembered.")
    cache_max_gb: float | None = setting(None, "Bound of --cache-dir in GB (least recently used videos are evicted; "
                                         "default: no bound).")
    verify_videos: str = setting("full", "How videos are checked when a folder is opened: full (decode the first "
                                 "and last frames: catches truncated files), header (frame count only) or decode "
                                 "(decode every frame in worker processes and read the decoder's errors: also "
                                 "catches damage inside a file). Results are remembered by path, size and time, so "
                                 "a second run checks nothing.", choices=VERIFY_LEVELS)
    decode_threads: int | None = setting(None, "Videos decoded at once, and threads checking videos (default: "
                                         "tf.data's autotuning, and the cores this process may use).")
    opencv_threads: int | None = setting(None, "Threads OpenCV may use inside one decode (default: OpenCV's own).")

    @property
    def tfds_config(self) -> str:
        """The tfds builder name of the fold: ``ucf101/ucf101_1`` ... ``ucf101/ucf101_3``."""
        return f"ucf101/ucf101_{self.fold}"

    def validate(self) -> None:
        """Checks the data settings, and that the folders they name exist and have the expected layout.

        Raises:
            ConfigError: naming the flags involved.
        """
        check_finite(self, DataConfig)
        if self.frames < 2:
            raise ConfigError(f"--frames must be >= 2 (a temporal delta needs two frames), got {self.frames}")
        check_at_least_one(self, ("frame_stride", "image_size", "synthetic_videos", "synthetic_test_videos",
                                  "eval_clips", "batch_size", "steps_per_epoch", "validation_steps",
                                  "synthetic_video_frames", "eval_videos_per_class", "decode_threads",
                                  "opencv_threads"))
        if self.cache_max_gb is not None and (self.cache_max_gb <= 0 or self.cache_dir is None):
            raise ConfigError("--cache-max-gb needs --cache-dir and a bound > 0")
        if self.unlabelled_dir is not None and not Path(self.unlabelled_dir).is_dir():
            raise ConfigError(f"--unlabelled-dir {self.unlabelled_dir}: no such folder")
        if self.dataset == "synthetic":
            if self.data_dir is not None:
                raise ConfigError("--data-dir is for --dataset ucf101, ucf101-tfds or folder, not synthetic")
        elif self.dataset == "ucf101":
            self._validate_ucf101()
        elif self.dataset == "folder":
            self._validate_class_folder()
        else:
            from delta_keras.data.ucf101_tfds import tfds_ready  # noqa: PLC0415 (tfds is slow to import)

            problem = tfds_ready(self.tfds_config, self.data_dir)
            if problem:
                raise ConfigError(f"--dataset ucf101-tfds: {problem}")

    def _validate_ucf101(self) -> None:
        if self.data_dir is None:
            raise ConfigError("--dataset ucf101 needs --data-dir, the folder holding UCF-101/ and ucfTrainTestlist/")
        root = Path(self.data_dir)
        missing = [name for name in ("UCF-101", "ucfTrainTestlist") if not (root / name).is_dir()]
        if missing:
            raise ConfigError(f"--data-dir {root}: missing {', '.join(missing)} (the UCF101 folder layout)")

    def _validate_class_folder(self) -> None:
        if self.data_dir is None or not Path(self.data_dir).is_dir():
            raise ConfigError(f"--dataset folder needs --data-dir, a folder of class folders, got {self.data_dir}")
        if not (0 < self.test_share < 1 and 0 <= self.validation_share < 1
                and self.test_share + self.validation_share < 1):
            raise ConfigError("need 0 < --test-share < 1, 0 <= --validation-share < 1 and their sum < 1, got "
                              f"{self.test_share} and {self.validation_share}")
        if self.group_pattern is not None:
            from delta_keras.data.class_folder import group_by_pattern  # noqa: PLC0415

            try:
                group_by_pattern(self.group_pattern)
            except (ValueError, re.error) as error:
                raise ConfigError(f"--group-pattern {self.group_pattern!r}: {error}") from error
