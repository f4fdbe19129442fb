"""The old path of `delta_keras.train.run_folder` (the run folder: checkpoints, loading, resume callbacks)."""

from delta_keras.train.run_folder import (Checkpoint, CorruptCheckpointError, EpochCheckpoint,  # noqa: F401
                                          NonFiniteLossError, RunFolder, StopOnNonFiniteLoss, load_checkpoint,
                                          load_model_from)
