"""A Keras model of the user's on a digits release: plain model.fit against DistilledSet.fit
(the protocol the set was made for) against the package's evaluate.

Usage: python reports/keras-fit/run.py (output: reports/keras-fit/output.txt)."""
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits
import mi_defense
from mi_defense.training.evaluate import evaluate_set
from mi_defense.config import TrainConfig
d = load_digits()
x = (d.images[..., None]*255/16).round().astype(np.uint8)
y = d.target
rel = mi_defense.distill(x[:1200], y[:1200], ipc=10, steps=300)
xt = rel.transform(x[1200:])
yt = y[1200:]
def cnn():
    tf.keras.utils.set_random_seed(0)
    return tf.keras.Sequential([tf.keras.layers.Conv2D(32, 3, padding="same", activation="relu",
                                                       input_shape=rel.x.shape[1:]),
                                tf.keras.layers.Flatten(), tf.keras.layers.Dense(rel.y.shape[1])])
m = cnn()
m.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="mse")
m.fit(rel.x, rel.y, epochs=300, batch_size=len(rel.x), verbose=0)
print("plain keras fit", np.mean(m.predict(xt, verbose=0).argmax(1) == yt), flush=True)
for s in range(3):
    m = cnn()
    tf.keras.utils.set_random_seed(s)
    rel.fit(m, seed=s)
    print("released.fit seed", s, np.mean(m.predict(xt, verbose=0).argmax(1) == yt), flush=True)
r = evaluate_set(rel.x, rel.y, xt, yt, 10, TrainConfig(width=32, depth=2), models=3, progress=False)
print("evaluate (package ConvNet)", r["test_accuracy"], flush=True)
