"""Labelled videos in class folders, ``<root>/<class>/<video>`` (JHMDB, Kinetics-style trees, a user's own data),
split into train / validation / test without leakage between clips of one source video."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

from delta_keras.data.video_files import COUNT, VIDEO_EXTENSIONS, DataLayoutError, ProbedVideos

SPLITS = ("train", "validation", "test")
LAYOUT = """\
<root>/<class>/<video>.avi                   (one folder a class; .mp4, .mkv, .mov, .webm also accepted)
<root>/[splits/]<class>_test_split<k>.txt   (optional, JHMDB's official splits: "<video>.avi 1|2" a line,
                                             1 = train, 2 = test, 0 = unused)"""


def jhmdb_group(class_name: str, stem: str) -> str:
    """JHMDB's (and HMDB51's) source video of a clip: the file name before ``_<class>_``
    (``April_09`` in ``brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi``); the whole name where the class
    is not in it (each clip is then its own group)."""
    head, found, _ = stem.partition(f"_{class_name}_")
    return head if found else stem


def group_by_pattern(pattern: str) -> Callable[[str, str], str]:
    """A grouping rule from a regular expression with a group named ``group`` (or the first group), searched in
    the file name without its extension; a name it does not match is its own group. E.g. ``r"^(?P<group>.+)_c\\d+$"``
    for UCF101-style names (``v_Class_g08_c01``: clips of ``v_Class_g08`` share a group)."""
    regex = re.compile(pattern)
    if not regex.groups:
        raise ValueError(f"group pattern {pattern!r} needs a group, e.g. (?P<group>...)")

    def group(class_name: str, stem: str) -> str:
        match = regex.search(stem)
        if not match:
            return stem
        return match.group("group") if "group" in regex.groupindex else match.group(1)

    return group


@dataclasses.dataclass(frozen=True)
class Clip:
    """A labelled video file of a class folder and the source video it was cut from."""

    path: Path
    label: int
    group: str


def find_clips(root: Path, classes: list[str], group: Callable[[str, str], str]) -> list[Clip]:
    """Every video file of every class folder, sorted by class then name, with its group."""
    clips = []
    for label, name in enumerate(classes):
        for path in sorted(p for p in (root / name).iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()):
            clips.append(Clip(path, label, group(name, path.stem)))
    return clips


def official_split(root: Path, classes: list[str], fold: int) -> dict[str, str] | None:
    """JHMDB's split files of ``fold`` as ``{file name: "train" | "test"}``, or None where there are none.

    Raises:
        DataLayoutError: some classes have a split file and others not, or a line is malformed (names the file
            and line).
    """
    folders = [folder for folder in (root / "splits", root) if folder.is_dir()]
    files = {name: next((f / f"{name}_test_split{fold}.txt" for f in folders
                         if (f / f"{name}_test_split{fold}.txt").is_file()), None) for name in classes}
    present = [name for name, path in files.items() if path]
    if not present:
        return None
    if len(present) < len(classes):
        missing = sorted(set(classes) - set(present))
        raise DataLayoutError(f"{root}: split files of fold {fold} for {len(present)} of {len(classes)} classes; "
                              f"missing {missing[0]}_test_split{fold}.txt" + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    assignment = {}
    for name, path in files.items():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise DataLayoutError(f"{path}:{number}: expected '<video> 1|2' (1 train, 2 test, 0 unused), got {line!r}")
            if fields[1] != "0":
                assignment[fields[0]] = "train" if fields[1] == "1" else "test"
    return assignment


def _rank(seed: int, group: str) -> str:
    # A hash, not Python's hash(): the same order in every process and release.
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def grouped_split(clips: list[Clip], shares: dict[str, float], seed: int = 0) -> dict[Clip, str]:
    """Assigns whole groups (source videos) to splits, so that no source video has clips on two sides.

    Groups are visited in an order fixed by ``seed`` (a hash of the group name: deterministic, independent of
    file order), largest first; each goes to the split whose clips of the group's classes are furthest below
    their targets (``share`` of each class), relative to the target. Per class, a split then holds about its
    share of the clips, as closely as whole groups allow.

    Args:
        clips: the clips to split.
        shares: ``{split: share of each class's clips}``, summing to 1, e.g.
            ``{"train": 0.55, "validation": 0.15, "test": 0.3}``.
        seed: the order in which groups of equal size are dealt out.

    Returns:
        ``{clip: split}``.
    """
    if abs(sum(shares.values()) - 1) > 1e-9 or min(shares.values()) < 0:
        raise ValueError(f"shares must be >= 0 and sum to 1, got {shares}")
    members = defaultdict(list)
    for clip in clips:
        members[clip.group].append(clip)
    per_class = Counter(clip.label for clip in clips)
    target = {split: {label: share * count for label, count in per_class.items()} for split, share in shares.items()}
    filled = {split: Counter() for split in shares}
    assignment = {}

    def shortfall(split: str, group: list[Clip]) -> float:
        return sum((target[split][c.label] - filled[split][c.label]) / max(target[split][c.label], 1e-9)
                   for c in group) if shares[split] else -math.inf

    for group in sorted(members, key=lambda g: (-len(members[g]), _rank(seed, g))):
        split = max(shares, key=lambda s: shortfall(s, members[group]))
        for clip in members[group]:
            filled[split][clip.label] += 1
            assignment[clip] = split
    return assignment


class ClassFolder(ProbedVideos):
    """One split of a ``<root>/<class>/<video>`` tree of labelled videos, checked and probed.

    Classes are the sub-folders, sorted by name (labels 0..N-1 in that order); every video file in one is a
    clip of that class. The split keeps every source video on one side: with JHMDB's official split files
    (``<class>_test_split<fold>.txt``, in ``<root>`` or ``<root>/splits``) test is theirs; otherwise whole
    groups of clips (``group``: JHMDB's rule by default, the file name before ``_<class>_``) are dealt out
    deterministically, ``test_share`` of each class to test. ``validation_share`` of each class's clips is
    carved from the training part the same way (whole groups), for calibration and model selection, so the
    test part is never used for either. Videos that cannot be opened or decode no frame are reported and
    skipped (``strict``: raised), as for UCF101 (`VideoFolder`), with the same probe index and frame cache.

    Frame counts: with ``trust_headers=False`` (the default) every video is decoded once when probed and its
    frames counted, and clips are read by decoding from the start, never by seeking: web video containers
    (JHMDB's among them) announce other frame counts than they hold (about 1.2 times) and seek to other frames
    than decoding reaches. ``trust_headers=True`` probes and seeks as for UCF101 (``verify`` applies).

    Args:
        root: the folder of class folders.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        fold: which official split file to read, where they exist (JHMDB has 1, 2 and 3).
        test_share: share of each class's clips in test, without split files.
        validation_share: share of each class's clips carved from the training part for validation.
        group: ``group(class_name, file_stem) -> source video`` (a callable, or a regular expression for
            `group_by_pattern`); default `jhmdb_group`.
        seed: the order in which groups are dealt out.
        trust_headers: take frame counts from the containers' headers and seek (see above).
        strict, verify, index, workers: as for `VideoFolder` (``verify`` only with ``trust_headers``).

    Attributes:
        classes: class names in label order.
        videos: the usable videos of the split, as `VideoEntry`s.
        groups: the source video of each video in ``videos``.
        report: the `DecodeReport` of skipped videos.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        DataLayoutError: no class folder with videos, a malformed split file, or a split without videos.

    Example:

    >>> test = ClassFolder("../shared/data/jhmdb", "test")  # doctest: +SKIP
    >>> clips = test.dataset(frames=8, image_size=112, clips_per_video=3, with_video_id=True)  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", fold: int = 1, test_share: float = 0.3,
                 validation_share: float = 0.15, group: Callable[[str, str], str] | str | None = None, seed: int = 0,
                 trust_headers: bool = False, strict: bool = False, verify: bool | str = True,
                 index: str | os.PathLike | None = None, workers: int | None = None):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not (0 < test_share < 1 and 0 <= validation_share < 1 and test_share + validation_share < 1):
            raise ValueError(f"need 0 < test_share < 1, 0 <= validation_share < 1 and their sum < 1, got "
                             f"{test_share} and {validation_share}")
        super().__init__(strict)
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"class folder root not found: {self.root} (expected:\n{LAYOUT})")
        self.split = split
        group = jhmdb_group if group is None else group_by_pattern(group) if isinstance(group, str) else group
        self.classes = sorted(p.name for p in self.root.iterdir()
                              if p.is_dir() and any(f.suffix.lower() in VIDEO_EXTENSIONS for f in p.iterdir()))
        if not self.classes:
            raise DataLayoutError(f"{self.root}: no class folder holding videos ({', '.join(VIDEO_EXTENSIONS)}); "
                                  f"expected:\n{LAYOUT}")
        clips = find_clips(self.root, self.classes, group)
        assignment = self._assign(clips, fold, test_share, validation_share, seed)
        chosen = [clip for clip in clips if assignment.get(clip) == split]
        if not chosen:
            raise DataLayoutError(f"{self.root}: the {split} split holds no video ({len(clips)} found in all)")
        self.seek = trust_headers
        self.videos = self._probe([(clip.path, clip.label) for clip in chosen], verify if trust_headers else COUNT,
                                  index, workers)
        group_of = {clip.path: clip.group for clip in chosen}
        self.groups = [group_of[video.path] for video in self.videos]

    def _assign(self, clips: list[Clip], fold: int, test_share: float, validation_share: float,
                seed: int) -> dict[Clip, str]:
        official = official_split(self.root, self.classes, fold)
        if official is None:
            return grouped_split(clips, {"train": 1 - test_share - validation_share, "validation": validation_share,
                                         "test": test_share}, seed)
        # A clip the files do not list (or mark 0) is in no split of the fold, as in JHMDB's own protocol.
        listed = [clip for clip in clips if clip.path.name in official]
        assignment = {clip: official[clip.path.name] for clip in listed}
        training = [clip for clip in listed if assignment[clip] == "train"]
        # Validation comes out of the official training part, by whole groups.
        share = validation_share / (1 - test_share)
        assignment.update(grouped_split(training, {"train": 1 - share, "validation": share}, seed))
        return assignment
