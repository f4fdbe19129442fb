"""The sparsity study: every method on the same backbone, data and budget; summary, plots, report.

>>> from delta_keras.study import StudyConfig, run_study, write_report
>>> from delta_keras.train import TrainConfig
>>> summary = run_study(StudyConfig(TrainConfig(backbone="tiny"), out="results/tiny"))  # doctest: +SKIP
>>> write_report(["results/tiny"], "docs/RESULTS.md")  # doctest: +SKIP

Methods (`delta_keras.study.methods.METHODS`): the dense baseline; post-hoc delta inference (the trained
baseline with fixed-step quantisers, `posthoc_delta_model`); the spatial L1 baseline; DeltaActivation
refined from the baseline and from scratch. Each trained run is a `delta_keras.train.train` run folder
under the study folder; MACs and densities come from `delta_keras.sim.count_macs`.
"""

from delta_keras.study.methods import METHODS, posthoc_delta_model
from delta_keras.study.report import write_report
from delta_keras.study.runner import ALL_METHODS, StudyConfig, real_clip_density, run_study
from delta_keras.study.summary import COLUMNS, best_points, read_summary, run_record, targets

__all__ = ["ALL_METHODS", "COLUMNS", "METHODS", "StudyConfig", "best_points",
           "posthoc_delta_model", "read_summary", "real_clip_density", "run_record", "run_study", "targets",
           "write_report"]
