"""data.ClassFolder: <class>/<video> trees split without leakage, official JHMDB split files, real AVI files."""

from pathlib import Path

import pytest

from delta_keras.data import ClassFolder, DataLayoutError, grouped_split, jhmdb_group, write_class_folder
from delta_keras.data.class_folder import Clip, group_by_pattern

CLASSES = ("move_left", "move_right", "move_up")


def build(root: Path, sources: int = 6, clips_per_source: int = 3, frames: int = 10) -> Path:
    """JHMDB-style names, several clips of each source video, two sources ("a movie") in every class."""
    write_class_folder(root, 3, sources, clips_per_source, frames, image_size=24, shared_sources=2)
    (root / "notes.txt").write_text("not a class")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("jhmdb"))


def test_the_grouping_rules():
    assert jhmdb_group("brush_hair", "April_09_brush_hair_u_nm_np1_ba_goo_0") == "April_09"
    assert jhmdb_group("wave", "some_clip_name") == "some_clip_name"
    ucf = group_by_pattern(r"^(?P<group>v_.+_g\d+)_c\d+$")
    assert ucf("ApplyEyeMakeup", "v_ApplyEyeMakeup_g08_c01") == "v_ApplyEyeMakeup_g08"
    with pytest.raises(ValueError, match="needs a group"):
        group_by_pattern(r"v_.*")


def test_no_source_video_crosses_a_split_and_every_class_is_on_every_side(tree):
    parts = {split: ClassFolder(tree, split) for split in ("train", "validation", "test")}
    assert parts["train"].classes == list(CLASSES)  # sorted folder names; notes.txt is no class
    groups = {split: set(part.groups) for split, part in parts.items()}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["validation"]
    assert not groups["validation"] & groups["test"]
    assert sum(len(part.videos) for part in parts.values()) == 3 * 6 * 3  # every clip is in one split
    for part in parts.values():
        assert {video.label for video in part.videos} == {0, 1, 2}
        assert all(video.num_frames == 10 for video in part.videos)
    # "Movie_0" has clips in two classes: still one group, on one side.
    assert sum("Movie_0" in part.groups for part in parts.values()) == 1
    # Deterministic: the same split again, whatever the order files are listed in.
    again = ClassFolder(tree, "test")
    assert [v.path for v in again.videos] == [v.path for v in parts["test"].videos]


def test_grouped_split_meets_the_shares_per_class_with_whole_groups():
    clips = [Clip(Path(f"{c}_{g}_{k}.avi"), c, f"g{c}-{g}") for c in range(3) for g in range(20) for k in range(2)]
    assignment = grouped_split(clips, {"train": 0.55, "validation": 0.15, "test": 0.3}, seed=1)
    for label in range(3):
        counts = {s: sum(1 for c, split in assignment.items() if c.label == label and split == s)
                  for s in ("train", "validation", "test")}
        assert counts == {"train": 22, "validation": 6, "test": 12}
    for group in {c.group for c in clips}:
        assert len({split for c, split in assignment.items() if c.group == group}) == 1
    assert grouped_split(clips, {"train": 0.55, "validation": 0.15, "test": 0.3}, seed=2) != assignment


def test_official_split_files_decide_train_and_test(tmp_path):
    root = build(tmp_path / "jhmdb", sources=3, clips_per_source=2, frames=6)
    splits = root / "splits"
    splits.mkdir()
    for name in CLASSES:
        files = sorted(p.name for p in (root / name).iterdir())
        lines = [f"{f} {2 if i < 2 else 1}" for i, f in enumerate(files)] + [f"missing_{name}_x_0.avi 1"]
        (splits / f"{name}_test_split1.txt").write_text("\n".join(lines) + "\n")
    test = ClassFolder(root, "test", validation_share=0.2)
    assert len(test.videos) == 6 and all(v.path.name in {sorted(p.name for p in (root / c).iterdir())[i]
                                                          for c in CLASSES for i in (0, 1)} for v in test.videos)
    train, validation = ClassFolder(root, "train", validation_share=0.2), ClassFolder(root, "validation", validation_share=0.2)
    assert len(train.videos) + len(validation.videos) == 12 and not set(train.groups) & set(validation.groups)
    (splits / "move_up_test_split1.txt").write_text("clip.avi 7\n")
    with pytest.raises(DataLayoutError, match="move_up_test_split1.txt:1: expected"):
        ClassFolder(root, "test")
    (splits / "move_up_test_split1.txt").unlink()
    with pytest.raises(DataLayoutError, match="missing move_up_test_split1.txt"):
        ClassFolder(root, "test")


def test_a_broken_video_is_reported_and_skipped_or_raised_in_strict_mode(tmp_path):
    root = build(tmp_path / "tree", sources=3, clips_per_source=2, frames=6)
    broken = sorted((root / "move_right").iterdir())[0]
    broken.write_bytes(b"not a video")
    found = {split: ClassFolder(root, split) for split in ("train", "validation", "test")}
    owner = next(part for part in found.values() if str(broken) in part.report.skipped)
    assert "cannot be opened" in owner.report.skipped[str(broken)]
    assert all(v.path != broken for part in found.values() for v in part.videos)
    with pytest.raises(Exception, match="cannot be opened"):
        for split in ("train", "validation", "test"):
            ClassFolder(root, split, strict=True)


def test_clips_decode_from_the_start_where_headers_cannot_be_trusted(tree):
    folder = ClassFolder(tree, "test")
    assert folder.seek is False
    clips = list(folder.dataset(frames=4, image_size=16, clips_per_video=2, with_video_id=True))
    assert len(clips) == 2 * len(folder.videos)
    clip, label, video_id = clips[0]
    assert clip.shape == (4, 16, 16, 3) and 0 <= int(label) < 3


@pytest.mark.parametrize("kwargs, error", [
    (dict(split="holdout"), "split must be one of"),
    (dict(test_share=0.0), "test_share"),
    (dict(test_share=0.6, validation_share=0.5), "sum < 1"),
])
def test_bad_arguments_are_refused(tree, kwargs, error):
    with pytest.raises(ValueError, match=error):
        ClassFolder(tree, **kwargs)


def test_a_folder_without_class_folders_is_refused(tmp_path):
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DataLayoutError, match="no class folder holding videos"):
        ClassFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        ClassFolder(tmp_path / "nowhere")
