"""Bad inputs across the core API: every one raises an nn error that says what happened and
what to do; nothing is half-written; no file can make nn allocate without bound.

Each case asserts the exception type *and* that the message names the problem. The
detection, data and course machinery have their own bad-input tests beside their other tests.
"""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np
import pytest

import nn
from nn import Network, backends
from nn.errors import (BackwardBeforeForwardError, ConfigError, DataError, FileAccessError,
                       ModelFileError, NNError, ShapeError, StateError)
from nn.gradcheck import numerical_gradient
from nn.layers import Conv1D, Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, ReLU, Sigmoid
from nn.losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
from nn.optim import SGD, Adam


def small_net():
    return Network([Dense(4, 3)], SoftmaxCrossEntropy())


def rewrite_architecture(path, change):
    """Replace the JSON record of the model file at ``path`` by ``change(record)`` (a str)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["__architecture__"] = np.array(change(json.loads(str(arrays["__architecture__"]))))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


# -- model files: data loss and security first ----------------------------------------------------
@pytest.mark.parametrize("n", [60000, 12000])
def test_an_oversized_architecture_is_refused_before_any_allocation(tmp_path, n):
    """A 3 KB file whose JSON says Dense(n, n) must not make nn draw n² weights."""
    path = small_net().save(tmp_path / "m.npz")

    def huge(record):
        record["layers"][0]["config"].update(in_features=n, out_features=n)
        return json.dumps(record)

    rewrite_architecture(path, huge)
    assert path.stat().st_size < 4096
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelFileError, match=rf"'0\.W' .*shape \(4, 3\), expected \({n}, {n}\)"):
            Network.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"loading allocated {peak / 2**20:.1f} MiB before refusing"
    assert time.perf_counter() - start < 5     # a generous bound: 3 s / 1.6 GiB before the fix


def test_an_archive_announcing_more_than_it_holds_is_refused(tmp_path):
    """A compressed member that would expand far beyond the file (a zip bomb) is refused from
    the headers, before anything is decompressed."""
    path = tmp_path / "bomb.npz"
    record = json.loads(json.dumps({"format": "nn-model", "version": 2,
                                    "layers": [{"type": "Dense", "config": {
                                        "in_features": 4000, "out_features": 4000}}],
                                    "loss": None}))
    np.savez_compressed(path, __architecture__=np.array(json.dumps(record)),
                        **{"0.W": np.zeros((4000, 4000)), "0.b": np.zeros(4000)})
    with pytest.raises(ModelFileError, match="announces .* bytes of arrays"):
        Network.load(path)


@pytest.mark.parametrize("layer_type", ["ConvND", "WeightedWindow", "PoolND", "Block", "Layer",
                                        "GlobalPool", "MaxPoolND"])
def test_internal_base_classes_cannot_be_loaded(tmp_path, layer_type):
    path = small_net().save(tmp_path / "m.npz")

    def internal(record):
        record["layers"][0] = {"type": layer_type, "config": {}}
        return json.dumps(record)

    rewrite_architecture(path, internal)
    with pytest.raises(ModelFileError, match=f"unknown layer type '{layer_type}'"):
        Network.load(path)


def test_a_user_class_cannot_take_a_builtin_layer_name(tmp_path):
    path = small_net().save(tmp_path / "m.npz")
    with pytest.raises(ConfigError, match="layer class named 'Dense' already exists"):
        class Dense(Layer):                      # noqa: F811 - the point of the test
            pass
    loaded = Network.load(path)                  # still nn's Dense
    assert type(loaded.layers[0]) is nn.layers.Dense


def test_a_user_class_cannot_take_a_builtin_loss_name():
    with pytest.raises(ConfigError, match="loss class named 'MSE' already exists"):
        class MSE(nn.losses.Loss):               # noqa: F811
            pass


def test_a_class_defined_again_by_its_own_module_replaces_itself():
    """A notebook cell run twice defines the same class twice: that is not a clash."""
    source = "class TwiceDefined(nn.layers.Layer):\n    pass\n"
    namespace = {"nn": nn, "__name__": "notebook_cell"}
    exec(source, namespace)
    exec(source, namespace)
    assert nn.layers.base.LAYERS.types["TwiceDefined"] is namespace["TwiceDefined"]


@pytest.mark.parametrize("text, match", [
    ("[" * 100_000, "nested too deeply|not valid JSON"),
    (json.dumps({"format": "nn-model", "version": "2", "layers": []}), "must be an integer"),
    (json.dumps({"format": "nn-model", "version": 2, "layers": "Dense"}), "no list of layers"),
    (json.dumps({"format": "nn-model", "version": 2, "layers": [["Dense"]]}), "must be an object"),
    (json.dumps({"format": "nn-model", "version": 2,
                 "layers": [{"type": "Dense", "config": [4, 3]}]}), "constructor arguments"),
    (json.dumps({"format": "nn-model", "version": 2,
                 "layers": [{"type": "Dense", "config": {"in_features": -4, "out_features": 3}}]}),
     "positive int"),
    (json.dumps({"format": "nn-model", "version": 2,
                 "layers": [{"type": "Residual", "config": {"layers": 3}}]}), "config must be"),
    ("[" * 70 + "1" + "]" * 70, "nested more than"),
], ids=["deep-json", "version-string", "layers-not-a-list", "layer-not-a-dict",
        "config-not-a-dict", "negative-size", "residual-bad-config", "deep-but-valid"])
def test_damaged_architecture_records_raise_model_file_errors(tmp_path, text, match):
    path = small_net().save(tmp_path / "m.npz")
    rewrite_architecture(path, lambda record: text)
    with pytest.raises(ModelFileError, match=match):
        Network.load(path)


def test_non_finite_weights_in_a_file_are_refused(tmp_path):
    net = small_net()
    path = net.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["0.W"][2, 1] = np.nan
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ModelFileError, match=r"'0\.W' .*nan at index \(2, 1\).*diverged"):
        Network.load(path)


def test_object_arrays_in_a_file_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, __architecture__=np.array("{}"), evil=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelFileError, match="Python objects"):
        Network.load(path)


def test_load_of_a_folder_says_so(tmp_path):
    with pytest.raises(ModelFileError, match="is a folder"):
        Network.load(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_saving_into_a_read_only_folder_names_the_users_path(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(FileAccessError) as info:
            small_net().save(folder / "model.npz")
    finally:
        folder.chmod(stat.S_IRWXU)
    message = str(info.value)
    assert str(folder / "model.npz") in message and ".tmp" not in message
    assert os.listdir(folder) == []


def test_a_refused_temporary_file_names_the_users_path(tmp_path, monkeypatch):
    """What a read-only folder does for a user who is not root."""
    def refuse(path, mode="r", *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(nn.io, "open", refuse, raising=False)
    with pytest.raises(FileAccessError) as info:
        small_net().save(tmp_path / "model.npz")
    message = str(info.value)
    assert str(tmp_path / "model.npz") in message and ".tmp" not in message
    assert "Permission denied" in message and "read-only" in message
    assert os.listdir(tmp_path) == []


def test_a_failed_write_names_the_users_path_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = small_net().save(tmp_path / "model.npz")
    before = path.read_bytes()

    def disk_full(f, **arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(FileAccessError) as info:
        small_net().save(path)
    assert str(path) in str(info.value) and ".tmp" not in str(info.value)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


def test_load_weights_names_the_layer_that_differs(tmp_path):
    path = Network([Dense(4, 8), ReLU(), Dense(8, 3)], MSE()).save(tmp_path / "m.npz")
    other = Network([Dense(4, 8), ReLU(), Dense(8, 5)], MSE())
    with pytest.raises(ModelFileError, match=r"layer 2 is Dense\(8->3\) in the file but "
                                             r"Dense\(8->5\) in this network"):
        other.load_weights(path)
    with pytest.raises(ModelFileError, match="n_layers must be an int in"):
        other.load_weights(path, n_layers=7)


# -- silent wrong results --------------------------------------------------------------------------
def test_binary_cross_entropy_refuses_targets_outside_0_1():
    with pytest.raises(DataError, match=r"probabilities in \[0, 1\].*from 0.0 to 2.0"):
        BinaryCrossEntropy().forward(np.full((2, 1), 0.5), np.array([[2.0], [0.0]]))


def test_softmax_cross_entropy_says_class_ids_must_be_integers():
    with pytest.raises(DataError, match="class ids must be integers.*astype"):
        SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([1.0, 2.0]))


@pytest.mark.parametrize("loss", [MSE(), SoftmaxCrossEntropy(), BinaryCrossEntropy()], ids=repr)
def test_losses_refuse_nan_targets(loss):
    target = np.array([[0.0, 1.0, 0.0], [np.nan, 0.0, 1.0]])
    with pytest.raises(DataError, match=r"NaN at index \(1, 0\)"):
        loss.forward(np.full((2, 3), 0.3), target)


@pytest.mark.parametrize("method", ["predict", "evaluate", "fit"])
def test_nan_inputs_are_refused_with_their_index(method):
    net = small_net()
    x = np.zeros((5, 4))
    x[3, 1] = np.inf
    args = (x,) if method == "predict" else (x, np.zeros(5, dtype=int))
    with pytest.raises(DataError, match=r"inf at index \(3, 1\)"):
        getattr(net, method)(*args)


@pytest.mark.parametrize("x, match", [
    (np.zeros((2, 3), dtype=complex), "complex numbers"),
    (np.zeros((2, 3), dtype=object), "Python objects"),
    (np.zeros((2, 3), dtype=bool), "booleans"),
    (np.array([["a", "b", "c"]]), "strings"),
    (np.zeros((0, 3)), "empty batch"),
    (np.float64(1.0), "a scalar"),
    ([[1.0, 2.0], [3.0]], "ragged list"),
], ids=["complex", "object", "bool", "string", "empty", "scalar", "ragged"])
def test_layers_refuse_what_they_cannot_compute_with(x, match):
    with pytest.raises(DataError, match=match):
        Dense(3, 2).forward(x)


def test_layers_take_lists_and_integers_as_floats():
    layer = Dense(3, 2)
    y = layer.forward([[1, 2, 3]])
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, layer.forward(np.array([[1.0, 2.0, 3.0]], np.float32)))


@pytest.mark.parametrize("layer, shape", [
    (Conv2D(1, 2, 3), (0, 1, 5, 5)), (Conv1D(1, 2, 3), (0, 1, 9)), (MaxPool2D(2), (0, 1, 4, 4)),
    (Dense(3, 2), (0, 3)), (Flatten(), (0, 2, 2)), (Sigmoid(), (0, 3)), (Dropout(0.5), (0, 3)),
], ids=repr)
def test_an_empty_batch_is_refused_everywhere_with_one_message(layer, shape):
    with pytest.raises(DataError, match=r"got an empty batch \(input shape \(0,"):
        layer.forward(np.zeros(shape))


def test_a_callback_cannot_switch_the_backend_during_fit():
    net = small_net()

    def switch(epoch, history):
        nn.use("numpy", "mixed")

    before = backends.current()
    with pytest.raises(StateError, match="during Network.fit"):
        net.fit(np.zeros((6, 4)), np.arange(6) % 3, epochs=2, progress=False, callback=switch)
    assert backends.current() is before


def test_a_saturated_run_warns_and_says_what_to_try():
    """The README's Iris MLP with SGD(1e6): the loss is finite but nothing is learnt."""
    x, y = nn.data.load_iris()
    x = (x - x.mean(0)) / np.abs(x - x.mean(0)).max(0)
    net = Network([Dense(4, 8), Sigmoid(), Dense(8, 3), Sigmoid()], MSE())
    with pytest.warns(nn.TrainingWarning, match="saturated.*lower the learning rate"):
        net.fit(x, nn.data.one_hot(y), epochs=30, batch_size=10, optimizer=SGD(1e6), seed=0,
                progress=False)


def test_a_run_whose_loss_never_falls_warns():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)), rng.integers(0, 3, 40)
    net = Network([Dense(4, 16), ReLU(), Dense(16, 3)], SoftmaxCrossEntropy())
    with pytest.warns(nn.TrainingWarning, match="never fell below its first value"):
        net.fit(x, y, epochs=5, batch_size=40, optimizer=SGD(200.0), seed=0, progress=False)


def test_a_healthy_run_does_not_warn():
    x, y = nn.data.load_iris()
    x = (x - x.mean(0)) / x.std(0)
    net = Network([Dense(4, 8), Sigmoid(), Dense(8, 3)], SoftmaxCrossEntropy())
    with warnings.catch_warnings():
        warnings.simplefilter("error", nn.TrainingWarning)
        net.fit(x, y, epochs=5, batch_size=16, optimizer=SGD(0.5), seed=0, progress=False)


# -- opaque errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("y, match", [
    (np.array(["a", "b", "c", "a"]), "strings"),
    ([[0, 1], [1]] * 2, "ragged list"),
    (np.zeros((4, 3)) + np.nan, "NaN at index"),
    (np.arange(5), "x has 4 examples but y has 5"),
], ids=["strings", "ragged", "nan", "length"])
def test_fit_refuses_bad_targets(y, match):
    with pytest.raises(NNError, match=match):
        small_net().fit(np.zeros((4, 4)), y, progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": -1}, "epochs must be an int"), ({"epochs": 2.5}, "epochs must be an int"),
    ({"batch_size": 0}, "batch_size must be an int"), ({"optimizer": "sgd"}, "nn.optim optimizer"),
    ({"callback": 3}, "callback must be a function"), ({"augment": "flip"}, "augment must be"),
    ({"valid": np.zeros((2, 4))}, "valid must be a pair"),
], ids=["epochs", "epochs-float", "batch", "optimizer", "callback", "augment", "valid"])
def test_fit_refuses_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        small_net().fit(np.zeros((3, 4)), np.arange(3), progress=False, **kwargs)


@pytest.mark.parametrize("loss", [MSE(), SoftmaxCrossEntropy(), BinaryCrossEntropy()], ids=repr)
def test_loss_backward_before_forward(loss):
    with pytest.raises(StateError, match=r"call forward\(pred, target\) first"):
        loss.backward()


def test_layer_backward_before_forward():
    with pytest.raises(BackwardBeforeForwardError, match=r"call forward\(\) first"):
        Dense(3, 2).backward(np.zeros((1, 2)))


def test_numerical_gradient_needs_a_scalar_function():
    with pytest.raises(DataError, match="must return one number"):
        numerical_gradient(lambda v: v * 2, np.ones(3))
    with pytest.raises(DataError, match="float64"):
        numerical_gradient(lambda v: v.sum(), np.ones(3, dtype=np.float32))


@pytest.mark.parametrize("kwargs, match", [
    ({"seed": "abc"}, "seed must be an int"), ({"precision": "fp16"}, "unknown precision"),
    ({"name": "tpu"}, "unknown backend"), ({"workspace_bytes": 0}, "workspace_bytes"),
], ids=["seed", "precision", "name", "workspace"])
def test_use_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        nn.use(**kwargs)


@pytest.mark.parametrize("make, match", [
    (lambda: Dense(4.0, 3), "in_features must be a positive int"),
    (lambda: Dense(4, 3, init="kaiming"), "unknown init"),
    (lambda: Sigmoid(beta="1"), "beta must be a finite number"),
    (lambda: Sigmoid(beta=float("nan")), "beta must be a finite number"),
    (lambda: Dropout(1.0), "rate must be a finite number"),
    (lambda: Conv2D(1, 2, (3,)), "kernel_size must be"),
    (lambda: Network([Dense(4, 3), ReLU]), "class instead of an instance"),
    (lambda: Network([Dense(4, 3)], "mse"), "loss must be an nn.losses loss"),
    (lambda: SGD(-0.1), "learning rate must be a positive number"),
    (lambda: Adam(betas=0.9), "betas must be a pair"),
    (lambda: SGD(0.1, clip_norm=0), "clip_norm must be a positive number"),
], ids=["dense-float", "init", "beta-str", "beta-nan", "dropout", "kernel", "class", "loss",
        "lr", "betas", "clip"])
def test_bad_configurations_raise_config_errors(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


# -- an interrupted step is all or nothing ---------------------------------------------------------
class InterruptedSGD(SGD):
    """SGD whose update of the second parameter receives a Ctrl-C (SIGINT)."""

    def _apply(self, xp, layer, name, g, keep):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return super()._apply(xp, layer, name, g, keep)


def test_a_keyboard_interrupt_never_leaves_a_step_half_done():
    net = Network([Dense(4, 5), ReLU(), Dense(5, 3)], SoftmaxCrossEntropy())
    x, y = np.random.default_rng(0).normal(size=(8, 4)), np.arange(8) % 3
    net.loss.forward(net.forward(x, train=True), y)
    net.backward(net.loss.backward())
    before = {key: np.array(layer.params[name]) for key, layer, name in net.named_parameters()}
    with pytest.raises(KeyboardInterrupt):
        InterruptedSGD(0.1).step(net.parameters())
    changed = {key: not np.array_equal(before[key], layer.params[name])
               for key, layer, name in net.named_parameters()}
    assert all(changed.values()), changed          # every parameter was updated, then the stop


# -- numba is optional -----------------------------------------------------------------------------
def test_nn_imports_and_trains_without_numba():
    code = """
import sys
class NoNumba:
    def find_spec(self, name, path=None, target=None):
        if name == "numba" or name.startswith("numba."):
            raise ImportError("numba is blocked for this test")
sys.meta_path.insert(0, NoNumba())
import numpy as np
import nn
from nn.layers import Conv2D, MaxPool2D, Flatten, Dense
net = nn.Network([Conv2D(1, 2, 3, padding=1), MaxPool2D(2), Flatten(), Dense(2 * 4 * 4, 2)],
                 nn.losses.SoftmaxCrossEntropy())
history = net.fit(np.random.default_rng(0).normal(size=(8, 1, 8, 8)), np.arange(8) % 2,
                  epochs=2, batch_size=4, progress=False)
print("numba" in sys.modules, len(history["train_loss"]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(nn.__file__)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "2"]
