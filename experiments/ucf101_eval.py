"""Evaluate a checkpoint as the training script evaluates a finished run: `delta-keras-eval`.

    python experiments/ucf101_eval.py runs/delta --eval-clips 10

The same as the installed `delta-keras-eval` command; all logic lives in `delta_keras.cli` and
`delta_keras.train`. ``main(argv)`` returns the results.
"""

import sys

from delta_keras.cli import eval_main
from delta_keras.cli import run_eval as main

if __name__ == "__main__":
    sys.exit(eval_main())
