"""Command line: ``python -m delta_keras.sim MODEL.keras VIDEO [VIDEO ...] --frames 16 --json out.json``.

Decodes a clip of each video (through the public `delta_keras.data` API), resizes it to the model's
input size, counts the MACs of every layer under every policy and prints the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import keras
import numpy as np

from delta_keras.sim.count import POLICIES, count_macs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m delta_keras.sim", description=__doc__.split("\n\n")[1])
    parser.add_argument("model", help="a saved clip model (.keras)")
    parser.add_argument("videos", nargs="+", help="video files (anything OpenCV decodes)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    parser.add_argument("--start", type=int, default=0, help="first frame of each clip (default 0)")
    parser.add_argument("--granularity", default="element", help="element, vector:N or tile:H[xW]")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--json", help="write the full report as JSON")
    parser.add_argument("--csv", help="write the table as CSV")
    parser.add_argument("--plot", help="write the figure (PNG, PDF, ...)")
    parser.add_argument("--tensorboard", help="write TensorBoard scalars to this log directory")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing --csv/--plot files (a --json file is replaced only if this tool wrote it)")
    args = parser.parse_args(argv)
    for flag in (args.model, *args.videos):
        if not Path(flag).is_file():
            parser.error(f"{flag}: no such file")
    if not args.overwrite:
        for flag, path in (("--csv", args.csv), ("--plot", args.plot)):
            if path and Path(path).exists():
                parser.error(f"{flag} {path}: exists; pass --overwrite to replace it")

    model = keras.models.load_model(args.model, compile=False)
    height, width = model.inputs[0].shape[2:4]
    frames = model.inputs[0].shape[1] or args.frames
    from delta_keras.data import read_clip  # imported here: the simulator itself never needs the data package

    clips = np.stack([read_clip(v, frames, (height, width), args.start) for v in args.videos])
    report = count_macs(model, clips, args.policies, args.granularity, batch_size=1, progress=True)
    print(report.table())
    for key, value in report.neurobench().items():
        print(f"NeuroBench {key}: {value:.6g}")
    for path, write in ((args.json, report.to_json), (args.csv, report.to_csv), (args.plot, report.plot),
                        (args.tensorboard, report.write_tensorboard)):
        if path:
            write(path)
    return 0


if __name__ == "__main__":
    from delta_keras.cli import sim_main  # noqa: PLC0415 (filters TensorFlow's start-up noise first)

    sys.exit(sim_main(sys.argv[1:]))
