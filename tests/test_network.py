"""Network: training and its history, mixed precision and loss scaling, prediction,
evaluation, summary, errors a student meets, and saving to / loading from .npz files."""
from __future__ import annotations

import json
import os
import stat
import zipfile

import numpy as np
import pytest

import nn
from nn import Network
from nn.data import load_iris, one_hot
from nn.layers import Dense, Dropout, Flatten, LeakyReLU, ReLU, Sigmoid, Tanh
from nn.losses import MSE, BinaryCrossEntropy, SoftmaxCrossEntropy
from nn.optim import SGD


def blobs(n_per_class=20, n_classes=3, seed=0):
    """Well separated Gaussian clusters in 4 dimensions: ``x (N, 4)``, ``y (N,)`` int64."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * np.eye(4)[:n_classes]
    x = np.concatenate([c + 0.5 * rng.normal(size=(n_per_class, 4)) for c in centres])
    y = np.repeat(np.arange(n_classes), n_per_class)
    order = rng.permutation(len(y))
    return x[order], y[order]


def classifier(hidden=8, n_classes=3, *extra):
    return Network([Dense(4, hidden), Tanh(), *extra, Dense(hidden, n_classes)],
                   SoftmaxCrossEntropy())


def weights(net):
    B = nn.current()
    return {key: B.to_host(layer.params[name]).copy()
            for key, layer, name in net.named_parameters()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# -- fit and its history -----------------------------------------------------------------------
def test_fit_reduces_the_loss_and_records_each_epoch(fp32):
    x, y = blobs()
    xv, yv = blobs(seed=1)
    net = classifier()
    history = net.fit(x, y, epochs=15, batch_size=10, optimizer=SGD(0.2), valid=(xv, yv),
                      seed=0, progress=False)
    assert set(history) == {"train_loss", "lr", "train_accuracy", "valid_loss", "valid_accuracy"}
    assert all(len(values) == 15 for values in history.values())
    assert history["train_loss"][-1] < 0.2 * history["train_loss"][0]
    assert history["valid_loss"][-1] < 0.2 * history["valid_loss"][0]
    assert history["valid_accuracy"][-1] == 1.0
    assert history["lr"] == [0.2] * 15


def test_history_has_no_valid_keys_without_valid_data(fp32):
    x, y = blobs()
    history = classifier().fit(x, y, epochs=2, progress=False)
    assert set(history) == {"train_loss", "lr", "train_accuracy"}


def test_history_has_no_accuracy_for_regression_targets(fp32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4))
    y = np.stack([x[:, 0] - x[:, 1], 0.5 * x[:, 2]], axis=1)  # real-valued targets
    net = Network([Dense(4, 8), Tanh(), Dense(8, 2)], MSE())
    history = net.fit(x, y, epochs=10, batch_size=8, optimizer=SGD(0.1), valid=(x, y),
                      progress=False)
    assert set(history) == {"train_loss", "lr", "valid_loss"}
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert net.evaluate(x, y)["accuracy"] is None


def test_train_loss_is_the_mean_over_the_epoch():
    x, y = blobs()
    net = classifier()
    before = net.evaluate(x, y)["loss"]
    # learning rate ~0: the weights do not move, so the epoch's mean is the loss of the data
    history = net.fit(x, y, epochs=1, batch_size=7, optimizer=SGD(1e-12), progress=False)
    assert history["train_loss"][0] == pytest.approx(before, rel=1e-5)


def _train_with_dropout(backend_name, fit_seed):
    nn.use(backend_name, "fp32", seed=0)  # the same initial weights every time
    x, y = blobs()
    net = classifier(8, 3, Dropout(0.3))
    history = net.fit(x, y, epochs=3, batch_size=8, optimizer=SGD(0.1, momentum=0.9),
                      seed=fit_seed, progress=False)
    return history, weights(net)


def test_same_seed_gives_identical_runs(backend_name):
    history_a, weights_a = _train_with_dropout(backend_name, fit_seed=5)
    history_b, weights_b = _train_with_dropout(backend_name, fit_seed=5)
    assert history_a == history_b
    assert_same_weights(weights_a, weights_b)


def test_different_seeds_give_different_runs(backend_name):
    history_a, weights_a = _train_with_dropout(backend_name, fit_seed=5)
    history_b, weights_b = _train_with_dropout(backend_name, fit_seed=6)
    assert history_a["train_loss"] != history_b["train_loss"]
    assert not np.array_equal(weights_a["0.W"], weights_b["0.W"])


@pytest.mark.parametrize("batch_size, steps_per_epoch",
                         [(60, 1), (1000, 1), (15, 4), (16, 4), (1, 60)])
def test_batch_size_sets_the_number_of_steps(fp32, batch_size, steps_per_epoch):
    x, y = blobs()  # 60 examples
    optimizer = SGD(0.1)
    classifier().fit(x, y, epochs=3, batch_size=batch_size, optimizer=optimizer, progress=False)
    assert optimizer.steps == 3 * steps_per_epoch


def test_full_batch_does_not_depend_on_the_shuffling(fp64):
    x, y = blobs()
    start = weights(classifier())
    results = []
    for shuffle in (True, False):
        net = classifier()
        for key, layer, name in net.named_parameters():
            layer.params[name] = fp64.param(start[key])  # a copy: SGD updates in place
        net.fit(x, y, epochs=2, batch_size=len(x), optimizer=SGD(0.5), shuffle=shuffle, seed=3,
                progress=False)
        results.append(weights(net))
    for key in results[0]:
        np.testing.assert_allclose(results[0][key], results[1][key], rtol=1e-12, atol=1e-14)


def test_progress_false_prints_nothing(fp32, capfd):
    x, y = blobs()
    classifier().fit(x, y, epochs=2, progress=False)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_progress_bar_goes_to_stderr(fp32, capfd):
    x, y = blobs()
    classifier().fit(x, y, epochs=2, progress=True)
    out, err = capfd.readouterr()
    assert out == ""
    assert "epoch 2/2" in err


def test_callback_is_called_once_per_epoch_with_the_history(fp32):
    x, y = blobs()
    calls = []

    def callback(epoch, history):
        calls.append((epoch, len(history["train_loss"]), history))

    history = classifier().fit(x, y, epochs=4, callback=callback, progress=False)
    assert [(epoch, n) for epoch, n, _ in calls] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert calls[-1][2] is history


# -- classification targets in every form ---------------------------------------------------
def _binary_blobs():
    x, y = blobs(n_per_class=30, n_classes=2)
    return x, y


@pytest.mark.parametrize("form", ["ids", "one-hot", "binary-mse", "binary-bce", "binary-1d"])
def test_accuracy_for_every_target_form(fp32, form):
    if form in ("ids", "one-hot"):
        x, ids = blobs()
        y = ids if form == "ids" else one_hot(ids)
        net = classifier()
        optimizer = SGD(0.2)
    else:
        x, ids = _binary_blobs()
        y = ids.astype(np.float64).reshape(-1, 1) if form != "binary-1d" else ids.astype(np.float64)
        loss = BinaryCrossEntropy() if form == "binary-bce" else MSE()
        net = Network([Dense(4, 8), Tanh(), Dense(8, 1), Sigmoid()], loss)
        optimizer = SGD(1.0)
    history = net.fit(x, y, epochs=30, batch_size=10, optimizer=optimizer, valid=(x, y), seed=0,
                      progress=False)
    assert history["train_accuracy"][-1] >= 0.95
    assert history["valid_accuracy"][-1] >= 0.95
    result = net.evaluate(x, y)
    outputs = net.predict(x)
    predicted = outputs.argmax(axis=1) if outputs.shape[1] > 1 else (outputs[:, 0] > 0.5)
    assert result["accuracy"] == pytest.approx(np.mean(predicted == ids))
    assert result["accuracy"] == history["valid_accuracy"][-1]


def test_untrained_accuracy_is_counted_not_assumed(fp32):
    x, y = blobs()
    net = classifier()
    predicted = net.predict(x).argmax(axis=1)
    history = net.fit(x, y, epochs=1, batch_size=len(x), optimizer=SGD(1e-12), progress=False)
    assert history["train_accuracy"][0] == pytest.approx(np.mean(predicted == y))


# -- divergence and bad inputs ---------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the float overflow the error reports
def test_diverging_training_raises_non_finite_loss_error(fp32):
    rng = np.random.default_rng(0)
    x = 1e3 * rng.normal(size=(32, 4))  # not normalised
    y = rng.normal(size=(32, 1))
    net = Network([Dense(4, 8), Tanh(), Dense(8, 1)], MSE())
    with pytest.raises(nn.NonFiniteLossError) as info:
        net.fit(x, y, epochs=5, batch_size=8, optimizer=SGD(1e6), progress=False)
    message = str(info.value)
    assert "loss became inf" in message or "loss became nan" in message
    assert "lower the learning rate" in message
    assert "at epoch " in message


def test_nan_in_the_inputs_is_reported_before_training(fp32):
    x, y = blobs()
    x[7, 2] = np.nan
    net = classifier()
    before = weights(net)
    with pytest.raises(ValueError, match=r"NaN at index \(7, 2\)"):
        net.fit(x, y, epochs=1, progress=False)
    assert_same_weights(before, weights(net))


def test_nan_in_the_validation_inputs_is_reported(fp32):
    x, y = blobs()
    xv = x.copy()
    xv[3, 0] = np.inf
    with pytest.raises(ValueError, match=r"valid.*index \(3, 0\)"):
        classifier().fit(x, y, epochs=1, valid=(xv, y), progress=False)


def test_network_needs_layers():
    with pytest.raises(ValueError, match="at least one layer"):
        Network([])


def test_network_rejects_a_layer_class_with_a_hint():
    with pytest.raises(TypeError, match=r"item 0 .*instead of ReLU\(\)"):
        Network([ReLU])


def test_network_rejects_something_that_is_not_a_loss():
    with pytest.raises(TypeError, match="loss"):
        Network([Dense(4, 2)], "mse")


def test_fit_and_evaluate_need_a_loss():
    net = Network([Dense(4, 3)])
    x, y = blobs()
    with pytest.raises(ValueError, match="no loss"):
        net.fit(x, y, progress=False)
    with pytest.raises(ValueError, match="no loss"):
        net.evaluate(x, y)
    assert net.predict(x).shape == (60, 3)  # predicting needs no loss


def test_fit_rejects_inputs_and_targets_of_different_lengths():
    x, y = blobs()
    with pytest.raises(ValueError, match="60 examples but y has 59"):
        classifier().fit(x, y[:-1], progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": -1}, "epochs"),
    ({"epochs": 2.0}, "epochs"),
    ({"epochs": True}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 8.5}, "batch_size"),
    ({"valid": ([1.0, 2.0],)}, "valid"),
])
def test_fit_rejects_bad_arguments(kwargs, match):
    x, y = blobs()
    with pytest.raises(ValueError, match=match):
        classifier().fit(x, y, progress=False, **kwargs)


def test_wrong_input_shape_names_the_layer_and_both_shapes():
    net = Network([Dense(4, 8), ReLU(), Dense(8, 3)])
    with pytest.raises(ValueError) as info:
        net.forward(np.ones((2, 5)))
    message = str(info.value)
    assert "layer 0" in message and "Dense(4->8)" in message
    assert "(N, 4)" in message and "(2, 5)" in message


# -- mixed precision ---------------------------------------------------------------------------
def test_mixed_precision_training(mixed):
    x, y = blobs()
    net = classifier()
    history = net.fit(x, y, epochs=10, batch_size=10, optimizer=SGD(0.2), seed=0, progress=False)
    assert history["train_loss"][-1] < 0.3 * history["train_loss"][0]
    assert history["train_accuracy"][-1] >= 0.95
    assert len(history["loss_scale"]) == len(history["skipped_steps"]) == 10
    assert all(p.dtype == np.float32 for p in (layer.params[name]
                                               for layer, name in net.parameters()))
    assert net.forward(x).dtype == np.float16


def test_fp32_history_has_no_loss_scale(fp32):
    x, y = blobs()
    history = classifier().fit(x, y, epochs=1, progress=False)
    assert "loss_scale" not in history and "skipped_steps" not in history


def test_mixed_precision_skips_steps_whose_gradients_overflow(mixed):
    x, y = blobs()
    net = classifier()
    # scaled by 2**40, the output gradient (about 1e-2) overflows float16's 65504
    net.loss_scaler = nn.training.LossScaler(init_scale=2.0**40)
    start = weights(net)
    history = net.fit(x, y, epochs=1, batch_size=len(x), optimizer=SGD(0.5), progress=False)
    assert history["skipped_steps"] == [1]
    assert history["loss_scale"] == [2.0**39]
    assert_same_weights(start, weights(net))

    history = net.fit(x, y, epochs=40, batch_size=len(x), optimizer=SGD(0.5), progress=False)
    skipped = history["skipped_steps"]
    n_skipped = skipped.index(0)  # overflows until the scale is small enough, then none
    assert n_skipped >= 5
    assert skipped == [1] * n_skipped + [0] * (40 - n_skipped)
    assert history["loss_scale"][:n_skipped] == [2.0**(38 - i) for i in range(n_skipped)]
    assert net.loss_scaler.skipped == 1 + n_skipped
    assert not np.array_equal(start["0.W"], weights(net)["0.W"])
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][n_skipped]


def test_mixed_precision_stops_when_gradients_overflow_at_the_minimum_scale(mixed):
    x, y = blobs()
    net = Network([Dense(4, 8), Tanh(), Dense(8, 3)], MSE())
    net.loss_scaler = nn.training.LossScaler(init_scale=1.0)
    with pytest.raises(nn.NonFiniteLossError, match="even with the loss scale at its minimum"):
        # targets of 1e8 make the output gradient itself (1e8 / N) larger than float16's 65504
        net.fit(x, np.full((len(x), 3), 1e8), epochs=1, batch_size=len(x), progress=False)


# -- predict and evaluate ---------------------------------------------------------------------
def test_predict_returns_host_outputs_of_forward_in_eval_mode(backend_name):
    B = nn.use(backend_name, "fp32", seed=0)
    x, _ = blobs()
    net = classifier(8, 3, Dropout(0.5))
    outputs = net.predict(x)
    assert type(outputs) is np.ndarray
    assert outputs.shape == (60, 3)
    np.testing.assert_array_equal(outputs, B.to_host(net.forward(x, train=False)))
    assert not np.allclose(outputs, B.to_host(net.forward(x, train=True)))  # dropout is off
    np.testing.assert_allclose(net.predict(x, batch_size=7), outputs, rtol=1e-6, atol=1e-7)


def test_predict_accepts_a_list():
    net = classifier()
    x, _ = blobs()
    np.testing.assert_array_equal(net.predict(x[:5].tolist()), net.predict(x[:5]))


def test_evaluate_gives_loss_accuracy_and_confusion(fp32):
    x, y = blobs()
    net = classifier()  # untrained, so it makes mistakes and the orientation matters
    predicted = net.predict(x).argmax(axis=1)
    result = net.evaluate(x, y, batch_size=7)
    expected = np.zeros((3, 3), dtype=np.int64)
    for t, p in zip(y, predicted):
        expected[t, p] += 1
    assert expected.trace() < len(y)
    np.testing.assert_array_equal(result["confusion"], expected)  # rows = targets
    assert result["confusion"].sum() == len(y)
    assert result["accuracy"] == pytest.approx(np.trace(result["confusion"]) / len(y))
    full_batch_loss = SoftmaxCrossEntropy().forward(fp32.asarray(net.predict(x)), fp32.asarray(y))
    assert result["loss"] == pytest.approx(float(full_batch_loss), rel=1e-5)


def test_evaluate_binary_confusion_is_two_by_two(fp32):
    x, ids = _binary_blobs()
    net = Network([Dense(4, 1), Sigmoid()], BinaryCrossEntropy())
    result = net.evaluate(x, ids.astype(float).reshape(-1, 1))
    assert result["confusion"].shape == (2, 2)
    assert result["confusion"].sum() == len(ids)


# -- summary -----------------------------------------------------------------------------------
def test_summary_lists_layers_shapes_and_parameter_counts():
    net = Network([Dense(4, 8), ReLU(), Dense(8, 3)], SoftmaxCrossEntropy())
    text = str(net.summary())
    lines = text.splitlines()
    assert lines[2].split() == ["0", "Dense(4->8)", "(8,)", "40"]
    assert lines[3].split() == ["1", "ReLU()", "(8,)", "0"]
    assert lines[4].split() == ["2", "Dense(8->3)", "(3,)", "27"]
    assert "parameters: 67" in text
    assert "input shape: (4,)" in text
    assert "SoftmaxCrossEntropy()" in text
    assert net.n_params() == 67
    assert repr(net.summary()) == text  # shown as text in a notebook


def test_summary_of_mismatched_layers_names_the_layer_and_shapes():
    net = Network([Dense(4, 8), Dense(5, 2)])
    with pytest.raises(ValueError) as info:
        net.summary()
    message = str(info.value)
    assert "layer 1" in message and "Dense(5->2)" in message
    assert "(N, 5)" in message and "got (N, 8)" in message


def test_summary_starting_with_flatten_needs_the_input_shape():
    net = Network([Flatten(), Dense(12, 3)])
    without = str(net.summary())
    assert "? (pass input_shape=...)" in without
    assert without.splitlines()[2].split() == ["0", "Flatten()", "?", "0"]
    with_shape = str(net.summary(input_shape=(3, 4)))
    assert with_shape.splitlines()[2].split() == ["0", "Flatten()", "(12,)", "0"]
    assert with_shape.splitlines()[3].split() == ["1", "Dense(12->3)", "(3,)", "39"]
    with pytest.raises(ValueError, match="layer 1"):
        net.summary(input_shape=(3, 5))


# -- backend switches --------------------------------------------------------------------------
def test_switching_precision_casts_the_parameters(backend_name):
    nn.use(backend_name, "fp32", seed=0)
    x, y = blobs()
    net = classifier()
    assert net.layers[0].params["W"].dtype == np.float32
    nn.use(backend_name, "fp64")
    assert net.forward(x).dtype == np.float64
    assert all(layer.params[name].dtype == np.float64 for layer, name in net.parameters())
    history = net.fit(x, y, epochs=2, optimizer=SGD(0.1, momentum=0.9), progress=False)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert all(layer.params[name].dtype == np.float64 for layer, name in net.parameters())
    nn.use(backend_name, "mixed")
    assert net.forward(x).dtype == np.float16
    assert all(layer.params[name].dtype == np.float32 for layer, name in net.parameters())


# -- save and load ----------------------------------------------------------------------------
def configured_network():
    return Network([Dense(4, 8), Sigmoid(beta=2.5), Dropout(0.3), Dense(8, 8), LeakyReLU(0.2),
                    Dense(8, 3)], BinaryCrossEntropy(from_logits=True))


def test_save_and_load_round_trip(tmp_path):
    x, _ = blobs()
    net = configured_network()
    path = net.save(tmp_path / "model.npz")
    loaded = Network.load(path)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    assert repr(loaded) == repr(net)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in net.layers]
    assert loaded.layers[1].beta == 2.5
    assert loaded.layers[2].rate == 0.3
    assert loaded.layers[4].alpha == 0.2
    assert isinstance(loaded.loss, BinaryCrossEntropy) and loaded.loss.from_logits is True
    assert_same_weights(weights(loaded), weights(net))


def test_saved_file_is_a_plain_npz_without_pickles(tmp_path):
    net = configured_network()
    path = net.save(tmp_path / "model.npz")
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as archive:
        assert set(archive.files) == {"__architecture__", "0.W", "0.b", "3.W", "3.b", "5.W", "5.b"}
        arch = json.loads(str(archive["__architecture__"]))
        np.testing.assert_array_equal(archive["0.W"], net.layers[0].params["W"])
    assert [spec["type"] for spec in arch["layers"]] == [
        "Dense", "Sigmoid", "Dropout", "Dense", "LeakyReLU", "Dense"]
    assert arch["loss"]["type"] == "BinaryCrossEntropy"


def test_save_appends_npz_and_leaves_no_temporary_file(tmp_path):
    path = configured_network().save(tmp_path / "model")
    assert path == tmp_path / "model.npz"
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_save_creates_missing_folders(tmp_path):
    path = configured_network().save(tmp_path / "runs" / "1" / "model.npz")
    assert path.is_file()


def test_saved_file_gets_the_usual_permissions(tmp_path):
    path = configured_network().save(tmp_path / "model.npz")
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_save_overwrites_an_existing_file(tmp_path):
    x, _ = blobs()
    first, second = configured_network(), configured_network()
    path = first.save(tmp_path / "model.npz")
    second.save(path)
    np.testing.assert_array_equal(Network.load(path).predict(x), second.predict(x))
    assert not np.allclose(first.predict(x), second.predict(x))
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    x, _ = blobs()
    first, second = configured_network(), configured_network()
    path = first.save(tmp_path / "model.npz")

    def disk_full(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="No space"):
        second.save(path)
    monkeypatch.undo()
    np.testing.assert_array_equal(Network.load(path).predict(x), first.predict(x))
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_load_in_another_precision(tmp_path):
    x, _ = blobs()
    net = configured_network()
    path = net.save(tmp_path / "model.npz")
    nn.use("numpy", "fp64")
    loaded = Network.load(path)
    assert loaded.layers[0].params["W"].dtype == np.float64
    np.testing.assert_allclose(loaded.predict(x), net.predict(x), rtol=1e-5, atol=1e-6)


# -- damaged model files ------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    """A saved model and its arrays, to be damaged by a test."""
    path = configured_network().save(tmp_path / "model.npz")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return path, arrays


def rewrite(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        Network.load(tmp_path / "nowhere.npz")


def test_load_a_file_that_is_not_an_archive(tmp_path):
    path = tmp_path / "model.npz"
    path.write_text("layers: Dense(4, 8)\n")
    with pytest.raises(ValueError, match="not a readable nn model file"):
        Network.load(path)


def test_load_a_single_npy_array(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.ones((4, 8)))
    with pytest.raises(ValueError, match=r"not a readable nn model file.*\.npy"):
        Network.load(path)


def test_load_a_truncated_file(saved):
    path, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        Network.load(path)


def test_load_an_npz_without_architecture(saved):
    path, arrays = saved
    del arrays["__architecture__"]
    rewrite(path, arrays)
    with pytest.raises(ValueError, match="no '__architecture__' entry"):
        Network.load(path)


def _drop_3W(arrays):
    del arrays["3.W"]


def _set(key, value):
    return lambda arrays: arrays.__setitem__(key, value)


@pytest.mark.parametrize("damage, match", [
    (_drop_3W, r"missing array '3\.W' \(W of Dense\(8->8\)\)"),
    (_set("5.W", np.zeros((8, 4))), r"'5\.W' .*shape \(8, 4\), expected \(8, 3\)"),
    (_set("0.b", np.zeros(8, dtype=np.int64)), r"'0\.b' .*floating point"),
    (_set("6.W", np.zeros((3, 3))), r"unexpected arrays \['6\.W'\]"),
], ids=["missing", "wrong-shape", "integer", "extra"])
def test_load_with_damaged_arrays_names_the_array_and_the_problem(saved, damage, match):
    path, arrays = saved
    damage(arrays)
    rewrite(path, arrays)
    with pytest.raises(ValueError, match=match):
        Network.load(path)


def _edit(change):
    """Apply ``change`` to the parsed architecture record; return its new JSON text."""
    def edit(text):
        arch = json.loads(text)
        change(arch)
        return json.dumps(arch)
    return edit


@pytest.mark.parametrize("edit, match", [
    (_edit(lambda a: a["layers"][1].update(type="Swish")), "unknown layer type 'Swish'"),
    (lambda text: '{"format": "nn-model", "layers": [', "not valid JSON"),
    (_edit(lambda a: a.update(version=99)), "newer nn"),
    (_edit(lambda a: a["layers"][0]["config"].update(n_neurons=3)), "cannot be rebuilt.*n_neurons"),
    (lambda text: '{"format": "nn-model", "version": 1}', "cannot be rebuilt"),
], ids=["unknown-layer", "broken-json", "newer-version", "unknown-argument", "no-layer-list"])
def test_load_with_a_damaged_architecture_record(saved, edit, match):
    path, arrays = saved
    arrays["__architecture__"] = np.array(edit(str(arrays["__architecture__"])))
    rewrite(path, arrays)
    with pytest.raises(ValueError, match=match):
        Network.load(path)


def test_loading_does_not_shift_the_seeded_generator(tmp_path):
    path = classifier().save(tmp_path / "net")
    nn.use("numpy", "fp32", seed=5)
    expected = Dense(4, 3).params["W"].copy()
    nn.use("numpy", "fp32", seed=5)
    Network.load(path)
    np.testing.assert_array_equal(Dense(4, 3).params["W"], expected)


# -- the course-level check ------------------------------------------------------------------
def test_iris_sigmoid_mlp_reaches_95_percent(fp32):
    """The course's 4-8-3 sigmoid MLP with the quadratic error on one-hot targets."""
    x, y = load_iris()
    test = np.arange(len(y)) % 3 == 0  # the file's rows are shuffled: every third is a fair split
    x_train, y_train, x_test, y_test = x[~test], y[~test], x[test], y[test]
    mean = x_train.mean(axis=0)
    scale = np.abs(x_train - mean).max()
    x_train, x_test = (x_train - mean) / scale, (x_test - mean) / scale
    net = Network([Dense(4, 8), Sigmoid(), Dense(8, 3), Sigmoid()], MSE())
    history = net.fit(x_train, one_hot(y_train), epochs=100, batch_size=8,
                      optimizer=SGD(0.5, momentum=0.9), seed=0, progress=False)
    assert history["train_accuracy"][-1] >= 0.95
    result = net.evaluate(x_test, one_hot(y_test))
    assert result["accuracy"] >= 0.95
    assert result["confusion"].sum() == len(y_test) == 50
