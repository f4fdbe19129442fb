"""A streaming delta runtime: frame-by-frame inference that multiplies only what changed (TensorFlow only).

- `DeltaRuntime` (delta_runtime.py): runs a clip model one frame at a time, exactly, with MAC layers
  updated from their input changes and reporting the MACs it counted and executed;
- kernels.py: the delta updates of one layer (element-sparse convolution, gathered dense) with their dense fallback;
- runs.py: convolutions one after another brought up to date in one call a frame; calibration.py: their break-evens
  (`DeltaRuntime.calibrate`) measured inside the run on the machine that streams, kept in a file
  (`save_break_evens`, `load_break_evens`);
- `streaming_threads` (threads.py): the process's thread settings the runtime streams fastest with; `machine_summary`:
  the CPU a timing comes from.
"""

from delta_keras.runtime.calibration import MeasuredBreakEven, load_break_evens, save_break_evens
from delta_keras.runtime.delta_runtime import DeltaRuntime
from delta_keras.runtime.threads import machine_summary, streaming_threads

__all__ = ["DeltaRuntime", "MeasuredBreakEven", "load_break_evens", "machine_summary", "save_break_evens",
           "streaming_threads"]
