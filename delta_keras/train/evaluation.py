"""Evaluation of a clip classifier: clip- and video-level accuracy, layer densities, MAC report."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from delta_keras.callbacks import MAC_POLICIES, mac_summary
from delta_keras.models.walk import read_statistics, reset_statistics


def summarize_densities(layers: dict[str, dict]) -> dict[str, float]:
    """Neuron-weighted means of the per-layer densities (what a frame of the whole model is like)."""
    neurons = sum(layer["neurons_per_frame"] for layer in layers.values())
    if not neurons:
        return {}

    def mean(key):
        return sum(layer[key] * layer["neurons_per_frame"] for layer in layers.values()) / neurons

    return {key: mean(key) for key in ("delta_density", "delta_density_first_charged", "activation_density")}


def _scores_function(model: keras.Model):
    """Softmax scores of a batch of clips (TensorFlow tensors from tf.data) on the model's backend.

    A plain call, not ``model.predict``: it runs on one device whatever strategy built the model. Traced
    on TensorFlow; another backend gets the clips as NumPy and runs the model eagerly.
    """

    def scores(clips):
        return keras.ops.softmax(keras.ops.cast(model(clips, training=False), "float32"))

    if keras.backend.backend() == "tensorflow":
        return tf.function(scores, reduce_retracing=True)  # clips of many lengths (whole videos) trace once or twice
    return lambda clips: scores(clips.numpy())


def evaluate_clips(model: keras.Model, dataset: tf.data.Dataset) -> dict:
    """Clip- and video-level accuracy and the sparsity layers' densities over ``dataset``.

    Video level: the softmax scores of all clips of a video (several evenly spread clips, see
    `delta_keras.train.builders.evaluation_dataset`) are averaged, and the video is right when the
    average's argmax is its label.

    Args:
        model: a clip classifier returning logits.
        dataset: batches of ``(clip, label, video_id)``.

    Returns:
        ``clip_accuracy``, ``video_accuracy``, ``clips``, ``videos``, ``layers`` (each sparsity layer's
        statistics over the evaluation) and ``density`` (their neuron-weighted means).
    """
    scores_of = _scores_function(model)
    reset_statistics(model)
    scores, labels, videos = [], [], []
    for clips, label, video_id in dataset:
        scores.append(keras.ops.convert_to_numpy(scores_of(clips)))
        labels.append(label.numpy())
        videos.append(video_id.numpy())
    if not scores:
        raise ValueError("the evaluation dataset is empty")
    scores, labels, videos = np.concatenate(scores), np.concatenate(labels), np.concatenate(videos)
    ids, index = np.unique(videos, return_inverse=True)
    video_scores = np.zeros((len(ids), scores.shape[1]))
    np.add.at(video_scores, index, scores)
    video_labels = np.zeros(len(ids), labels.dtype)
    video_labels[index] = labels
    layers = read_statistics(model)
    return {
        "clip_accuracy": float(np.mean(scores.argmax(1) == labels)),
        "video_accuracy": float(np.mean(video_scores.argmax(1) == video_labels)),
        "clips": int(len(labels)),
        "classes": int(scores.shape[1]),
        "videos": int(len(ids)),
        "layers": layers,
        "density": summarize_densities(layers),
    }


def mac_report(model: keras.Model, clips) -> dict:
    """The simulator's report on ``clips``, JSON-ready, with a ``summary``: MAC fraction and reduction per
    policy, and the neuron-weighted densities of the MAC layers' inputs (``input_delta_density``: frames
    t >= 1; ``input_activation_density``)."""
    from delta_keras import sim  # noqa: PLC0415

    report = sim.count_macs(model, clips)
    details = {**report.to_dict(), "dead_layers": report.dead_layers()}
    # What feeds the MAC layers, weighted by neurons: defined for dense and sparse models alike.
    sizes = [layer["input_size"] for layer in details["layers"]]
    summary = mac_summary(report, MAC_POLICIES)
    for key in ("delta_density", "activation_density"):
        summary[f"input_{key}"] = sum(l[key] * n for l, n in zip(details["layers"], sizes)) / max(sum(sizes), 1)
    return {"summary": summary, **details}


# A sparsity layer whose activations are nonzero this rarely passes almost nothing on: a dead network.
DEAD_DENSITY = 0.01


def result_warnings(results: dict) -> list[str]:
    """What makes a run's MAC reductions meaningless: accuracy at chance, or a network (nearly) dead at
    inference, which skips MACs trivially. Empty when nothing is wrong."""
    evaluation, macs = results["evaluation"], results["macs"]
    found = []
    classes = evaluation.get("classes")
    if classes and evaluation["video_accuracy"] <= 1.5 / classes:
        found.append(f"video accuracy {evaluation['video_accuracy']:.3f} is no better than chance (1/{classes} = "
                     f"{1 / classes:.3f}): the MAC reductions of a model that does not work say nothing")
    density = evaluation["density"]
    if density and density["activation_density"] < DEAD_DENSITY:
        found.append(f"the sparsity layers' activations are nonzero {density['activation_density']:.4f} of the time "
                     f"(< {DEAD_DENSITY}): the network is nearly dead at inference, so it skips MACs trivially")
    if macs.get("dead_layers"):
        found.append(f"MAC layers with no nonzero input on any frame: {', '.join(macs['dead_layers'])}")
    return found
