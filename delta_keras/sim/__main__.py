"""``python -m delta_keras.sim MODEL.keras VIDEO [VIDEO ...]``: the ``delta-keras-sim`` command (`delta_keras.cli`)."""

import sys

from delta_keras.cli import sim_main

if __name__ == "__main__":
    sys.exit(sim_main(sys.argv[1:]))
