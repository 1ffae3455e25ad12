"""A user's own Keras model trained with the package's protocol, and the one-line errors for a model that cannot be."""
import numpy as np
import pytest

from mi_defense.config import TrainConfig
from mi_defense.errors import UserError
from mi_defense.tfenv import tf
from mi_defense.training.evaluate import accuracy
from mi_defense.training.loop import train_model


def data(n=60):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    x = (rng.standard_normal((n, 6, 6, 1)) + y[:, None, None, None]).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[y] - 1 / 3, y


def small(out=3):
    return tf.keras.Sequential([tf.keras.layers.Flatten(input_shape=(6, 6, 1)),
                                tf.keras.layers.Dense(16, activation="relu"), tf.keras.layers.Dense(out)])


def test_a_users_keras_model_trains_with_the_protocol():
    x, t, y = data()
    model = small()
    trained = train_model(x, t, 3, TrainConfig(steps=400, warmup=20, augment="none", lr=3e-3), model=model)
    assert trained is model and trained.train_steps == 400 and accuracy(trained, x, y) > 0.8  # chance: 1/3


def test_models_that_cannot_be_trained_are_one_line_errors():
    x, t, _ = data()
    for bad, msg in ((object(), "expected a tf.keras.Model"),
                     (small(out=5), r"output has shape \(1, 5\), expected \(batch, 3\)")):
        with pytest.raises(UserError, match=msg):
            train_model(x, t, 3, TrainConfig(steps=5), model=bad)
    wrong_input = tf.keras.Sequential([tf.keras.layers.Dense(3, input_shape=(7,))])
    with pytest.raises(UserError, match=r"does not take inputs of shape \(6, 6, 1\)"):
        train_model(x, t, 3, TrainConfig(steps=5), model=wrong_input)
