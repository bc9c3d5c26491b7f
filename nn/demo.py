"""``python -m nn demo``: the course's first multi-layer perceptron, on Iris.

A 4-8-3 network of sigmoid neurons (slope beta = 1) trained by gradient descent on the
course's quadratic error, with one-hot targets; features normalised as in the course
(subtract the training mean, divide by the largest absolute value of the centred training
data); a stratified hold-out of one third of each class.
"""
from __future__ import annotations

import time

import numpy as np

from . import backends
from .data import IRIS_CLASSES, load_iris, one_hot
from .layers import Dense, Sigmoid
from .losses import MSE
from .metrics import format_confusion
from .network import Network
from .optim import SGD


def stratified_split(y, test_fraction, seed):
    """Indices (train, test) with ``test_fraction`` of each class in the test part."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        test.append(members[:round(test_fraction * len(members))])
    test = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(y)), test), test


def run_demo(epochs=300, seed=0, backend="numpy", precision="fp32", progress=False,
             report_every=100) -> float:
    """Train, print the confusion matrices, return the test accuracy."""
    backends.use(backend, precision, seed=seed)
    x, y = load_iris()
    train, test = stratified_split(y, 1 / 3, seed)
    mean = x[train].mean(axis=0)
    scale = np.abs(x[train] - mean).max(axis=0)
    x = (x - mean) / scale

    net = Network([Dense(4, 8), Sigmoid(beta=1.0), Dense(8, 3), Sigmoid(beta=1.0)], MSE())
    print(f"Iris: {len(train)} training and {len(test)} test examples, backend "
          f"{backend}/{precision}")
    print(net.summary())

    def report(epoch, history):
        if (epoch + 1) % report_every == 0 or epoch + 1 == epochs:
            cm = net.evaluate(x[train], y[train])["confusion"]
            print(f"\nepoch {epoch + 1}: training error {history['train_loss'][-1]:.4f}")
            print(format_confusion(cm, IRIS_CLASSES))

    start = time.perf_counter()
    net.fit(x[train], one_hot(y[train]), epochs=epochs, batch_size=10, optimizer=SGD(0.5),
            seed=seed, progress=progress, callback=report)
    seconds = time.perf_counter() - start
    result = net.evaluate(x[test], y[test])
    print(f"\nTest set after {epochs} epochs ({seconds:.2f} s):")
    print(format_confusion(result["confusion"], IRIS_CLASSES))
    return result["accuracy"]
