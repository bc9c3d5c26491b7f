"""A training step never reads a value back from the device.

On a GPU, turning a device value into a host value (``float(a)``, ``bool(a)``, ``a.item()``,
``to_host``) waits until the GPU has finished all the work queued before it. Done once per
batch, it stalls the pipeline at every step. These tests prove, without a GPU, that
``Network.fit`` does it once per *epoch*: a backend whose arrays are NumPy arrays dressed
as device arrays counts every such conversion, and the count must not depend on the
number of batches.
"""
from __future__ import annotations

import numpy as np
import pytest

import nn
from nn import Network, backends
from nn.backends.numpy_backend import NumpyBackend
from nn.layers import (Conv2D, Dense, Dropout, Flatten, GlobalAvgPool, LeakyReLU, MaxPool2D,
                       ReLU, Tanh)
from nn.losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
from nn.optim import SGD, Adam


class Syncs:
    """Counts host reads of device values."""
    count = 0
    where: list = []


class DeviceArray(np.ndarray):
    """A NumPy array that behaves like a CuPy one where it matters here: reductions give 0-d
    arrays (not host scalars), and reading a value on the host is counted as a sync."""

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        return np.asarray(arr).view(DeviceArray)

    def __array_function__(self, func, types, args, kwargs):
        result = super().__array_function__(func, types, args, kwargs)
        if isinstance(result, (np.ndarray, np.generic)):
            return np.asarray(result).view(DeviceArray)
        return result

    def _sync(self, what):
        import traceback
        Syncs.count += 1
        Syncs.where.append((what, traceback.format_stack(limit=4)[0]))

    def __float__(self):
        self._sync("float")
        return float(self.view(np.ndarray))

    def __int__(self):
        self._sync("int")
        return int(self.view(np.ndarray))

    def __index__(self):
        self._sync("index")
        return self.view(np.ndarray).__index__()

    def __bool__(self):
        self._sync("bool")
        return bool(self.view(np.ndarray))

    def item(self, *args):
        self._sync("item")
        return self.view(np.ndarray).item(*args)

    def tolist(self):
        self._sync("tolist")
        return self.view(np.ndarray).tolist()

    def get(self):
        self._sync("get")
        return self.view(np.ndarray).copy()


class CountingBackend(NumpyBackend):
    """The NumPy backend with device-like arrays; ``on_host = False`` as on a GPU, and the
    generic (CuPy's) code paths instead of the numba kernels."""

    name = "counting"
    on_host = False

    def __init__(self, precision, seed=None):
        super().__init__(precision, seed, numba=False)

    def asarray(self, a, dtype=None):
        if isinstance(a, DeviceArray):
            a = a.view(np.ndarray)
        return super().asarray(a, dtype).view(DeviceArray)

    def to_host(self, a):
        Syncs.count += 1
        Syncs.where.append(("to_host", ""))
        return np.array(np.asarray(a).view(np.ndarray))

    def param(self, host_array):
        return super().param(host_array).view(DeviceArray)

    def errstate(self, **kwargs):
        return np.errstate(all="ignore")


@pytest.fixture(params=["fp32", "mixed"])
def counting(request):
    Syncs.count = 0
    Syncs.where = []
    with backends.using(CountingBackend(request.param, seed=0)) as B:
        yield B


def lenet():
    return Network([Conv2D(1, 4, 3, padding=1), LeakyReLU(), MaxPool2D(2),
                    Conv2D(4, 8, 3), ReLU(), Flatten(), Dense(8 * 2 * 2, 16), Tanh(),
                    Dropout(0.25), Dense(16, 3)], SoftmaxCrossEntropy())


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1, 8, 8)), rng.integers(0, 3, size=n)


def syncs_of_fit(make_net, x, y, batch_size, epochs, **kwargs):
    net = make_net()
    Syncs.count = 0
    Syncs.where = []
    history = net.fit(x, y, epochs=epochs, batch_size=batch_size, progress=False, seed=0,
                      **kwargs)
    return Syncs.count, history


def test_the_counting_backend_counts_what_a_gpu_would_wait_for(counting):
    """The instrument itself: reductions stay on the 'device', and reading them is counted."""
    a = counting.asarray(np.arange(6.0))
    total = a.sum()
    assert isinstance(total, DeviceArray) and total.shape == ()
    assert isinstance(np.stack([total, total]), DeviceArray)
    assert Syncs.count == 0
    float(total)
    bool(total > 0)
    counting.to_host(a)
    total.item()
    assert Syncs.count == 4


@pytest.mark.parametrize("optimizer", [lambda: SGD(0.05, momentum=0.9, weight_decay=1e-4),
                                       lambda: Adam(1e-3)], ids=["SGD", "Adam"])
def test_fit_reads_the_device_once_per_epoch_not_per_batch(counting, optimizer):
    x, y = images(48)
    few, history = syncs_of_fit(lenet, x, y, batch_size=24, epochs=3, optimizer=optimizer())
    many, _ = syncs_of_fit(lenet, x, y, batch_size=4, epochs=3, optimizer=optimizer())
    assert few == many == 3, Syncs.where      # 2 or 12 batches per epoch: one read per epoch
    assert len(history["train_loss"]) == 3
    assert all(np.isfinite(history["train_loss"]))
    if counting.mixed:
        assert history["skipped_steps"] == [0, 0, 0]
        assert history["loss_scale"] == [2.0**15] * 3


@pytest.mark.parametrize("loss, y", [
    (MSE(), np.eye(3)[np.arange(24) % 3]),                      # one-hot targets
    (BinaryCrossEntropy(from_logits=True), (np.arange(24) % 2).reshape(-1, 1).astype(float)),
    (MSE(), np.linspace(-1, 1, 24).reshape(-1, 1)),             # regression, no accuracy
], ids=["mse-onehot", "bce-binary", "mse-regression"])
def test_every_loss_and_target_form_trains_without_a_sync_per_batch(counting, loss, y):
    x = np.random.default_rng(1).normal(size=(24, 4))
    width = y.shape[1]

    def make():
        return Network([Dense(4, 8), Tanh(), Dense(8, width)], loss)

    few, _ = syncs_of_fit(make, x, y, batch_size=24, epochs=2, optimizer=SGD(0.1))
    many, _ = syncs_of_fit(make, x, y, batch_size=3, epochs=2, optimizer=SGD(0.1))
    assert few == many == 2, Syncs.where


def test_validation_adds_a_fixed_number_of_reads_per_epoch(counting):
    x, y = images(32)
    xv, yv = images(20, seed=1)
    few, history = syncs_of_fit(lenet, x, y, batch_size=16, epochs=2, valid=(xv, yv),
                                optimizer=SGD(0.05))
    many, _ = syncs_of_fit(lenet, x, y, batch_size=4, epochs=2, valid=(xv, yv),
                           optimizer=SGD(0.05))
    # per epoch: the training metrics, then the validation loss and predicted classes
    assert few == many == 2 * 3, Syncs.where
    assert len(history["valid_accuracy"]) == 2


def test_global_pooling_network_trains_without_a_sync_per_batch(counting):
    x, y = images(16)

    def make():
        return Network([Conv2D(1, 4, 3, padding=1), ReLU(), GlobalAvgPool(), Dense(4, 3)],
                       SoftmaxCrossEntropy())

    few, _ = syncs_of_fit(make, x, y, batch_size=16, epochs=2, optimizer=Adam(1e-3))
    many, _ = syncs_of_fit(make, x, y, batch_size=2, epochs=2, optimizer=Adam(1e-3))
    assert few == many == 2, Syncs.where


@pytest.mark.filterwarnings("ignore::nn.training.TrainingWarning")   # random labels: no progress
def test_overflow_and_skipped_steps_are_decided_on_the_device():
    """Under "mixed", overflowing steps are skipped and counted without any per-step read."""
    with backends.using(CountingBackend("mixed", seed=0)):
        x, y = images(32)
        net = lenet()
        net.loss_scaler = nn.training.LossScaler(init_scale=2.0**40)
        start = {k: np.array(layer.params[name]) for k, layer, name in net.named_parameters()}
        Syncs.count = 0
        history = net.fit(x, y, epochs=1, batch_size=4, optimizer=SGD(0.05), progress=False)
        assert Syncs.count == 1, Syncs.where
        # at 2**40 to 2**33 every one of the 8 steps overflows: all skipped, weights untouched
        assert history["skipped_steps"] == [8]
        assert history["loss_scale"] == [2.0**32]
        for k, layer, name in net.named_parameters():
            np.testing.assert_array_equal(np.asarray(layer.params[name]), start[k], err_msg=k)

        Syncs.count = 0
        history = net.fit(x, y, epochs=3, batch_size=4, optimizer=SGD(0.05), progress=False)
        assert Syncs.count == 3, Syncs.where
        assert 8 + sum(history["skipped_steps"]) == net.loss_scaler.skipped
        assert history["skipped_steps"][-1] < 8          # the scale came down far enough
        assert any(not np.array_equal(start[k], np.asarray(layer.params[name]))
                   for k, layer, name in net.named_parameters())


@pytest.mark.parametrize("precision", ["fp32", "mixed"])
def test_cupy_training_steps_never_synchronise(backend_name, precision):
    """On a GPU, CuPy's own detector (``cupyx.allow_synchronize(False)``) raises at any
    device-to-host read inside the training steps that ``fit`` runs."""
    if backend_name != "cupy":
        pytest.skip("uses CuPy's synchronisation detector: runs on a GPU only")
    cupyx = pytest.importorskip("cupyx")
    if not hasattr(cupyx, "allow_synchronize"):
        pytest.skip("this CuPy no longer has cupyx.allow_synchronize")
    import warnings
    with backends.using("cupy", precision, seed=0) as B:
        net = lenet()
        trainer = nn.training.Trainer(net, Adam(1e-3),
                                      nn.training.LossScaler() if B.mixed else None)
        x, y = images(32)
        batches = [(B.asarray(x[i:i + 8]), B.asarray(y[i:i + 8])) for i in range(0, 32, 8)]
        trainer.step(*batches[0])                      # compiles the kernels
        losses = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")            # allow_synchronize is deprecated
            with cupyx.allow_synchronize(False):
                for xb, yb in batches:
                    value, _ = trainer.step(xb, yb)
                    losses.append(value)
        assert all(np.isfinite(float(v)) for v in losses)
