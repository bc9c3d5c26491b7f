"""How good are generated images? The quality measure of the generative practicals.

A classifier's last hidden layer describes an image by a few hundred numbers that say *what*
it shows. The **Fréchet distance** (:func:`nn.metrics.frechet_distance`) between the
Gaussians fitted to these features of generated images and of real test images is 0 when the
two sets look alike to the classifier, and grows when the samples are blurred, strange or all
of one kind (Heusel et al.'s FID uses Inception's features; here the course's LeNet plays that
role). The **confident share** is the part of the samples the classifier gives a class with
probability at least 0.9; the **classes found** count the classes of the confident samples (a
generator that makes only shoes finds few: mode collapse).

The classifier is the ``lenet`` practical's when it has been run (it saves its network in
``models/``); otherwise a small classifier is trained once, saved and reused. The baseline
generator is a plain autoencoder's decoder fed random codes. The ``vae``, ``gan`` and
``diffusion`` practicals share this module, so that their figures are comparable.
"""
from __future__ import annotations

import numpy as np

from ..layers import (Conv2D, ConvTranspose2D, Dense, Flatten, LeakyReLU, Sigmoid, Unflatten)
from ..losses import MSE, SoftmaxCrossEntropy
from ..network import Network
from ..optim import Adam

QUALITY_CLASSIFIER = "generative_classifier.npz"
BASELINE_AUTOENCODER = "generative_baseline_autoencoder.npz"


def quality_classifier(x_train, y_train, seed=0, progress=False):
    """The classifier of the quality measure: ``(net, prepare, name)``, where
    ``net.predict(prepare(x))`` gives the logits of images ``x`` in [0, 1]."""
    from nn.course import models_dir
    from nn.data import Normalizer

    lenet, norm = (models_dir() / "lenet_fashion_mnist.npz",
                   models_dir() / "lenet_fashion_mnist_standardize.npz")
    if lenet.is_file() and norm.is_file():
        return Network.load(lenet), Normalizer.load(norm).transform, "the lenet practical's LeNet"
    path = models_dir() / QUALITY_CLASSIFIER
    if not path.is_file():
        net = Network([Conv2D(1, 32, 3, stride=2, padding=1, init="he"), LeakyReLU(0.1),
                       Conv2D(32, 64, 3, stride=2, padding=1, init="he"), LeakyReLU(0.1),
                       Flatten(), Dense(64 * 7 * 7, 128, init="he"), LeakyReLU(0.1),
                       Dense(128, 10)], SoftmaxCrossEntropy())
        n = min(len(x_train), 20000)
        net.fit(x_train[:n], y_train[:n], epochs=3, batch_size=64, optimizer=Adam(2e-3),
                seed=seed, progress=progress)
        net.save(path)
    return (Network.load(path), lambda x: x,
            "a small CNN trained for the purpose (run the lenet practical to use its LeNet)")


def quality(classifier, images, reference, confidence=0.9):
    """Fréchet distance between the classifier's features of ``images`` and of
    ``reference`` (real test images), the share of ``images`` classified with probability
    ``>= confidence``, and the number of images of each class among those.

    ``classifier`` is what :func:`quality_classifier` returns; images are ``(N, 1, 28, 28)``
    in [0, 1]. Returns a dict: ``fid``, ``confident``, ``counts`` (10,), ``classes`` (how
    many classes hold at least 2 % of the confident samples).
    """
    from nn.functional import softmax
    from nn.metrics import frechet_distance

    net, prepare, _ = classifier
    features, head = Network(net.layers[:-1]), Network(net.layers[-1:])
    f_images = features.predict(prepare(np.asarray(images, dtype=np.float32)))
    f_reference = features.predict(prepare(np.asarray(reference, dtype=np.float32)))
    p = softmax(head.predict(f_images).astype(np.float64), axis=1)
    sure = p.max(axis=1) >= confidence
    counts = np.bincount(p.argmax(axis=1)[sure], minlength=10)
    return {"fid": frechet_distance(f_images, f_reference), "confident": float(sure.mean()),
            "counts": counts,
            "classes": int(np.sum(counts >= max(1, 0.02 * counts.sum())))}


def print_quality(name, q):
    print(f"{name:>34}: Fréchet distance {q['fid']:7.2f}, confident {q['confident']:6.1%}, "
          f"{q['classes']} classes found")


def baseline_autoencoder(x_train, latent=2, epochs=4, seed=0, progress=False):
    """The baseline generator: a plain autoencoder with a 2-D latent space, as in the
    autoencoder practical, trained on (up to 20 000 of) the training images, or loaded from
    ``models/`` when another practical of the chapter trained it already.

    Returns ``(encode, decode, sample)``: the two halves, and ``sample(n, rng)``, ``n``
    images decoded from codes drawn at random from the Gaussian fitted to the training
    images' codes (mean and covariance; a fairer baseline than N(0, 1), since nothing fixed
    the scale of a plain autoencoder's codes).
    """
    from nn.course import models_dir

    path = models_dir() / BASELINE_AUTOENCODER
    n = min(len(x_train), 20000)
    if path.is_file():
        net = Network.load(path)
    else:
        net = Network([
            Conv2D(1, 16, 3, stride=2, padding=1, init="he"), LeakyReLU(0.1),
            Conv2D(16, 32, 3, stride=2, padding=1, init="he"), LeakyReLU(0.1), Flatten(),
            Dense(32 * 7 * 7, 64, init="he"), LeakyReLU(0.1), Dense(64, latent),
            Dense(latent, 64, init="he"), LeakyReLU(0.1),
            Dense(64, 32 * 7 * 7, init="he"), LeakyReLU(0.1), Unflatten((32, 7, 7)),
            ConvTranspose2D(32, 16, 4, stride=2, padding=1, init="he"), LeakyReLU(0.1),
            ConvTranspose2D(16, 1, 4, stride=2, padding=1), Sigmoid()], MSE())
        net.fit(x_train[:n], x_train[:n], epochs=epochs, batch_size=64, optimizer=Adam(3e-3),
                seed=seed, progress=progress)
        net.save(path)
    encode, decode = Network(net.layers[:8]), Network(net.layers[8:])
    codes = encode.predict(x_train[:n]).astype(np.float64)
    mean, root = codes.mean(axis=0), np.linalg.cholesky(np.cov(codes, rowvar=False))

    def sample(count, rng):
        z = mean + rng.standard_normal((count, len(mean))) @ root.T
        return decode.predict(z.astype(np.float32))

    return encode, decode, sample



__all__ = ["quality_classifier", "quality", "print_quality", "baseline_autoencoder"]
