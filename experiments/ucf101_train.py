"""Train a video classifier that is sparse in time (or its dense baseline): `delta-keras-train`.

    python experiments/ucf101_train.py --sparsity delta --epochs 5 --logdir runs/delta

The same as the installed `delta-keras-train` command; all logic lives in `delta_keras.cli` and
`delta_keras.train`. ``main(argv)`` returns the run's results.
"""

import sys

from delta_keras.cli import run_train as main
from delta_keras.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
