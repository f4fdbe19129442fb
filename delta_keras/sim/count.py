"""`count_macs`: exact per-layer, per-frame MAC counts of a clip model under each skipping policy."""

from __future__ import annotations

import dataclasses
import hashlib
import weakref
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from delta_keras import registry
from delta_keras.layers import density
from delta_keras.models import graph as graph_lib
from delta_keras.frames import geometry
from delta_keras.frames.plan import check_clips, node_keys  # noqa: F401 (count_macs's names, kept importable)
from delta_keras.sim.report import LayerCount, MacReport, StageCount

POLICIES = ("dense", "zero_activation", "zero_delta", "zero_weight", "both")



@dataclasses.dataclass
class _Site:
    """One call of a MAC layer in the graph (a shared layer has one site per call)."""

    key: str
    layer: keras.layers.Layer
    time_distributed: bool
    stages: list | None = None
    layout: str = ""


class _Probe:
    """A model from the clip input to the input of every MAC layer and the output of every activation.

    Nested models are probed recursively: the outer probe returns a nested model's input, and the
    nested model's own probe runs on it (folded to frames when it is wrapped in `TimeDistributed`).
    """

    def __init__(self, model, prefix: str = "", uncounted: dict | None = None):
        self.uncounted = {} if uncounted is None else uncounted
        self.sites, self.activations = [], []
        self._outputs = []  # (what, item) in the order of the probe model's outputs
        tensors = []
        for node, key in node_keys(graph_lib.layer_calls(model), prefix):
            layer, time_distributed = registry.unwrap(node.operation)
            if isinstance(layer, keras.Model):
                if len(node.input_tensors) != 1:
                    self.uncounted[key] = "nested model with several inputs"
                    continue
                self._outputs.append(("nested", (_Probe(layer, key + "/", self.uncounted), time_distributed)))
                tensors.append(node.input_tensors[0])
                continue
            if geometry.is_mac_layer(layer):
                site = _Site(key, layer, time_distributed)
                self.sites.append(site)
                self._outputs.append(("site", site.key))
                tensors.append(node.input_tensors[0])
            if registry.counts_as_activation(layer):
                self.activations.append(key + "/output")
                self._outputs.append(("activation", key + "/output"))
                tensors.append(node.output_tensors[0])
        graph = graph_lib.functional_graph(model)
        self.model = keras.Model(graph.inputs, tensors) if tensors else None
        self._forward = None if self.model is None else lambda inputs: self.model(inputs, training=False)

    def compile(self) -> None:
        """Runs the probe model as one compiled TensorFlow function from now on (traced on the next call): for a
        probe used again, since tracing a large model costs more than running it once."""
        if self.model is not None and keras.backend.backend() == "tensorflow":
            self._forward = tf.function(self._forward, autograph=False)

    def __call__(self, inputs) -> dict:
        """Returns ``{key: tensor}``: each site's input and each activation's output, nested ones included."""
        if self.model is None:
            return {}
        values = self._forward(inputs)
        values = values if isinstance(values, (list, tuple)) else [values]
        out = {}
        for (what, item), value in zip(self._outputs, values):
            if what == "nested":
                probe, time_distributed = item
                out.update(probe(tf.reshape(value, (-1, *value.shape[2:])) if time_distributed else value))
            else:
                out[item] = value
        return out

    def all_sites(self) -> list:
        """The MAC-layer sites of this model and of the models nested in it."""
        nested = [site for what, item in self._outputs if what == "nested" for site in item[0].all_sites()]
        return self.sites + nested

    def all_activations(self) -> list:
        nested = [key for what, item in self._outputs if what == "nested" for key in item[0].all_activations()]
        return self.activations + nested


def _layout(site: _Site, shape: tuple, samples: int, frames: int) -> str:
    """Where time is in a MAC layer's input of ``shape``: ``"time"`` (axis 1), ``"folded"`` (into the batch
    axis, row-major) or ``"sample"`` (consumed upstream or by the layer itself: one frame per sample)."""
    layer = site.layer
    kind = registry.layer_kind(layer)
    if site.time_distributed or (kind is not None and kind.recurrent):
        return "time"
    if shape[0] == samples * frames:
        return "folded"
    if kind is not None and kind.last_axis and len(shape) >= 3 and shape[1] == frames:
        return "time"
    return "sample"


def _as_sequence(x, layout: str, samples: int):
    """Views a layer input as ``(samples, frames_of_layer, *frame)``."""
    if layout == "folded":
        return tf.reshape(x, (samples, -1, *x.shape[1:]))
    return x if layout == "time" else x[:, None]


def _prepare(probe: _Probe, values: dict, samples: int, frames: int) -> None:
    """Sets each site's layout and stages from the shapes of the probe's outputs."""
    shapes = {key: tuple(t.shape) for key, t in values.items()}
    for site in probe.all_sites():
        if site.key in probe.uncounted:
            continue
        site.layout = _layout(site, shapes[site.key], samples, frames)
        frame_shape = shapes[site.key][2 if site.layout == "time" else 1:]
        try:
            site.stages = geometry.stages(site.layer, frame_shape)
            for stage in site.stages:  # computed eagerly now, captured as constants when counting
                stage.fan_out_rows(False), stage.fan_out_rows(True)
        except geometry.UncountableLayer as error:
            probe.uncounted[site.key] = str(error)


def _count_stage(sequence, stage: geometry.Stage, granularity: geometry.Granularity) -> dict:
    nonzero = tf.cast(tf.not_equal(sequence, 0), "float32")
    # Delta inference charges frame 0 for its nonzero activations, later frames for their changes.
    changes = tf.concat([sequence[:, :1], density.temporal_deltas(sequence)], axis=1)
    changed = tf.cast(tf.not_equal(changes, 0), "float32")
    blocks = granularity.blocks(len(stage.frame_shape), stage.channel_axis)
    charged, charged_changes = geometry.block_any(nonzero, blocks), geometry.block_any(changed, blocks)
    per_clip = {
        "zero_activation": geometry.frame_counts(charged, stage.fan_out_rows(False)),
        "both": geometry.frame_counts(charged, stage.fan_out_rows(True)),
        "zero_delta": geometry.frame_counts(charged_changes, stage.fan_out_rows(False)),
        "nonzero": geometry.frame_counts(nonzero),
        "changed": geometry.frame_counts(changed),
    }
    return {
        # Per frame (summed over clips), and per clip (summed over frames) under the ``<policy>@clip`` keys.
        **{key: tf.reduce_sum(value, axis=0) for key, value in per_clip.items()},
        **{f"{policy}{_PER_CLIP}": tf.reduce_sum(per_clip[policy], axis=1) for policy in _PER_CLIP_POLICIES},
        # NeuroBench counts a layer whose inputs are all in {-1, 0, 1} as accumulates (ACs).
        "non_ternary": tf.math.count_nonzero((sequence != 0) & (tf.abs(sequence) != 1), dtype="float64"),
    }


def _count_batch(probe: _Probe, values: dict, samples: int, granularity: geometry.Granularity) -> dict:
    """The counts of one batch from the probe's outputs (traced once per batch shape)."""
    results = {}
    for site in probe.all_sites():
        if site.key not in probe.uncounted:
            sequence = tf.cast(_as_sequence(values[site.key], site.layout, samples), "float32")
            results[site.key] = [
                _count_stage(sequence if stage.source is None else stage.source(sequence), stage, granularity)
                for stage in site.stages
            ]
    for key in probe.all_activations():
        results[key] = {"nonzero": tf.math.count_nonzero(values[key], dtype="float64"),
                        "size": tf.cast(tf.size(values[key], out_type=tf.int64), "float64")}
    return results


# Policies whose MACs are also kept per clip (the others are the same for every clip), and their key suffix.
_PER_CLIP_POLICIES = ("zero_activation", "both", "zero_delta")
_PER_CLIP = "@clip"


def _merge(totals: dict | None, batch: dict) -> dict:
    """Adds a batch's counts to the totals; per-clip counts are appended (one entry a clip)."""
    if totals is None:
        return batch

    def merge(total, new, key: str = ""):
        if isinstance(total, dict):
            return {k: merge(total[k], new[k], k) for k in total}
        if isinstance(total, list):
            return [merge(t, n, key) for t, n in zip(total, new)]
        return np.concatenate([total, new]) if key.endswith(_PER_CLIP) else np.add(total, new)

    return merge(totals, batch)


@dataclasses.dataclass
class _Counter:
    """A model's probe and its traced counting function, prepared (stages, fan-outs) on a first batch."""

    probe: _Probe
    count: Callable
    prepared: bool = False
    compiled: bool = False


# model -> (signature, _Counter) of its last count_macs call. Tracing the counting of a large model costs
# several forward passes, and fan-out maps one gradient per layer: repeated calls (a benchmark, a
# callback every epoch) reuse them. Weak keys: the cache dies with the model.
_COUNTERS = weakref.WeakKeyDictionary()


def _kernel_zeros_digest(model) -> str:
    """A digest of where the model's kernels are zero: all the counts depend on from its weights."""
    digest = hashlib.blake2b(digest_size=16)
    for weight in model.weights:
        if "kernel" in weight.path.rsplit("/", 1)[-1]:
            digest.update(np.packbits(keras.ops.convert_to_numpy(weight) != 0).tobytes())
    return digest.hexdigest()


def _counter(model, granularity: geometry.Granularity, batch_shape: tuple) -> _Counter:
    """The cached `_Counter` of ``model`` for this granularity, batch shape and kernel zeros, or a new one."""
    signature = (str(granularity), batch_shape, _kernel_zeros_digest(model))
    cached = _COUNTERS.get(model)
    if cached is not None and cached[0] == signature:
        return cached[1]
    probe = _Probe(model)

    def count(values, n):
        return _count_batch(probe, values, n, granularity)

    # The model runs eagerly the first time (tracing a large model costs more than running it) and compiled from
    # the second call on (`_Probe.compile`). The counting is traced, only on TensorFlow: it mixes TensorFlow ops
    # with the layers' own (backend) ops, which another backend runs eagerly on the TensorFlow tensors' values.
    if keras.backend.backend() == "tensorflow":
        count = tf.function(count, autograph=False)
    counter = _Counter(probe, count)
    _COUNTERS[model] = (signature, counter)
    return counter


def _as_tensorflow(value):
    """A TensorFlow tensor of a probed value (another backend's tensors reach the counting ops as NumPy)."""
    return value if tf.is_tensor(value) else tf.constant(keras.ops.convert_to_numpy(value))


def count_macs(
    model: keras.Model,
    clips,
    policies: tuple[str, ...] = POLICIES,
    granularity: str | geometry.Granularity = "element",
    batch_size: int | None = None,
    progress: bool = False,
) -> MacReport:
    """Counts, exactly, the MACs every layer of a clip model performs on every frame under skipping policies.

    Policies: ``"dense"`` (every MAC, padding taps included: the published convention);
    ``"zero_activation"`` (skip a MAC whose activation is zero); ``"zero_delta"`` (delta inference:
    frame 0 charged for its nonzero activations, each later frame for the nonzero entries of its input's
    change); ``"zero_weight"`` (skip a MAC whose weight is zero); ``"both"`` (skip zero activations and
    zero weights: NeuroBench's effective synaptic operations).

    Counts use the layer's own geometry (padding, stride, dilation, groups, depthwise multiplier): each
    nonzero entry is charged its exact fan-out (see `delta_keras.frames.geometry`). Counted layers: Conv1D/2D/3D,
    DepthwiseConv1D/2D, SeparableConv1D/2D, Dense, LSTM/GRU/SimpleRNN (input and recurrent products as two
    stages), wrapped in `TimeDistributed` or on time folded into batch ``(N*T, ...)``, in nested models too.
    Any other layer holding a kernel is listed in ``report.uncounted`` with the reason.

    Args:
        model: a clip model (functional or Sequential), input ``(batch, frames, ...)``.
        clips: ``(N, T, ...)`` clips (or one clip ``(T, ...)``), in the model's input format.
        policies: the policies reported (all by default).
        granularity: what the hardware skips: ``"element"`` (default), ``"vector:N"`` (N channels at one
            position, skipped only if all are zero), ``"tile:H[xW]"`` (spatial tile) or a `Granularity`.
        batch_size: clips per pass (default: all at once).
        progress: show a progress bar over the passes.

    Returns:
        A `MacReport`.

    Example:

    >>> import numpy as np, keras
    >>> from delta_keras.sim import count_macs
    >>> clips = keras.Input((4, 12, 12, 1))
    >>> conv = keras.layers.TimeDistributed(keras.layers.Conv2D(1, 3, use_bias=False))
    >>> report = count_macs(keras.Model(clips, conv(clips)), np.ones((1, 4, 12, 12, 1)))
    >>> int(report.total("zero_activation"))
    3600
    """
    unknown = set(policies) - set(POLICIES)
    if unknown:
        raise ValueError(f"unknown policies {sorted(unknown)}; choose from {POLICIES}")
    clips = check_clips(model, clips)
    granularity = geometry.Granularity.parse(granularity)
    batch_size = batch_size or len(clips)
    counter = _counter(model, granularity, clips[:batch_size].shape)
    probe = counter.probe
    if counter.prepared and not counter.compiled:  # counted again: worth compiling the forward pass
        probe.compile()
        counter.compiled = True
    totals = None
    bar = keras.utils.Progbar(len(clips), unit_name="clip") if progress else None
    for start in range(0, len(clips), batch_size):
        inputs = clips[start:start + batch_size]
        values = tf.nest.map_structure(_as_tensorflow, probe(tf.constant(inputs)))
        if not counter.prepared:
            _prepare(probe, values, len(inputs), clips.shape[1])
            counter.prepared = True
        totals = _merge(totals, tf.nest.map_structure(lambda t: t.numpy(), counter.count(values, len(inputs))))
        if bar is not None:
            bar.add(len(clips[start:start + batch_size]))
    sites = {site.key: site for site in probe.all_sites()}
    layers = [_layer_count(sites[key], counts, len(clips)) for key, counts in totals.items() if key in sites]
    activations = [v for key, v in totals.items() if key not in sites]
    counted = [count for key, counts in totals.items() if key in sites for count in counts]  # per stage
    clip_macs = {policy: sum((count[f"{policy}{_PER_CLIP}"] for count in counted), np.zeros(len(clips)))
                 for policy in _PER_CLIP_POLICIES}
    for policy in ("dense", "zero_weight"):  # the same for every clip
        clip_macs[policy] = np.full(len(clips), sum(layer.macs(policy).sum() for layer in layers) / len(clips))
    return MacReport(
        layers=layers,
        uncounted=dict(probe.uncounted),
        policies=tuple(p for p in POLICIES if p in policies),
        granularity=str(granularity),
        samples=len(clips),
        frames=clips.shape[1],
        activation_nonzero=float(sum(a["nonzero"] for a in activations)),
        activation_size=float(sum(a["size"] for a in activations)),
        clip_macs={p: clip_macs[p] for p in POLICIES if p in policies},
    )


def _layer_count(site: _Site, counts: list, samples: int) -> LayerCount:
    kind = type(site.layer).__name__
    stages = []
    for stage, c in zip(site.stages, counts):
        frames = len(c["nonzero"])
        macs = {p: np.asarray(c[p], "int64") for p in ("zero_activation", "zero_delta", "both")}
        macs["dense"] = np.full(frames, stage.dense_macs() * samples, "int64")
        macs["zero_weight"] = np.full(frames, stage.weight_macs() * samples, "int64")
        stages.append(StageCount(
            name=stage.name,
            macs=macs,
            input_nonzero=np.asarray(c["nonzero"], "int64"),
            input_changed=np.asarray(c["changed"], "int64"),
            input_size=int(np.prod(stage.frame_shape)),
            output_size=int(np.prod(stage.output_shape)),
            weights=int(stage.kernel.size),
            all_ones_macs=int(stage.fan_out(False).numpy().sum()),
            ternary=not c["non_ternary"],
            samples=samples,
        ))
    return LayerCount(
        name=site.key,
        kind=f"TimeDistributed({kind})" if site.time_distributed else kind,
        layout=site.layout,
        samples=samples,
        stages=stages,
    )
