"""The radio-sky YOLO practical: normalisation, parameter encoding, targets, the network,
detection, parameter errors, and a short seeded training run."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import nn
from nn.data import make_radio_sky

PRACTICAL = "radio_yolo"


def sky_params(seed, n=40):
    rng = np.random.default_rng(seed)
    bmaj = rng.uniform(3, 20, n)
    bmin = np.maximum(bmaj * rng.uniform(0.3, 1, n), 3)
    return np.stack([rng.uniform(5, 500, n), bmaj, bmin, rng.uniform(0, 180, n)], axis=1)


@pytest.mark.student("normalise")
def test_normalise(module):
    x = np.array([[-4.0, 0.0, 2.0, 400.0]])
    out = module.normalise(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.arcsinh(x / 2), rtol=1e-6)


@pytest.mark.student("encode_params")
def test_encode_params_values(module):
    p = np.array([[10 ** 1.5, 3.0, 3.0, 0.0],           # a point source: all zeros
                  [100.0, 12.0, 6.0, 45.0],             # e = 1/2, 2 pa = 90 degrees
                  [20.0, 8.0, 4.0, 135.0]])             # e = 1/2, 2 pa = 270 degrees
    q = np.asarray(module.encode_params(p))
    assert q.shape == (3, 5)
    np.testing.assert_allclose(q[0], 0, atol=1e-12)
    np.testing.assert_allclose(q[1], [0.5, math.log(4), math.log(2), 0.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(q[2, 3:], [0.0, -0.5], atol=1e-12)


@pytest.mark.student("decode_params")
def test_decode_inverts_encode(module, report):
    p = sky_params(0)
    back = np.asarray(module.decode_params(module.encode_params(p)))
    assert back.shape == p.shape
    err = float(np.abs(back[:, :3] / p[:, :3] - 1).max())
    elongated = p[:, 2] / p[:, 1] < 0.99
    angle = (back[elongated, 3] - p[elongated, 3] + 90) % 180 - 90
    report(rel_error=max(err, float(np.abs(angle).max()) / 180), limit=1e-9)
    assert err < 1e-9
    np.testing.assert_allclose(angle, 0, atol=1e-7)
    assert ((back[:, 3] >= 0) & (back[:, 3] < 180)).all(), "angles in [0, 180)"


@pytest.mark.student("training_targets")
def test_training_targets_drop_faint_sources(module):
    _, targets = make_radio_sky(4, size=64, seed=3, sources_per_image=6)
    out = module.training_targets(targets, min_snr=4.0)
    assert isinstance(out, np.ndarray) and out.dtype == object and len(out) == 4
    for t, o in zip(targets, out):
        keep = module.peak_snr(t["params"]) >= 4.0
        np.testing.assert_array_equal(o["boxes"], t["boxes"][keep])
        np.testing.assert_array_equal(o["classes"], t["classes"][keep])
        np.testing.assert_allclose(o["params"], module.encode_params(t["params"][keep]))
    assert sum(len(o["boxes"]) for o in out) < sum(len(t["boxes"]) for t in targets)


@pytest.mark.student("build_network")
def test_build_network_shapes(module):
    nn.use("numpy", "fp32", seed=0)
    loss = module.make_loss()
    net = module.build_network(loss, width=4)
    assert net.forward(np.zeros((2, 1, 128, 128), np.float32)).shape == (2, loss.channels, 16, 16)
    assert net.forward(np.zeros((1, 1, 64, 40), np.float32)).shape == (1, loss.channels, 8, 5)
    convs = [layer for layer in net.layers if isinstance(layer, nn.layers.Conv2D)]
    assert [c.kernel_size[0] for c in convs] == [3, 3, 3, 3, 1, 1]
    assert [c.out_channels for c in convs][:4] == [4, 8, 16, 32]
    assert sum(isinstance(layer, nn.layers.MaxPool2D) for layer in net.layers) == 3
    b = nn.backends.current().to_host(net.layers[-1].params["b"])
    np.testing.assert_array_equal(b[4::loss.channels_per_prior], -4.0)


class EncodedNet:
    """A stand-in network whose output places given boxes exactly (the inverse activations)."""

    def __init__(self, loss, grid, entries):
        self.raw = np.full((1, loss.channels, *grid), -8.0)
        D = loss.channels_per_prior
        for a, gy, gx, box, obj, cls, q in entries:
            c = self.raw[0, a * D:(a + 1) * D, gy, gx]
            cx = (box[0] + box[2]) / 2 / loss.stride - gx
            cy = (box[1] + box[3]) / 2 / loss.stride - gy
            # t_x, t_y, t_w, t_h, then P and O (both set to obj), classes, params
            c[:6] = [math.log(cx / (1 - cx)), math.log(cy / (1 - cy)),
                     math.log((box[2] - box[0]) / loss.priors[a][0]),
                     math.log((box[3] - box[1]) / loss.priors[a][1]), math.log(obj / (1 - obj)),
                     math.log(obj / (1 - obj))]
            c[6:8] = [3.0, 0.0] if cls == 0 else [0.0, 3.0]
            c[8:] = q
        self.seen = None

    def predict(self, x, batch_size=64):
        self.seen = x
        return self.raw


@pytest.mark.student("decode_params")     # detect is given; it decodes with the student's code
def test_detect_decodes_boxes_and_parameters(module):
    nn.use("numpy", "fp64")
    loss = module.make_loss()
    truth = np.array([[30.0, 12.0, 6.0, 50.0], [8.0, 3.0, 3.0, 0.0]])
    q = module.encode_params(truth)
    entries = [(1, 2, 3, [21.0, 14.0, 31.0, 24.0], 0.9, 1, q[0]),
               (0, 5, 1, [9.0, 41.0, 15.0, 47.0], 0.6, 0, q[1])]
    fake = EncodedNet(loss, (8, 8), entries)
    images = np.full((1, 1, 64, 64), 2.0, np.float32)
    found = module.detect(fake, loss, images)
    np.testing.assert_allclose(fake.seen, np.arcsinh(1.0), rtol=1e-6)
    boxes, scores, classes, params = found[0]
    np.testing.assert_allclose(boxes, [entries[0][3], entries[1][3]], atol=1e-6)
    assert classes.tolist() == [1, 0]
    np.testing.assert_allclose(params[:, :3], truth[:, :3], rtol=1e-9)
    assert params[0, 3] == pytest.approx(50.0)


@pytest.mark.student("parameter_errors")
def test_parameter_errors(module):
    _, targets = make_radio_sky(5, size=64, seed=4, sources_per_image=5, extended_fraction=0.6)
    perfect = [(t["boxes"], np.ones(len(t["boxes"])), t["classes"], t["params"].astype(float))
               for t in targets]
    errors = module.parameter_errors(perfect, targets)
    bright = np.concatenate([module.peak_snr(t["params"]) >= 5 for t in targets])
    assert len(errors["flux"]) == bright.sum() > 5
    for name in ("flux", "bmaj", "bmin", "pa"):
        np.testing.assert_allclose(errors[name], 0, atol=1e-5)
    # a 10 % flux error, and an angle of 179 degrees for a true 1 degree: -2 degrees off
    t = {"boxes": np.array([[10.0, 10.0, 30.0, 20.0]]), "classes": np.array([1]),
         "params": np.array([[200.0, 12.0, 5.0, 1.0]])}
    pred = (t["boxes"], np.array([0.9]), np.array([1]), np.array([[220.0, 12.0, 5.0, 179.0]]))
    errors = module.parameter_errors([pred], [t])
    assert errors["flux"].tolist() == pytest.approx([0.1])
    assert errors["pa"].tolist() == pytest.approx([-2.0])
    # a low score or a poor overlap pairs nothing
    low = (t["boxes"], np.array([0.1]), np.array([1]), pred[3])
    assert len(module.parameter_errors([low], [t])["flux"]) == 0


@functools.lru_cache(maxsize=None)
def short_run(module_file):
    """A seeded training run on 64 x 64 images (about 18 s on one core): mAP@50 reaches
    0.64 to 0.79 (the full practical: 0.9 on 128 x 128 images).

    The run is chaotic: the last bits of its arithmetic (seeds, the order in which a
    product's sums run) change the network it ends with. Measured over seeds 0-3: after 16
    epochs mAP@50 0.54 to 0.69, after 24 epochs 0.64 to 0.79; :data:`SHORT_MAP` sits below
    the second range."""
    from nn.course import load

    practical = load(module_file)
    nn.use("numpy", "fp32", seed=0)
    sky = dict(size=64, sources_per_image=3, extended_fraction=0.5)
    images, targets = make_radio_sky(SHORT_TRAIN, seed=21, **sky)
    loss = practical.make_loss()
    net = practical.build_network(loss)
    net.fit(practical.normalise(images), practical.training_targets(targets),
            epochs=SHORT_EPOCHS, batch_size=16, optimizer=nn.optim.Adam(3e-3), seed=0,
            progress=False)
    test_images, test_targets = make_radio_sky(60, seed=22, **sky)
    return net, loss, test_images, test_targets


SHORT_TRAIN, SHORT_EPOCHS = 1000, 24


@pytest.mark.student("build_network")     # with normalise and training_targets on the way
def test_short_training_run(module, report):
    module.normalise(np.zeros(1))          # a stub raises here, before the training
    net, loss, images, targets = short_run(module.__file__)
    aps, mean = module.evaluate(module.detect(net, loss, images), targets)
    print(f"short run: mAP@50 {mean:.3f}, AP {aps.round(3).tolist()}")
    report(accuracy=mean, threshold=SHORT_MAP)
    assert mean >= SHORT_MAP, f"mAP@50 {mean:.2f} < {SHORT_MAP} after the short training run"


SHORT_MAP = 0.55


@pytest.mark.student("choose_thresholds")
def test_choose_thresholds_on_validation_images(module, report):
    """Explore, graded by outcome: the pair chosen on validation images, applied to other
    images, reaches at least the short run's reference mAP and is no worse than the
    practical's default thresholds there by more than 0.03.

    80 validation images, not fewer: the short run's network changes with the last bits of
    its arithmetic (seeds 0-2, and im2col against Winograd convolutions, gave default mAPs
    from 0.45 to 0.76), and a pair chosen on 40 images then fell up to 0.041 below the
    defaults on the test images (2 of 9 runs past 0.03); on 80, -0.022 to +0.025 (9 of 9)."""
    module.normalise(np.zeros(1))          # a stub raises here, before the training
    net, loss, images, targets = short_run(module.__file__)
    sky = dict(size=64, sources_per_image=3, extended_fraction=0.5)
    valid_images, valid_targets = make_radio_sky(80, seed=23, **sky)
    obj, overlap, valid_map = module.choose_thresholds(net, loss, valid_images, valid_targets)
    assert 0 <= obj <= 1 and 0 <= overlap <= 1
    _, chosen = module.evaluate(module.detect(net, loss, images, obj, overlap), targets)
    _, default = module.evaluate(module.detect(net, loss, images), targets)
    print(f"chosen thresholds ({obj}, {overlap}): validation {valid_map:.3f}, test {chosen:.3f}"
          f" (defaults {default:.3f})")
    report(accuracy=chosen, threshold=SHORT_MAP)
    assert chosen >= SHORT_MAP and chosen >= default - 0.03
    _, best_valid = module.evaluate(module.detect(net, loss, valid_images, obj, overlap),
                                    valid_targets)
    assert valid_map == pytest.approx(best_valid, abs=1e-9), "the mAP of the returned pair"
    # edge case: a single candidate of each is that pair
    single = module.choose_thresholds(net, loss, valid_images[:5], valid_targets[:5], (0.1,), (0.3,))
    assert single[:2] == (0.1, 0.3)
