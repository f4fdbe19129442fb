"""Evaluation on whole test videos: each video is one clip of all its frames (at the training stride).

Training evaluates a few fixed-length clips per video; a deployed delta network runs a video from its
first frame to its last, paying for frame 0 in full once. This is that measurement: every test video of
a file dataset (``ucf101``, ``folder``) read whole, accuracy from one pass of the model over it, MACs
counted by `delta_keras.sim.count_macs` over every frame (frame 0 charged), videos of equal length
counted together and the counts summed (`merge_mac_reports`).
"""

from __future__ import annotations

import collections
import math

import numpy as np
import tensorflow as tf

from delta_keras.data import read_clip
from delta_keras.layers import density
from delta_keras.study.summary import padded_sum
from delta_keras.train import TrainConfig, builders, evaluate_clips


def test_videos(config: TrainConfig) -> list[tuple[np.ndarray, int]]:
    """``(frames, label)`` of every usable test video of the config's dataset: uint8 ``(T, size, size, 3)``,
    every ``frame_stride``-th frame from the first, resized to cover the image size and centre-cropped (as the
    evaluation clips are)."""
    source = builders.file_source(config, "test")
    return [(read_clip(video.path, math.ceil(video.num_frames / config.frame_stride), config.image_size,
                       stride=config.frame_stride, seek=source.seek).astype(np.uint8), video.label)
            for video in source.videos]


def _by_length(videos: list) -> dict[int, list[int]]:
    groups = collections.defaultdict(list)
    for index, (frames, _) in enumerate(videos):
        groups[len(frames)].append(index)
    return dict(sorted(groups.items()))


def merge_mac_reports(reports: list[dict], frame_counts: list[tuple[int, int]]) -> dict:
    """One report of `delta_keras.sim.MacReport.to_dict` form from reports on clips of different lengths.

    Totals and energies add up; per-frame arrays are summed frame by frame (index 0 is every clip's first
    frame, charged in full; index k sums the clips that have a frame k); densities are recomputed from the
    summed counts with the one definition (`delta_keras.layers.density.densities`).

    Args:
        reports: `MacReport.to_dict()` of each group, counted on the same model.
        frame_counts: ``(clips, frames per clip)`` of each group.
    """
    first = reports[0]
    clips = sum(samples for samples, _ in frame_counts)
    frames = sum(samples * length for samples, length in frame_counts)
    layers = []
    for index, layer in enumerate(first["layers"]):
        group = [report["layers"][index] for report in reports]
        nonzero = padded_sum([g["input_nonzero_per_frame"] for g in group]).tolist()
        changed = padded_sum([g["input_changed_per_frame"] for g in group]).tolist()
        size = layer["input_size"]
        layers.append({
            "name": layer["name"], "type": layer["type"], "layout": layer["layout"],
            **density.densities({"nonzero_activations": sum(nonzero), "activations": size * frames,
                                 "nonzero_deltas": sum(changed[1:]), "deltas": size * (frames - clips),
                                 "nonzero_first_frame": changed[0], "first_frame": size * clips}),
            "macs_per_frame": {p: padded_sum([g["macs_per_frame"][p] for g in group]).tolist()
                               for p in first["policies"]},
            "input_nonzero_per_frame": nonzero, "input_changed_per_frame": changed, "input_size": size,
        })
    return {
        "samples": clips,
        "frames": max(length for _, length in frame_counts),
        "frame_counts": [list(pair) for pair in frame_counts],
        "granularity": first["granularity"],
        "policies": first["policies"],
        "totals": {p: sum(report["totals"][p] for report in reports) for p in first["policies"]},
        "layers": layers,
        "uncounted": {k: v for report in reports for k, v in report["uncounted"].items()},
        "energy_pj": {p: sum(report["energy_pj"][p] for report in reports) for p in first["policies"]},
        "dead_layers": [layer["name"] for layer in layers if not any(layer["input_nonzero_per_frame"])],
    }


def evaluate_whole_clips(model, config: TrainConfig, videos: list | None = None, batch_size: int = 8) -> dict:
    """``evaluation`` (video accuracy: one clip per video, so clip and video accuracy agree; the sparsity layers'
    densities) and ``macs`` (summed over every frame of every video, frame 0 charged) of ``model`` on the
    whole test videos (`test_videos`, or those given)."""
    from delta_keras import sim  # noqa: PLC0415

    videos = test_videos(config) if videos is None else videos
    groups = _by_length(videos)
    datasets, reports, frame_counts = [], [], []
    for length, indices in groups.items():
        clips = np.stack([videos[i][0] for i in indices]).astype("float32")
        labels = np.array([videos[i][1] for i in indices], "int32")
        datasets.append(tf.data.Dataset.from_tensor_slices((clips, labels, np.array(indices, "int32")))
                        .batch(batch_size))
        reports.append(sim.count_macs(model, clips, batch_size=batch_size).to_dict())
        frame_counts.append((len(indices), length))
    dataset = datasets[0]
    for more in datasets[1:]:
        dataset = dataset.concatenate(more)
    return {"evaluation": evaluate_clips(model, dataset), "macs": merge_mac_reports(reports, frame_counts)}
