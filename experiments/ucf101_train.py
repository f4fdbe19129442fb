"""Train a video classifier that is sparse in time (or its dense baseline) and report what it saves.

    python experiments/ucf101_train.py --sparsity delta --epochs 5 --logdir runs/delta
    python experiments/ucf101_train.py --dataset ucf101 --data-dir /data/ucf101 --backbone mobilenet \\
        --weights imagenet --frames 16 --image-size 112 --sparsity delta --init-from runs/dense

The run folder (--logdir) holds TensorBoard events, a checkpoint per epoch, config.json and results.json;
continue a killed run with the same command and --resume. All logic lives in `delta_keras.train`.
"""

from __future__ import annotations

import argparse
import sys

from delta_keras.train import ConfigError, add_config_arguments, check_run, config_from_args, summary_table, train


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    try:
        check_run(config)
    except ConfigError as error:
        parser.error(str(error))
    results = train(config, command_line=[sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    if results:
        print("\n" + summary_table(results))
        print(f"\nrun folder: {config.logdir}    view it: tensorboard --logdir {config.logdir}")
    return results


if __name__ == "__main__":
    main()
