"""`Distiller`: label-free refinement of a sparse student against its frozen dense teacher."""

from __future__ import annotations

import keras
from keras import ops

DISTILLATION_LOSSES = ("mse", "bce", "kl")


@keras.saving.register_keras_serializable(package="delta_keras")
class Distiller(keras.Model):
    """A sparse student learns to reproduce a frozen dense teacher's outputs, with no labels.

    As in the keras.io knowledge-distillation example, but backend-neutral (`compute_loss` only) and for
    any output structure: ``fit`` takes batches of clips alone (or ``(clips, labels)`` when
    ``label_weight`` is set), the teacher's outputs on the same clips are the targets, and the student's
    own sparsity losses are added. ``fit``'s logs show ``distillation_loss``, ``sparsity_loss`` (the
    students' added losses) and, with labels, ``label_loss``.

    Saving a `Distiller` saves both models, the optimizer and the distillation settings: a training
    checkpoint that `keras.models.load_model` restores ready to train on. Deploy ``distiller.student``.

    Args:
        student: the model being refined, e.g. `delta_keras.sparsify(image_model, ...)`.
        teacher: the dense model with the same outputs, e.g. the image model per frame
            (`delta_keras.models.apply_per_frame` with ``method=None``); frozen.

    Example:

    >>> student = delta_keras.sparsify(hed, frames=8, step_init=8.0, sparsity_weight=1e-4)   # doctest: +SKIP
    >>> teacher = keras.Model(clips, apply_per_frame(hed, clips, method=None))               # doctest: +SKIP
    >>> distiller = Distiller(student, teacher)                                              # doctest: +SKIP
    >>> distiller.compile(keras.optimizers.Adam(1e-5), distillation_loss="bce")              # doctest: +SKIP
    >>> distiller.fit(unlabelled_clips, epochs=3)                                            # doctest: +SKIP
    >>> distiller.student.save("refined.keras")   # the student is what is deployed        # doctest: +SKIP
    """

    def __init__(self, student: keras.Model, teacher: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        # No weights of its own: built when its models are (so `load_weights` works before any call).
        self.built = student.built and teacher.built
        self._trackers = {name: keras.metrics.Mean(name=name)
                          for name in ("distillation_loss", "sparsity_loss", "label_loss")}

    def get_config(self) -> dict:
        return {"name": self.name, "student": keras.saving.serialize_keras_object(self.student),
                "teacher": keras.saving.serialize_keras_object(self.teacher)}

    @classmethod
    def from_config(cls, config: dict):
        models = {key: keras.saving.deserialize_keras_object(config[key]) for key in ("student", "teacher")}
        return cls(**models, name=config.get("name"))

    def compile(self, optimizer="adam", distillation_loss: str | keras.losses.Loss = "mse", temperature: float = 1.0,
                label_loss: keras.losses.Loss | None = None, label_weight: float = 0.0, **kwargs):
        """Args:
            optimizer: any Keras optimizer.
            distillation_loss: ``"mse"`` (dense maps, features), ``"bce"`` (probability maps, e.g. edges),
                ``"kl"`` (logits: KL between the softmaxes at ``temperature``, scaled by its square) or a
                `keras.losses.Loss` called as ``loss(teacher_output, student_output)``.
            temperature: softening of ``"kl"``.
            label_loss: with ``label_weight`` > 0, a loss on labels the dataset also yields.
            label_weight: weight of the label loss (0: labels, if any, are ignored).
            **kwargs: `keras.Model.compile` arguments.
        """
        if isinstance(distillation_loss, str) and distillation_loss not in DISTILLATION_LOSSES:
            raise ValueError(f"distillation_loss must be one of {DISTILLATION_LOSSES} or a keras Loss, "
                             f"got {distillation_loss!r}")
        if temperature <= 0 or label_weight < 0:
            raise ValueError(f"need temperature > 0 and label_weight >= 0, got {temperature}, {label_weight}")
        if label_weight and label_loss is None:
            raise ValueError("label_weight > 0 needs a label_loss")
        super().compile(optimizer=optimizer, **kwargs)
        self.distillation_loss = distillation_loss
        self.temperature = float(temperature)
        self.label_loss = label_loss
        self.label_weight = float(label_weight)

    def get_compile_config(self) -> dict:
        serialize = keras.saving.serialize_keras_object
        return {"optimizer": serialize(self.optimizer), "distillation_loss": serialize(self.distillation_loss),
                "temperature": self.temperature, "label_loss": serialize(self.label_loss),
                "label_weight": self.label_weight}

    def compile_from_config(self, config: dict) -> None:
        self.compile(**{key: keras.saving.deserialize_keras_object(value) for key, value in config.items()})
        if self.built:
            self.optimizer.build(self.trainable_variables)  # so the saved optimizer state has a home

    @property
    def metrics(self):
        # Keras lists the trackers itself (tracked attributes). Without a label weight there is no label loss
        # to log (not a misleading 0.0).
        hidden = None if getattr(self, "label_weight", 0) else self._trackers["label_loss"]
        return [m for m in super().metrics if m is not hidden]

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def _distance(self, target, output):
        target, output = ops.cast(target, "float32"), ops.cast(output, "float32")
        if not isinstance(self.distillation_loss, str):
            return self.distillation_loss(target, output)
        if self.distillation_loss == "mse":
            return ops.mean(ops.square(output - target))
        if self.distillation_loss == "bce":
            return ops.mean(keras.losses.binary_crossentropy(target, ops.clip(output, 1e-7, 1 - 1e-7)))
        t = self.temperature
        soft_target = ops.softmax(target / t, axis=-1)
        return t * t * ops.mean(ops.sum(soft_target * (ops.log_softmax(target / t, axis=-1)
                                                       - ops.log_softmax(output / t, axis=-1)), axis=-1))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        targets = self.teacher(x, training=False)
        if y_pred is None:
            y_pred = self.student(x, training=training)
        distances = [self._distance(t, o) for t, o in zip(keras.tree.flatten(targets), keras.tree.flatten(y_pred))]
        distillation = ops.sum(ops.stack(distances)) if len(distances) > 1 else distances[0]
        sparsity = ops.sum(ops.stack([ops.cast(loss, "float32") for loss in self.losses])) if self.losses else 0.0
        total = distillation + sparsity
        self._trackers["distillation_loss"].update_state(distillation)
        self._trackers["sparsity_loss"].update_state(sparsity)
        if self.label_weight and y is not None:
            labelled = self.label_loss(y, y_pred)
            self._trackers["label_loss"].update_state(labelled)
            total = total + self.label_weight * labelled
        return total


def deployed_model(model: keras.Model) -> keras.Model:
    """The model a run deploys, measures and evaluates: a `Distiller`'s student (its teacher only trains it),
    any other model itself."""
    return model.student if isinstance(model, Distiller) else model
