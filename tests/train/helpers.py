"""What the train/ tests share: a tiny run configuration and a tiny model."""

import keras

from delta_keras.train import TrainConfig

TINY = TrainConfig(frames=4, image_size=16, synthetic_videos=8, synthetic_test_videos=4, batch_size=4)


def tiny_model() -> keras.Model:
    clips = keras.Input((4, 3))
    x = keras.layers.Dense(5, activation="relu", name="hidden")(clips)
    return keras.Model(clips, keras.layers.Dense(2, name="out")(x))
