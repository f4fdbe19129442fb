import shutil
import warnings

import cv2
import numpy as np
import pytest
import tensorflow as tf

from delta_keras.data import SYNTHETIC_CLASSES, VideoDecodeError, VideoFolder, ucf101

APPLY = "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"


def take(dataset):
    return list(dataset.as_numpy_iterator())


def assert_same(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_synthetic_folder_end_to_end(synthetic_root):
    folder = VideoFolder(synthetic_root, "train", fold=1)
    assert len(folder.classes) == len(SYNTHETIC_CLASSES) and len(folder.report) == 0
    for video in folder.videos:  # every label is the one of the video's folder
        assert folder.classes[video.label] == video.path.parent.name == video.class_name
    test_paths = {v.path for v in VideoFolder(synthetic_root, "test", fold=1).videos}
    assert test_paths and not test_paths & {v.path for v in folder.videos}
    elements = take(folder.dataset(frames=8, image_size=24, with_video_id=True))
    assert len(elements) == len(folder.videos)
    for clip, label, video_id in elements:
        assert clip.shape == (8, 24, 24, 3) and clip.dtype == np.float32
        assert 0 <= clip.min() and clip.max() <= 255 and clip.max() > 100
        assert label == folder.videos[video_id].label


def test_evaluation_clips_per_video(synthetic_root):
    elements = take(ucf101(synthetic_root, "test", frames=4, image_size=16, clips_per_video=3, with_video_id=True))
    ids = [int(video_id) for _, _, video_id in elements]
    assert ids == sorted(ids) and all(ids.count(i) == 3 for i in ids)
    assert not np.array_equal(elements[0][0], elements[2][0])  # different parts of the video


def test_training_is_deterministic_given_the_seed(synthetic_root):
    def run(seed):
        return take(ucf101(synthetic_root, "train", frames=4, image_size=16, seed=seed).take(6))

    first = run(0)
    assert_same(first, run(0))
    other = run(1)
    assert [label for _, label in first] != [label for _, label in other]


def test_real_clips_avi_and_mp4(real_tree):
    folder = VideoFolder(real_tree, "test")
    assert sorted(v.path.suffix for v in folder.videos) == [".avi", ".mp4", ".mp4"]
    elements = take(folder.dataset(frames=16, frame_stride=2, image_size=64, with_video_id=True))
    assert len(elements) == 3
    for clip, label, video_id in elements:
        assert clip.shape == (16, 64, 64, 3) and clip.dtype == np.float32 and label.dtype == np.int32
        assert np.abs(np.diff(clip, axis=0)).mean() > 0.1  # real motion, not a repeated frame
    train = take(ucf101(real_tree, "train", frames=8, image_size=32, short_side=40, clips_per_video=2))
    assert len(train) == 6 and {int(label) for _, label in train} == {0, 1, 2}


def test_handstand_pushups_spelling(real_avi, tree):
    # The official archive's folder and file names differ in case from the lists.
    root = tree(
        ["ApplyEyeMakeup", "HandstandPushups"],
        {
            APPLY: real_avi,
            "HandStandPushups/v_HandStandPushups_g01_c01.avi": real_avi,
        },
        train=[f"{APPLY} 1", "HandstandPushups/v_HandStandPushups_g01_c01.avi 2"],
        test=[],
    )
    folder = VideoFolder(root, "train")
    assert [(v.path.parent.name, v.label, v.class_name) for v in folder.videos] == [
        ("ApplyEyeMakeup", 0, "ApplyEyeMakeup"),
        ("HandStandPushups", 1, "HandstandPushups"),
    ]


@pytest.mark.parametrize(
    "line, message",
    [
        (f"{APPLY} 2", "label 2 contradicts"),
        ("Unknown/v_Unknown_g01_c01.avi 1", "'Unknown' is not in"),
        ("ApplyEyeMakeup/v_Archery_g01_c01.avi 1", "named for another class"),
    ],
)
def test_inconsistent_lists_are_errors(real_avi, tree, line, message):
    root = tree(["ApplyEyeMakeup", "Archery"], {APPLY: real_avi}, train=[line], test=[])
    with pytest.raises(ValueError, match=message):
        VideoFolder(root, "train")


def test_missing_root_or_split_file(tmp_path, synthetic_root):
    # The first line says it all (scripts print only that line); the layout follows for library users.
    with pytest.raises(FileNotFoundError, match=r"UCF101 root folder not found: .*nowhere \(expected the UCF101 layout.*\n.*UCF-101/<Class>"):
        ucf101(tmp_path / "nowhere")
    copy = shutil.copytree(synthetic_root / "ucfTrainTestlist", tmp_path / "ucfTrainTestlist")
    (tmp_path / "UCF-101").mkdir()
    (copy / "testlist02.txt").unlink()
    with pytest.raises(FileNotFoundError, match="testlist02.txt"):
        VideoFolder(tmp_path, "test", fold=2)
    with pytest.raises(ValueError, match="fold"):
        VideoFolder(tmp_path, "test", fold=4)


@pytest.fixture
def damaged_tree(real_avi, tree):
    source = real_avi
    data = source.read_bytes()
    return tree(
        ["ApplyEyeMakeup"],
        {
            APPLY: source,
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi": data[: len(data) // 3],
            "ApplyEyeMakeup/v_ApplyEyeMakeup_g03_c01.avi": b"",
        },
        train=[f"ApplyEyeMakeup/v_ApplyEyeMakeup_g0{g}_c01.avi 1" for g in (1, 2, 3, 4)],
        test=[],
    )


def test_damaged_videos_are_skipped_with_warnings(damaged_tree):
    with pytest.warns(UserWarning) as caught:
        folder = VideoFolder(damaged_tree, "train")
    messages = "\n".join(str(w.message) for w in caught)
    for group, reason in [(2, "truncated"), (3, "cannot be opened"), (4, "listed but not found")]:
        assert f"g0{group}_c01.avi: {reason}" in messages
    assert len(folder.report) == 3 and "3 video(s) skipped" in folder.report.summary()
    assert [v.path.name for v in folder.videos] == ["v_ApplyEyeMakeup_g01_c01.avi"]
    assert len(take(folder.dataset(frames=4, image_size=16))) == 1


def test_strict_raises(damaged_tree):
    with pytest.raises(VideoDecodeError, match="g04_c01.avi: listed but not found"):
        VideoFolder(damaged_tree, "train", strict=True)
    train_list = damaged_tree / "ucfTrainTestlist/trainlist01.txt"
    train_list.write_text(train_list.read_text().replace("ApplyEyeMakeup/v_ApplyEyeMakeup_g04_c01.avi 1\n", ""))
    with pytest.raises(VideoDecodeError, match="g0[23]_c01.avi: (truncated|cannot be opened)"):
        VideoFolder(damaged_tree, "train", strict=True)


def test_decode_failures_while_iterating(damaged_tree):
    # Without verification a truncated file passes the probe and fails at decode time.
    with pytest.warns(UserWarning):
        folder = VideoFolder(damaged_tree, "train", verify=False)
    assert len(folder.videos) == 2
    with pytest.warns(UserWarning, match="g02_c01.avi: frame .* cannot be decoded"):
        elements = take(folder.dataset(frames=4, image_size=16, training=False, with_video_id=True))
    assert [int(video_id) for *_, video_id in elements] == [0]
    assert "frame" in folder.report.skipped[str(folder.videos[1].path)]
    folder.strict = True
    with pytest.raises(tf.errors.OpError, match="g02_c01.avi: frame"):
        take(folder.dataset(frames=4, image_size=16, training=False))


def test_cache_is_read_back(real_tree, tmp_path, monkeypatch):
    folder = VideoFolder(real_tree, "test")

    def dataset(cache_dir):
        return folder.dataset(frames=8, frame_stride=3, image_size=32, cache_dir=cache_dir, clips_per_video=2)

    uncached = take(dataset(None))
    first = take(dataset(tmp_path / "cache"))
    assert len(list((tmp_path / "cache").rglob("*.frames"))) == 3
    with monkeypatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("error")  # a decode attempt would warn and skip
        patch.setattr(cv2, "VideoCapture", None)
        second = take(dataset(tmp_path / "cache"))
    assert_same(first, second)
    assert_same(uncached, first)  # seeking and the cache give the same frames


def test_a_remembered_index_makes_the_second_opening_probe_nothing(synthetic_root, tmp_path, monkeypatch):
    import importlib
    import json

    module = importlib.import_module("delta_keras.data.video_files")
    synthetic_root = shutil.copytree(synthetic_root, tmp_path / "copy")  # a video gets edited below
    calls = []
    real_probe = module.probe_video
    monkeypatch.setattr(module, "probe_video", lambda path, verify: calls.append((path, verify)) or real_probe(path, verify))
    index = tmp_path / "index.json"
    first = VideoFolder(synthetic_root, "test", index=index)
    probed = len(calls)
    assert probed == len(first.videos) > 0 and json.loads(index.read_text())["generator"] == "delta_keras"
    again = VideoFolder(synthetic_root, "test", index=index)
    assert len(calls) == probed and [v.num_frames for v in again.videos] == [v.num_frames for v in first.videos]
    # A header-only check does not stand in for a full one; a full one does for a header-only one.
    VideoFolder(synthetic_root, "test", index=index, verify=False)
    assert len(calls) == probed
    # An edited file is probed again, and a broken one is remembered as broken.
    edited = first.videos[0].path
    edited.write_bytes(b"no longer a video")
    with pytest.warns(UserWarning, match="skipping video"):
        third = VideoFolder(synthetic_root, "test", index=index)
    assert len(calls) == probed + 1 and str(edited) in third.report.skipped
    with pytest.warns(UserWarning, match="skipping video"):
        VideoFolder(synthetic_root, "test", index=index)
    assert len(calls) == probed + 1


def test_an_index_file_the_package_did_not_write_is_never_replaced(synthetic_root, tmp_path):
    users = tmp_path / "index.json"
    users.write_text('{"mine": true}')
    with pytest.raises(Exception, match="not written by delta_keras|refus"):
        VideoFolder(synthetic_root, "test", index=users)
    assert users.read_text() == '{"mine": true}'


def test_videos_per_class_is_a_fixed_stratified_sample(synthetic_root):
    folder = VideoFolder(synthetic_root, "test")
    elements = take(folder.dataset(frames=4, image_size=16, with_video_id=True, videos_per_class=1))
    labels = [int(label) for _, label, _ in elements]
    assert sorted(labels) == sorted(set(v.label for v in folder.videos))  # one video of every class
    first_of_class = {}
    for index, video in enumerate(folder.videos):
        first_of_class.setdefault(video.label, index)
    assert sorted(int(v) for _, _, v in elements) == sorted(first_of_class.values())
