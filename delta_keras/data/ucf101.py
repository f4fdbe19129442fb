"""UCF101 read from the folder layout it ships in, decoded with OpenCV (the generic machinery of video files on
disk is in `delta_keras.data.video_files`; its names stay importable from here)."""

from __future__ import annotations

import re
from pathlib import Path

import tensorflow as tf

from delta_keras.data.sampling import ClipSampling
from delta_keras.data.video import VideoDecodeError
from delta_keras.data.video_files import (COUNT, VERIFY_LEVELS, VIDEO_EXTENSIONS, DataLayoutError,  # noqa: F401
                                          DecodeReport, ProbedVideos, ProbeIndex, VideoEntry, VideoFiles, usable_cores,
                                          verify_level)

LAYOUT = """\
<root>/UCF-101/<Class>/v_<Class>_gXX_cYY.avi      (the videos; .mp4 also accepted)
<root>/ucfTrainTestlist/classInd.txt              ("1 ApplyEyeMakeup" a line, 1-based)
<root>/ucfTrainTestlist/trainlist0N.txt           ("Class/v_Class_g08_c01.avi 1" a line)
<root>/ucfTrainTestlist/testlist0N.txt            ("Class/v_Class_g01_c01.avi" a line)"""

_FILE_NAME = re.compile(r"v_(?P<cls>.+)_g\d+_c\d+$")


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path} (expected the UCF101 layout, see docs/data.md)\n{LAYOUT}")
    return path


def _read_classes(class_file: Path) -> list[str]:
    numbered = {}
    for line_number, line in enumerate(class_file.read_text().splitlines(), 1):
        if line.strip():
            try:
                index, name = line.split()
                numbered[int(index)] = name
            except ValueError:
                raise DataLayoutError(f"{class_file}:{line_number}: expected '<index> <Class>', got {line!r}") from None
    if sorted(numbered) != list(range(1, len(numbered) + 1)):
        raise DataLayoutError(f"{class_file}: class indices must be 1..{len(numbered)}, got {sorted(numbered)}")
    return [numbered[i] for i in range(1, len(numbered) + 1)]


def _index_videos(videos_dir: Path) -> dict[tuple[str, str], Path]:
    """Maps (class folder, file stem), both lower-cased, to the file on disk.

    Case-insensitive because UCF101 itself is inconsistent: the lists write
    `HandstandPushups/v_HandStandPushups_...` while archives differ in the
    case of the folder and file names.
    """
    index = {}
    for class_dir in videos_dir.iterdir():
        if class_dir.is_dir():
            for path in class_dir.iterdir():
                if path.suffix.lower() in VIDEO_EXTENSIONS:
                    index[(class_dir.name.lower(), path.stem.lower())] = path
    return index


class VideoFolder(ProbedVideos):
    """One split of UCF101 (or any dataset in its layout), checked and probed.

    Opening the folder reads `classInd.txt` and the split list, checks every
    entry's label against its class folder, finds the files (class and file
    names match case-insensitively, `.avi` or `.mp4`), and probes each video's
    frame count in parallel. Missing, unreadable, truncated or empty videos are
    skipped with a warning and listed in `report`; iteration-time decode
    failures are added there too. No video ever gets a label other than the
    one of its class folder.

    Args:
        root: folder holding `UCF-101/` and `ucfTrainTestlist/`.
        split: `"train"` or `"test"`.
        fold: which of the three official splits, 1, 2 or 3.
        strict: raise on the first missing or undecodable video instead of
            skipping it.
        verify: when probing, also seek to and decode the last announced frame
            of each video (roughly half the cost of decoding the video once), so
            that truncated files are caught before training. With `False` only
            the header is read, and truncation shows up as skipped clips while
            iterating. ``"decode"`` decodes every frame in worker processes and
            reads FFmpeg's error messages, so damage inside a file is found too
            (about the cost of decoding the split once; remembered with ``index``).
        index: a JSON file (this package's) remembering what probing found, keyed by path, size and
            modification time (see `ProbeIndex`): a second opening of the same folder probes nothing.
        workers: probing threads (default: the cores this process may use).

    Attributes:
        classes: class names in label order (from `classInd.txt`).
        videos: the usable videos, as `VideoEntry`s; `video_id` is an index here.
        report: the `DecodeReport` of skipped videos.

    Raises:
        FileNotFoundError: `root`, the video folder or a list file is missing.
        ValueError: a bad argument, a malformed list, a class missing from
            `classInd.txt`, or a list label that contradicts the class folder.
        VideoDecodeError: with `strict`, a listed video that is missing or
            cannot be decoded.

    Example:

    >>> folder = VideoFolder("/data/ucf101", split="test", fold=1)  # doctest: +SKIP
    >>> ds = folder.dataset(frames=16, image_size=112, clips_per_video=3, with_video_id=True)  # doctest: +SKIP
    >>> print(folder.report.summary())  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        fold: int = 1,
        strict: bool = False,
        verify: bool | str = True,
        index: str | os.PathLike | None = None,
        workers: int | None = None,
    ):
        if split not in ("train", "test"):
            raise ValueError(f'split must be "train" or "test", got {split!r}')
        if fold not in (1, 2, 3):
            raise ValueError(f"fold must be 1, 2 or 3, got {fold!r}")
        super().__init__(strict)
        self.root = _require(Path(root), "UCF101 root folder")
        self.split = split
        lists_dir = _require(self.root / "ucfTrainTestlist", "UCF101 split folder")
        class_file = _require(lists_dir / "classInd.txt", "UCF101 class list")
        list_file = _require(lists_dir / f"{split}list0{fold}.txt", "UCF101 split list")
        self.classes = _read_classes(class_file)
        on_disk = _index_videos(_require(self.root / "UCF-101", "UCF101 video folder"))
        located = []
        for class_name, file_name, label in self._parse_list(list_file, class_file):
            path = on_disk.get((class_name.lower(), Path(file_name).stem.lower()))
            if path is None:
                self._skip(VideoDecodeError(self.root / "UCF-101" / class_name / file_name, "listed but not found"))
            else:
                located.append((path, label))
        self.videos = self._probe(located, verify, index, workers)

    def _parse_list(self, list_file: Path, class_file: Path) -> list[tuple[str, str, int]]:
        labels = {name.lower(): label for label, name in enumerate(self.classes)}
        entries = []
        for line_number, line in enumerate(list_file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            where = f"{list_file}:{line_number}"
            relative, *given = line.split()
            class_name, _, file_name = relative.replace("\\", "/").rpartition("/")
            label = labels.get(class_name.lower())
            if label is None:
                raise DataLayoutError(f"{where}: class {class_name!r} is not in {class_file}")
            if given and given[0] != str(label + 1):
                raise DataLayoutError(
                    f"{where}: label {given[0]} contradicts {class_file}, where {class_name} is {label + 1}"
                )
            named = _FILE_NAME.match(Path(file_name).stem)
            if named and named["cls"].lower() != class_name.lower():
                raise DataLayoutError(f"{where}: file {file_name!r} is named for another class than {class_name!r}")
            entries.append((class_name, file_name, label))
        return entries

def ucf101(
    root: str | os.PathLike,
    split: str = "train",
    fold: int = 1,
    sampling: ClipSampling | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    strict: bool = False,
    with_video_id: bool = False,
    verify: bool = True,
    **sampling_fields,
) -> tf.data.Dataset:
    """UCF101 from its folder layout, as a `tf.data.Dataset` of clips.

    Shorthand for `VideoFolder(root, split, fold, strict, verify).dataset(...)`;
    use `VideoFolder` directly to read the report of skipped videos or the
    class names. See `VideoFolder` and `VideoFolder.dataset` for the arguments
    and `ClipSampling` for how clips are sampled (pass one as `sampling`, or its
    fields as keywords).

    Returns:
        A `tf.data.Dataset` of `(clip, label)` (or `(clip, label, video_id)`):
        clip float32 `(frames, image_size, image_size, 3)` RGB in [0, 255],
        label int32 in `[0, 101)`.

    Example:

    >>> train = ucf101("/data/ucf101", "train", fold=1, cache_dir="/data/cache")  # doctest: +SKIP
    >>> model.fit(train.batch(8).prefetch(2), epochs=10)  # doctest: +SKIP
    """
    folder = VideoFolder(root, split, fold, strict=strict, verify=verify)
    return folder.dataset(sampling, cache_dir=cache_dir, with_video_id=with_video_id, **sampling_fields)
