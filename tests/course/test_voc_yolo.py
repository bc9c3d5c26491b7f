"""The PASCAL VOC practical, offline: background boxes and cut-outs, sliding windows, the slides'
YOLO network, VOC targets, and a short training run on a small VOC-format folder written here
(JPEG images and XML annotations), read back with load_voc. Nothing touches the network."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import nn
from nn.data import VOC_CLASSES

PRACTICAL = "voc_yolo"
Image = pytest.importorskip("PIL.Image")
pytest.importorskip("albumentations")

CAR, DOG, PERSON = (VOC_CLASSES.index(n) for n in ("car", "dog", "person"))


def write_folder(root, images):
    """A VOCdevkit/VOC2007 folder: {id: (w, h, [(class, (xmin, ymin, xmax, ymax), difficult)])}
    with a bright rectangle per object on a dark image, split 'trainval'."""
    base = root / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for image_id, (w, h, objects) in images.items():
        pixels = np.full((h, w, 3), 30, np.uint8)
        xml = ""
        for name, (x1, y1, x2, y2), difficult in objects:
            pixels[y1 - 1:y2, x1 - 1:x2] = (200, 40 + 50 * VOC_CLASSES.index(name) % 200, 90)
            xml += (f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>"
                    f"<xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>"
                    "</bndbox></object>")
        Image.fromarray(pixels).save(base / "JPEGImages" / f"{image_id}.jpg", quality=95)
        (base / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><filename>{image_id}.jpg</filename><size><width>{w}</width>"
            f"<height>{h}</height><depth>3</depth></size>{xml}</annotation>")
    (base / "ImageSets" / "Main" / "trainval.txt").write_text("\n".join(images) + "\n")


@pytest.fixture
def folder(tmp_path):
    write_folder(tmp_path, {
        "000001": (64, 64, [("car", (1, 1, 20, 16), 0), ("dog", (40, 40, 64, 64), 0)]),
        "000002": (64, 64, [("person", (20, 5, 35, 60), 0), ("car", (45, 10, 60, 20), 1)]),
        "000003": (64, 64, []),
    })
    return tmp_path


@pytest.mark.student("background_box")
def test_background_box_avoids_objects(module):
    rng = np.random.default_rng(0)
    boxes = np.array([[0.0, 0.0, 24.0, 64.0], [24.0, 0.0, 64.0, 12.0]])   # free: x, y >= 24, 12
    for _ in range(20):
        box = module.background_box(boxes, 64, 64, 32, rng)
        assert box is not None
        box = np.asarray(box, dtype=float)
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= 64 and box[3] <= 64, "inside the image"
        assert box[2] - box[0] == box[3] - box[1] <= 32, "a square, at most the starting side"
        assert not module.overlaps_any(box, boxes), f"{box} overlaps an object"
    free = module.background_box(np.zeros((0, 4)), 48, 80, 48, rng)
    np.testing.assert_allclose(np.asarray(free)[2:] - np.asarray(free)[:2], [48, 48])


@pytest.mark.student("background_box")
def test_background_box_gives_up_on_a_full_image(module):
    """Edge case: an object covering the whole image (touching every border)."""
    rng = np.random.default_rng(1)
    assert module.background_box(np.array([[0.0, 0.0, 64.0, 64.0]]), 64, 64, 32, rng) is None


@pytest.mark.student("cutout_dataset")
def test_cutout_dataset_from_a_voc_folder(module, folder, report):
    from nn.data import load_voc

    images, targets = load_voc(folder, "2007", "trainval", size=(64, 64))
    rng = np.random.default_rng(2)
    x, labels, sources = module.cutout_dataset(images, targets, 300, 16, rng)
    assert x.shape == (300, 3, 16, 16) and x.dtype == np.float32
    assert labels.shape == (300,) and sources.shape == (300, 5)
    background = labels == module.BACKGROUND
    # image 3 has no object: its examples are background; the others 20 % of the time
    share = background.mean()
    expected = 0.2 + 0.8 / 3
    report(accuracy=1 - abs(share - expected), threshold=0.9)
    assert abs(share - expected) < 0.1, f"{share:.2f} background examples, expected ~{expected:.2f}"
    for k in range(300):
        i = int(sources[k, 0])
        boxes = np.asarray(targets[i]["boxes"], dtype=float)
        if background[k]:
            if sources[k, 1] >= 0:
                assert not module.overlaps_any(sources[k, 1:], boxes), "background on an object"
                np.testing.assert_array_equal(x[k], module.crop_resize(images[i], sources[k, 1:], 16))
            else:
                assert not x[k].any(), "a failed background search gives a zero image"
        else:
            j = [n for n, b in enumerate(boxes) if np.allclose(b, sources[k, 1:])]
            assert j, "an object example must be cut around one of the image's boxes"
            assert labels[k] == targets[i]["classes"][j[0]]
            np.testing.assert_array_equal(x[k], module.crop_resize(images[i], sources[k, 1:], 16))
    assert set(labels[~background]) == {CAR, DOG, PERSON}


@pytest.mark.student("cutout_dataset")
def test_cutout_dataset_all_background(module):
    """Edge case: background_fraction 1, one image of one object touching the border."""
    images = np.zeros((1, 3, 32, 32), np.float32)
    targets = [{"boxes": np.array([[0.0, 0.0, 16.0, 32.0]]), "classes": np.array([CAR])}]
    x, labels, sources = module.cutout_dataset(images, targets, 20, 8, np.random.default_rng(3),
                                               background_fraction=1.0)
    assert (labels == module.BACKGROUND).all()
    ok = sources[:, 1] >= 0
    assert ok.any() and (sources[ok, 1] >= 16).all(), "backgrounds only right of the object"


@pytest.mark.student("window_boxes")
def test_window_boxes_the_slides_grids(module):
    boxes = np.asarray(module.window_boxes(288, 288, (288, 144, 72), (0, 72, 36)))
    assert boxes.shape == (1 + 9 + 49, 4), "the slides: grids of 1x1, 3x3 and 7x7"
    np.testing.assert_array_equal(boxes[0], [0, 0, 288, 288])
    np.testing.assert_array_equal(boxes[1:4, 0], [0, 72, 144])
    np.testing.assert_array_equal(boxes[9], [144, 144, 288, 288])   # touches the border
    np.testing.assert_array_equal(boxes[-1], [216, 216, 288, 288])
    assert (boxes[:, 2] - boxes[:, 0] == boxes[:, 3] - boxes[:, 1]).all()


@pytest.mark.student("window_boxes")
def test_window_boxes_rectangular_image(module):
    """Edge cases: a non-square image, a window that cannot fit a second time."""
    boxes = np.asarray(module.window_boxes(40, 100, (40, 30), (30, 20)))
    np.testing.assert_array_equal(boxes[:3], [[0, 0, 40, 40], [30, 0, 70, 40], [60, 0, 100, 40]])
    np.testing.assert_array_equal(boxes[3:, 0], [0, 20, 40, 60])
    assert len(boxes) == 3 + 4, "3 windows of 40 (x = 0, 30, 60), 4 of 30 (x = 0, 20, 40, 60)"
    assert (boxes[:, 2] <= 100).all() and (boxes[:, 3] <= 40).all()


class FakeClassifier:
    """Scores a crop by its mean colour: red -> car, green -> dog, dark -> background."""

    def predict(self, crops):
        crops = np.asarray(crops)
        red, green = crops[:, 0].mean(axis=(1, 2)), crops[:, 1].mean(axis=(1, 2))
        logits = np.zeros((len(crops), 21))
        logits[:, CAR] = 10 * (red - 0.5)
        logits[:, DOG] = 10 * (green - 0.5)
        logits[:, 20] = 1.0
        return logits


@pytest.mark.student("sliding_window_detect")
def test_sliding_window_detect_with_a_fake_classifier(module):
    image = np.zeros((3, 64, 64), np.float32)
    image[0, 32:64, 32:64] = 1.0                   # a red square touching the corner
    image[1, 0:16, 0:16] = 1.0                     # a green one in the other corner
    windows = np.asarray(module.window_boxes(64, 64, (32, 16), (16, 16)))
    boxes, scores, classes = module.sliding_window_detect(FakeClassifier(), image, windows,
                                                          size=8, threshold=0.5, nms_threshold=0.4)
    assert list(np.argsort(-scores, kind="stable")) == list(range(len(scores))), "best first"
    assert CAR in classes and DOG in classes and 20 not in classes
    car = boxes[classes == CAR][0]
    np.testing.assert_array_equal(car, [32, 32, 64, 64])
    np.testing.assert_array_equal(boxes[classes == DOG][0], [0, 0, 16, 16])
    from nn.detection import box_iou
    for c in (CAR, DOG):
        same = boxes[classes == c]
        o = box_iou(same, same) - np.eye(len(same))
        assert (o <= 0.4).all(), "NMS leaves no two boxes of a class above the threshold"


@pytest.mark.student("sliding_window_detect")
def test_sliding_window_detect_nothing(module):
    """Edge case: an empty image gives no detection (all background)."""
    windows = np.asarray(module.window_boxes(32, 32, (16,), (8,)))
    boxes, scores, classes = module.sliding_window_detect(
        FakeClassifier(), np.zeros((3, 32, 32), np.float32), windows, size=8)
    assert len(boxes) == len(scores) == len(classes) == 0


@pytest.mark.student("build_yolo")
def test_build_yolo_shapes(module):
    nn.use("numpy", "fp32", seed=0)
    loss = module.make_loss(288)
    assert loss.n_priors == 5 and loss.channels == 5 * (6 + 20)
    net = module.build_yolo(loss, width=2)
    assert net.forward(np.zeros((1, 3, 288, 288), np.float32)).shape == (1, 130, 9, 9), \
        "the slides' grid: 9 x 9 for 288 x 288 images"
    assert net.forward(np.zeros((2, 3, 64, 96), np.float32)).shape == (2, 130, 2, 3)
    assert sum(isinstance(layer, nn.layers.MaxPool2D) for layer in net.layers) == 5
    assert isinstance(net.layers[-1], nn.layers.Conv2D), "the YOLO cube: no activation at the end"
    b = nn.backends.current().to_host(net.layers[-1].params["b"])
    np.testing.assert_array_equal(b[4::loss.channels_per_prior], -4.0)


@pytest.mark.student("yolo_targets")
def test_yolo_targets_drop_difficult(module, folder):
    from nn.data import load_voc

    _, targets = load_voc(folder, "2007", "trainval")
    out = module.yolo_targets(targets)
    assert isinstance(out, np.ndarray) and out.dtype == object and len(out) == 3
    np.testing.assert_array_equal(out[0]["classes"], [CAR, DOG])
    np.testing.assert_array_equal(out[1]["boxes"], [[19, 4, 35, 60]])   # the difficult car goes
    assert len(out[2]["boxes"]) == 0 and out[2]["boxes"].shape[-1] == 4, "an image with no object"


@functools.lru_cache(maxsize=None)
def short_run(module_file, root):
    """YOLO learns 24 generated VOC-format images of 64 x 64 (a 2 x 2 grid) by heart: a
    check of the whole pipeline (load_voc, targets, network, loss, decoding, mAP) in about
    20 s. Measured: mAP@50 0.75 on those images."""
    from nn.course import load
    from nn.data import load_voc

    practical = load(module_file)
    practical.write_toy_voc(root, 24, 64, seed=5, split="trainval")
    x, t = load_voc(root, "2007", "trainval", size=64)
    nn.use("numpy", "fp32", seed=0)
    loss = practical.make_loss(64)
    net = practical.build_yolo(loss, width=4)
    net.fit(x, practical.yolo_targets(t), epochs=SHORT_EPOCHS, batch_size=8,
            optimizer=nn.optim.Adam(3e-3), seed=0, progress=False)
    return practical.evaluate(practical.detect(net, loss, x), t)


SHORT_EPOCHS, SHORT_MAP = 60, 0.5


@pytest.mark.student("build_yolo")
def test_short_yolo_training_on_a_voc_folder(module, report, tmp_path_factory):
    module.yolo_targets([])                # a stub raises here, before the training
    module.build_yolo(module.make_loss(64), width=1)
    aps, mean = short_run(module.__file__, str(tmp_path_factory.mktemp("toy_voc")))
    print(f"short run: mAP@50 {mean:.3f}")
    report(accuracy=mean, threshold=SHORT_MAP)
    assert mean >= SHORT_MAP, f"mAP@50 {mean:.2f} < {SHORT_MAP} after learning 24 images"


@pytest.mark.student("yolo_targets")
def test_augmenter_moves_the_boxes(module, folder):
    """The library-given augmentation keeps boxes inside the images and their classes."""
    from nn.data import load_voc

    x, t = load_voc(folder, "2007", "trainval", size=(64, 64))
    targets = module.yolo_targets(t)
    xa, ta = module.augmenter(0)(x, targets)
    assert xa.shape == x.shape and len(ta) == 3
    for before, after in zip(targets, ta):
        assert len(after["boxes"]) == len(after["classes"]) <= len(before["boxes"])
        assert (after["boxes"] >= 0).all() and (after["boxes"] <= 64).all()
