"""Shared fixtures: small UCF101-layout trees built from synthetic and real videos."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest

from delta_keras.data import write_ucf101_folder

REAL_CLIPS = Path(__file__).resolve().parents[2].parent / "shared/data/real_clips"
REAL_FILES = {
    "ApplyEyeMakeup": "v_ApplyEyeMakeup_g01_c01.avi",
    "CleaningPool": "cleaning_pool_k400.mp4",
    "ArmWrestling": "arm_wrestling_k400.mp4",
}

TreeBuilder = Callable[..., Path]


def build_tree(
    root: Path,
    classes: list[str],
    videos: dict[str, Path | bytes],
    train: list[str],
    test: list[str],
) -> Path:
    """Writes a UCF101 tree: `videos` maps a path under `UCF-101/` to a file to link or bytes to write.

    `train` and `test` are the lines of trainlist01.txt and testlist01.txt.
    """
    for relative, source in videos.items():
        target = root / "UCF-101" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
        else:
            os.symlink(source, target)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {name}\n" for i, name in enumerate(classes)))
    (lists / "trainlist01.txt").write_text("".join(f"{line}\n" for line in train))
    (lists / "testlist01.txt").write_text("".join(f"{line}\n" for line in test))
    return root


@pytest.fixture
def tree(tmp_path) -> TreeBuilder:
    """`tree(classes, videos, train, test)` builds a UCF101 tree in a fresh folder."""
    return lambda *args, **kwargs: build_tree(tmp_path / "ucf", *args, **kwargs)


@pytest.fixture(scope="session")
def real_clips() -> Path:
    if not all((REAL_CLIPS / name).exists() for name in REAL_FILES.values()):
        pytest.skip(f"real test clips not found in {REAL_CLIPS} (see shared/data/real_clips/README.md)")
    return REAL_CLIPS


@pytest.fixture
def real_avi(real_clips) -> Path:
    """The genuine UCF101 clip (Xvid AVI)."""
    return real_clips / REAL_FILES["ApplyEyeMakeup"]


@pytest.fixture
def real_tree(real_clips, tree) -> Path:
    """The three real clips as a UCF101 tree (one .avi, two .mp4), all in train and test."""
    entries = {f"{cls}/v_{cls}_g01_c01{Path(name).suffix}": real_clips / name for cls, name in REAL_FILES.items()}
    classes = sorted(REAL_FILES)
    return tree(
        classes,
        entries,
        train=[f"{path} {classes.index(path.split('/')[0]) + 1}" for path in entries],
        test=list(entries),
    )


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """Synthetic actions written as a UCF101 folder: 3 small videos a class."""
    return write_ucf101_folder(tmp_path_factory.mktemp("synthetic_ucf"), num_videos_per_class=3, frames=20, image_size=32)
