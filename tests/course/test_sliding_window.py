"""The sliding-window practical: windows, hits to boxes, detection with NMS, and a short
seeded training run of the window classifier."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import nn
from nn.data import make_radio_sky

PRACTICAL = "sliding_window"
BOX_SIZES = {1: (6.0, 6.0), 2: (12.0, 10.0)}


@pytest.mark.student("extract_windows")
@pytest.mark.parametrize("shape, size, stride", [((20, 20), 8, 2), ((17, 23), 6, 3), ((9, 12), 5, 1)])
def test_extract_windows(module, shape, size, stride):
    image = np.random.default_rng(size).normal(size=shape).astype(np.float32)
    windows, centres = module.extract_windows(image, size, stride)
    ys, xs = np.arange(0, shape[0], stride), np.arange(0, shape[1], stride)
    assert np.asarray(windows).shape == (len(ys) * len(xs), size, size)
    np.testing.assert_array_equal(np.asarray(centres), [(x, y) for y in ys for x in xs])
    padded = np.pad(image, size // 2)
    for k in (0, 1, len(xs), len(windows) - 1):
        x, y = np.asarray(centres[k]).astype(int)
        np.testing.assert_array_equal(windows[k], padded[y:y + size, x:x + size])
    # the pixel just right-below the centre of window k is image[y, x]
    x, y = np.asarray(centres[len(xs) + 1]).astype(int)
    assert windows[len(xs) + 1][size // 2, size // 2] == image[y, x]


@pytest.mark.student("extract_windows")
def test_extract_windows_edge_cases(module):
    """A stride larger than the image: one window, at the corner, half in the padding."""
    image = np.arange(35, dtype=np.float32).reshape(5, 7) + 1
    windows, centres = module.extract_windows(image, 4, 10)
    assert np.asarray(windows).shape == (1, 4, 4)
    np.testing.assert_array_equal(np.asarray(centres), [[0, 0]])
    np.testing.assert_array_equal(windows[0][:2], 0), "the top rows are padding"
    np.testing.assert_array_equal(windows[0][2:, 2:], image[:2, :2])


@pytest.mark.student("hits_to_detections")
def test_hits_to_detections_on_the_border_and_ties(module):
    """A hit centred on the image corner gives a box that sticks out of it; a tie between
    point and extended goes to point; a single window."""
    probs = np.array([[0.0, 0.5, 0.5]])
    boxes, scores, classes = module.hits_to_detections(probs, np.array([[0.0, 0.0]]),
                                                       BOX_SIZES, 0.5)
    np.testing.assert_allclose(boxes, [[-3, -3, 3, 3]])
    assert np.asarray(classes).tolist() == [0] and np.asarray(scores).tolist() == [0.5]


@pytest.mark.student("hits_to_detections")
def test_hits_to_detections(module):
    probs = np.array([[0.9, 0.05, 0.05],     # background: no hit
                      [0.1, 0.7, 0.2],       # point, 0.7
                      [0.2, 0.3, 0.5],       # extended, 0.5 (at the threshold: kept)
                      [0.4, 0.35, 0.25]])    # point 0.35: below the threshold
    centres = np.array([[0.0, 0.0], [10.0, 20.0], [30.0, 40.0], [5.0, 5.0]])
    boxes, scores, classes = module.hits_to_detections(probs, centres, BOX_SIZES, 0.5)
    np.testing.assert_allclose(boxes, [[7, 17, 13, 23], [24, 35, 36, 45]])
    np.testing.assert_allclose(scores, [0.7, 0.5])
    assert np.asarray(classes).tolist() == [0, 1], "classes: 0 point, 1 extended"
    boxes, scores, classes = module.hits_to_detections(probs, centres, BOX_SIZES, 0.95)
    assert len(boxes) == len(scores) == len(classes) == 0


def bright_pixel_classifier(windows):
    """A fake classifier: 'point' with a probability that grows with the centre pixel."""
    c = windows.shape[-1] // 2
    value = windows[:, 0, c, c]
    p = 1 / (1 + np.exp(-(value - 5)))
    return np.stack([1 - p, p, np.zeros_like(p)], axis=1)


@pytest.mark.student("detect")
def test_detect_with_a_fake_classifier(module):
    image = np.zeros((32, 32), dtype=np.float32)
    image[8, 8] = 10.0
    image[8, 9] = 8.0         # a neighbour: a weaker hit of the same source, suppressed
    image[24, 20] = 9.0
    boxes, scores, classes = module.detect(bright_pixel_classifier, image, BOX_SIZES, size=8,
                                           stride=1, threshold=0.5)
    np.testing.assert_allclose(boxes, [[5, 5, 11, 11], [17, 21, 23, 27]])
    assert np.asarray(scores)[0] > np.asarray(scores)[1]
    assert np.asarray(classes).tolist() == [0, 0]


@functools.lru_cache(maxsize=None)
def trained_classifier(module_file):
    """The practical's classifier trained for a few seconds on 60 images (seeded)."""
    from nn.course import load

    practical = load(module_file)
    nn.use("numpy", "fp32", seed=0)
    sky = dict(size=64, sources_per_image=3, extended_fraction=0.5)
    images, targets = make_radio_sky(120, seed=11, **sky)
    x, y = practical.make_cutouts(images, targets, seed=0)
    net = practical.classifier()
    net.fit(x, y, epochs=6, batch_size=32, optimizer=nn.optim.Adam(3e-3), seed=0, progress=False)
    return net


@pytest.mark.student("detect")
def test_short_training_run_detects_point_sources(module, report):
    # a stub raises here, before the training
    module.detect(bright_pixel_classifier, np.zeros((8, 8), np.float32), BOX_SIZES, size=4)
    net = trained_classifier(module.__file__)
    images, targets = make_radio_sky(10, seed=12, size=64, sources_per_image=3,
                                     extended_fraction=0.5)

    def classify(windows):
        return module.softmax(net.predict(np.arcsinh(windows), batch_size=2048))

    found = [module.detect(classify, image[0], BOX_SIZES) for image in images]
    aps, _ = module.evaluate(found, targets)
    print(f"AP@50 point {aps[0]:.3f}, extended {aps[1]:.3f}")
    report(accuracy=aps[0], threshold=0.75)
    assert aps[0] >= 0.75, f"AP@50 of point sources {aps[0]:.2f} < 0.75 after a short training"
