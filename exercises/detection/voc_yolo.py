# %% [markdown]
# # PASCAL VOC: a cut-out classifier, a sliding window, then YOLO
#
# **What you will learn:** the detection track of the course on real photographs: how a
# classifier of object cut-outs becomes a detector once it knows "background", why a
# sliding window is slow and guesses box sizes, and how the slides' small YOLO network
# (5 priors on a 9 x 9 grid) does it in one pass, trained with data augmentation that moves
# the boxes with the image. **Estimated time:** 3 to 4 hours (plus training time).
#
# The slides: `shared/course/001_597c6f3b4d88b483.txt`, "Simple classifier using object
# cutouts", "Adding a background class", "Using the new classifier as a sliding window
# detector", "Training a YOLO network on PASCAL VOC" (also in `004_3d9df880d40eb3ff.txt`).
# There, with the 288 x 288 images, the suggested network reaches **mAP@50 ~ 32 %** on the
# 2007 test set after a long GPU training (CIANNA).
#
# **The data.** PASCAL VOC 2007 + 2012 (`nn.data.load_voc`: train on 2007 trainval + 2012
# trainval, test on 2007 test, images resized to 288 x 288 as in the slides; about 3.5 GB to
# download). Without the data (no network, or not yet downloaded) this practical says how to
# get them and runs on a small generated set in the VOC format (coloured shapes named after
# VOC classes), so that every step can be run and checked on a laptop.
#
# **Where nn departs from the slides:** the networks are thinner (and the cut-outs 32 x 32
# instead of 128 x 128) so that they train on a CPU; Adam instead of SGD; the
# augmentation is `nn.data.Augment` with `boxes=True` (Albumentations moving the boxes with
# the image), as the slides' "Advanced data augmentation".

# %%
import numpy as np

import nn
from nn.data import VOC_CLASSES
from nn.layers import Conv2D, GlobalAvgPool, LeakyReLU, MaxPool2D

N_CLASSES = len(VOC_CLASSES)          # 20
BACKGROUND = N_CLASSES                # the 21st class of the cut-out classifier
IMAGE = 288                           # the slides' input size; 9 x 9 cells of 32 pixels
STRIDE = 32
PRIORS = [[24, 24], [48, 64], [96, 176], [144, 80], [256, 192]]   # the slides', for 288 x 288
WINDOWS = ((288, 144, 72), (0, 72, 36))    # the slides' window sizes and strides (288 pixels)


def crop_resize(image, box, size):
    """The part of ``image (C, H, W)`` inside ``box (x1, y1, x2, y2)``, resized (nearest
    pixel) to ``(C, size, size)``. The box is clipped to the image."""
    C, H, W = image.shape
    x1, y1, x2, y2 = np.clip(np.asarray(box, dtype=np.float64), 0, [W, H, W, H])
    cols = np.clip((x1 + (np.arange(size) + 0.5) * (x2 - x1) / size).astype(int), 0, W - 1)
    rows = np.clip((y1 + (np.arange(size) + 0.5) * (y2 - y1) / size).astype(int), 0, H - 1)
    return image[:, rows[:, None], cols[None, :]]


def overlaps_any(box, boxes):
    """True when ``box`` shares some area with one of ``boxes (k, 4)``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    h = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    return bool(((w > 0) & (h > 0)).any())


# %% [markdown]
# ## A. The cut-out classifier, with a background class
#
# The slides' recipe for the training examples: 80 % of the time, a random object of a
# random image, cut out and rescaled; 20 % of the time a *background* example: a random
# square of a starting size placed at random, accepted if it overlaps no object, else
# another position; after a number of rejected positions the size is reduced and the search
# starts again; below a minimum size the example is an empty (zero) image.

# %%
def background_box(boxes, height, width, size, rng, tries=10, min_size=8):
    """A square box of the image that overlaps none of ``boxes`` (★★, slides "Adding a
    background class", steps b to e).

    Parameters
    ----------
    boxes : (k, 4) the objects of the image, pixels
    height, width : the image size
    size : the starting side of the square (at most the smaller image side)
    rng : np.random.Generator, for the positions (top-left corner, integer pixels, the box
        inside the image)
    tries : positions tried at each size; min_size : below this side, give up

    Returns
    -------
    (4,) float array ``(x1, y1, x2, y2)``, or None when no free square was found. Halve the
    side after ``tries`` rejected positions.
    """
    size = int(min(size, height, width))
    raise NotImplementedError("★★ the slides' search: random positions at the current side, accept the first free one, halve the side after too many refusals, stop below the minimum side")
    return box


def cutout_dataset(images, targets, n, size, rng, background_fraction=0.2):
    """Training (or validation) examples of the cut-out classifier (★★, slides "Simple
    classifier using object cutouts" and "Adding a background class").

    Parameters
    ----------
    images : (N, C, H, W) array; targets : N dicts with "boxes" (k, 4) and "classes" (k,)
    n : number of examples; size : side of the cut-outs
    rng : np.random.Generator
    background_fraction : the share of background examples (the slides: 20 %)

    Returns
    -------
    x : (n, C, size, size) float32 cut-outs (:func:`crop_resize`; zeros for a background
        example whose search failed)
    labels : (n,) ints, the object's class or ``BACKGROUND``
    sources : (n, 5) floats: image index and the box that was cut out (a failed
        background search: the box is all -1)

    Each example first draws whether it is background (with the given probability), then a
    random image; an object example then draws one object of that image (an image without
    object gives a background example). A background search starts at a quarter of the
    image's smaller side.
    """
    N, C, H, W = images.shape
    x = np.zeros((n, C, size, size), np.float32)
    labels = np.empty(n, np.int64)
    sources = np.full((n, 5), -1.0)
    raise NotImplementedError("★★ for each example, the draws in the order of the docstring, the cut-out, its label and where it came from")
    return x, labels, sources


def classifier(size=32, width=8):
    """The cut-out classifier: 3x3 convolutions and max-poolings, then a 1x1 convolution to
    21 class scores and a global average (the slides' design, thinner). He init: every
    convolution but the last is followed by a leaky ReLU."""
    w = width
    layers = []
    channels = 3
    for k in range(4):
        layers += [Conv2D(channels, w * 2 ** k, 3, padding=1, init="he"), LeakyReLU(0.1),
                   MaxPool2D(2)]
        channels = w * 2 ** k
    layers += [Conv2D(channels, 2 * channels, 3, padding=1, init="he"), LeakyReLU(0.1),
               Conv2D(2 * channels, N_CLASSES + 1, 1), GlobalAvgPool()]
    return nn.Network(layers, nn.losses.SoftmaxCrossEntropy())


# %% [markdown]
# ## B. The classifier as a sliding-window detector
#
# The slides cut the 288 x 288 image into windows of 3 sizes, 288, 144 and 72 pixels, with
# strides 0 (a single window), 72 and 36: grids of 1 x 1, 3 x 3 and 7 x 7 windows. Each
# window is rescaled to the classifier's input; a window whose best class is an object with
# a probability above a threshold becomes a detection of that class (its score: that
# probability), and non-maximum suppression removes the overlapping ones.

# %%
def window_boxes(height, width, sizes, strides):
    """The windows of a sliding window detector, ``(n, 4)`` boxes ``(x1, y1, x2, y2)`` (★).

    For each size (a square side) and its stride, the windows start at 0 and move by the
    stride while they stay inside the image (the last one may touch the border); a stride of
    0 means a single position, the top-left corner. Sizes in the order given, then rows,
    then columns.
    """
    out = []
    raise NotImplementedError("★ the grid of top-left corners of each size, row by row, and the boxes they start")
    return np.array(out, dtype=np.float64).reshape(-1, 4)


def sliding_window_detect(net, image, windows, size=32, threshold=0.5, nms_threshold=0.4):
    """Detections of one image by the cut-out classifier (★★).

    Parameters
    ----------
    net : the classifier (21 logits); image : (C, H, W); windows : (n, 4) boxes
    size : the classifier's input side; threshold : the smallest class probability kept
    nms_threshold : IoU above which a lower-scored detection *of the same class* goes

    Returns
    -------
    boxes (k, 4), scores (k,), classes (k,): the kept windows, best score first.
    """
    from nn.detection import nms
    from nn.functional import softmax

    raise NotImplementedError("★★ every window cut out and classified in one batch, the windows whose best class is an object above the threshold, then the per-class suppression")
    return boxes, scores, classes


# %% [markdown]
# ## C. YOLO with the slides' small network
#
# The slides' network for 288 x 288 images: five blocks of a 3x3 convolution and a 2x2
# max-pooling (a reduction of 32: a grid of 9 x 9), two more 3x3 convolutions, a 1x1
# convolution with dropout, then the 1x1 convolution whose output is the YOLO cube, with 5
# priors chosen from the box sizes of the data. The loss is `nn.detection.YOLOLoss`
# (equation (14), the practical `yolo_loss`).

# %%
def make_loss(image_size=IMAGE, association="best"):
    """The YOLO loss: the slides' 5 priors (scaled to the image size), 20 classes."""
    from nn.detection import YOLOLoss

    priors = np.array(PRIORS, dtype=np.float64) * image_size / IMAGE
    return YOLOLoss(priors, n_classes=N_CLASSES, stride=STRIDE, association=association,
                    lambda_void=0.5, good_iou=0.6, fiou="iou")


def build_yolo(loss, width=8):
    """The slides' YOLO network, ``width`` channels after the first convolution (★★).

    What it must achieve: from ``(N, 3, H, W)`` images to the raw output
    ``(N, loss.channels, H / 32, W / 32)``, with five 2x2 max-poolings (the slides' stride
    32) between 3x3 convolutions (padding 1) whose widths grow with depth, then 3x3 and 1x1
    convolutions on the grid; the last one gives the YOLO cube, with no activation. Leaky
    ReLUs after the others (with He init for them, as in the CNN chapter).
    """
    w = width
    raise NotImplementedError("★★ the stack of the slides with widths in proportion to width, ending with the convolution to the loss's channels, then the network with the loss")
    B = nn.backends.current()
    bias = B.to_host(net.layers[-1].params["b"]).copy()
    bias[4::loss.channels_per_prior] = -4.0        # P: "nothing here" is the first guess
    bias[5::loss.channels_per_prior] = -4.0        # O
    net.layers[-1].params["b"] = B.param(bias)
    return net


def yolo_targets(targets):
    """The targets YOLO learns: every box that is not *difficult*, as an object array of
    dicts ``{"boxes", "classes"}`` (what ``Network.fit`` takes) (★)."""
    out = []
    raise NotImplementedError("★ for each image, the boxes and classes whose difficult flag is off")
    return np.array(out, dtype=object)


def augmenter(seed=0):
    """Training augmentation with boxes (the slides' "Advanced data augmentation"): flips,
    small shifts and zooms, colour changes. Albumentations moves the boxes with the image."""
    import albumentations as A

    from nn.data import Augment

    return Augment([A.HorizontalFlip(p=0.5),
                    A.Affine(scale=(0.85, 1.15), translate_percent=(-0.1, 0.1), p=0.7),
                    A.ColorJitter(0.3, 0.3, 0.3, 0.05, p=0.7)], boxes=True)


def detect(net, loss, images, objectness_threshold=0.05, nms_threshold=0.45):
    """YOLO detections of each image: a list of ``(boxes, scores, classes)``."""
    raw = net.predict(np.asarray(images, np.float32), batch_size=32)
    boxes, scores, classes, _ = loss.decode(raw, objectness_threshold, nms_threshold)
    return list(zip(boxes, scores, classes))


def evaluate(found, targets):
    """Per-class AP@50 and the mAP over the classes present; difficult boxes do not count."""
    from nn.detection import mean_average_precision

    dets = [(i, int(c), float(s), b) for i, (boxes, scores, classes) in enumerate(found)
            for b, s, c in zip(boxes, scores, classes)]
    truth = {i: (t["boxes"], t["classes"], t.get("difficult", np.zeros(len(t["boxes"]), bool)))
             for i, t in enumerate(targets)}
    return mean_average_precision(dets, truth, n_classes=N_CLASSES, iou_threshold=0.5)


# %% [markdown]
# ## Data: PASCAL VOC, or a small generated set in its format

# %%
TOY_CLASSES = ("car", "dog", "person", "tvmonitor")


def write_toy_voc(root, n_images=120, size=288, seed=0, split="trainval", year="2007"):
    """A small VOC-format folder (JPEG images and XML annotations) under ``root``: on a
    textured background, 1 to 4 objects per image, each a shape and colour of one of
    ``TOY_CLASSES`` (car: red rectangle wider than tall, dog: green ellipse, person: blue
    rectangle taller than wide, tvmonitor: a yellow frame). Returns the ``VOC<year>`` folder."""
    from pathlib import Path

    from PIL import Image

    rng = np.random.default_rng(seed)
    base = Path(root) / "VOCdevkit" / f"VOC{year}"
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    colours = {"car": (220, 40, 40), "dog": (40, 200, 60), "person": (50, 80, 230),
               "tvmonitor": (230, 210, 40)}
    ids = []
    yy, xx = np.mgrid[0:size, 0:size]
    for n in range(n_images):
        image_id = f"{seed:02d}{n:04d}"
        pixels = rng.normal(110, 25, (size, size, 3)) + 30 * np.sin(xx / rng.uniform(8, 30))[..., None]
        objects = []
        for _ in range(rng.integers(1, 5)):
            name = TOY_CLASSES[rng.integers(len(TOY_CLASSES))]
            side = rng.uniform(0.12, 0.5) * size
            w, h = {"car": (side, side * 0.6), "person": (side * 0.45, side),
                    "dog": (side, side * 0.75), "tvmonitor": (side, side * 0.8)}[name]
            x1, y1 = rng.uniform(0, size - w), rng.uniform(0, size - h)
            x2, y2 = x1 + w, y1 + h
            inside = (xx >= x1) & (xx < x2) & (yy >= y1) & (yy < y2)
            if name == "dog":
                inside = ((xx - (x1 + x2) / 2) / (w / 2)) ** 2 + ((yy - (y1 + y2) / 2) / (h / 2)) ** 2 < 1
            elif name == "tvmonitor":
                inner = (xx >= x1 + w / 6) & (xx < x2 - w / 6) & (yy >= y1 + h / 6) & (yy < y2 - h / 6)
                inside &= ~inner
            pixels[inside] = np.array(colours[name]) + rng.normal(0, 12, (inside.sum(), 3))
            objects.append((name, (int(x1) + 1, int(y1) + 1, int(np.ceil(x2)), int(np.ceil(y2)))))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            base / "JPEGImages" / f"{image_id}.jpg", quality=90)
        xml = "".join(
            f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin>"
            f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
            for name, b in objects)
        (base / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><filename>{image_id}.jpg</filename><size><width>{size}</width>"
            f"<height>{size}</height><depth>3</depth></size>{xml}</annotation>")
        ids.append(image_id)
    (base / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return base


def load_data(image_size=IMAGE, toy_size=128):
    """(train images, train targets, test images, test targets, name): VOC 2007+2012 when
    they can be had (images ``image_size`` pixels), else a generated VOC-format set of
    ``toy_size`` pixels (small, so that YOLO trains in minutes on a CPU), saying how to get
    VOC."""
    import tempfile

    from nn.data import load_voc
    from nn.errors import NNError

    try:
        x07, t07 = load_voc(None, "2007", "trainval", size=image_size, progress=True)
        x12, t12 = load_voc(None, "2012", "trainval", size=image_size, progress=True)
        xt, tt = load_voc(None, "2007", "test", size=image_size, progress=True)
        return np.concatenate([x07, x12]), t07 + t12, xt, tt, "PASCAL VOC 2007+2012"
    except (NNError, OSError) as error:
        print(f"PASCAL VOC is not available here ({type(error).__name__}: {error}).\n"
              "To get it: on a machine with internet access run once\n"
              "    python -c \"from nn.data import load_voc; load_voc(year='2007', split='test'); "
              "load_voc(year='2007', split='trainval'); load_voc(year='2012', split='trainval')\"\n"
              "(about 3.5 GB into nn's cache, checked by sha256), or extract the VOC archives "
              "from http://host.robots.ox.ac.uk/pascal/VOC/ and pass their folder as root.\n"
              "Running now on a small generated VOC-format set instead.", flush=True)
    root = tempfile.mkdtemp(prefix="toy_voc_")
    write_toy_voc(root, 300, toy_size, seed=1, split="trainval")
    write_toy_voc(root, 60, toy_size, seed=2, split="test")
    x, t = load_voc(root, "2007", "trainval", size=toy_size)
    xt, tt = load_voc(root, "2007", "test", size=toy_size)
    return x, t, xt, tt, "a generated VOC-format set"


# %% [markdown]
# ## The experiment

# %%
if __name__ == "__main__":
    import time

    nn.use("numpy", "fp32", seed=0)
    x_train, t_train, x_test, t_test, name = load_data()
    on_voc = name.startswith("PASCAL")
    # on VOC: the slides' 288 x 288 and a wider network (hours on a CPU: use a GPU,
    # nn.use("cupy")); on the generated set: 128 x 128 images, a 4 x 4 grid, minutes
    width, epochs = (8, 60) if on_voc else (4, 30)
    print(f"{name}: {len(x_train)} training images, {len(x_test)} test images, "
          f"{sum(len(t['boxes']) for t in t_train)} training objects")
    rng = np.random.default_rng(0)

# %%
if __name__ == "__main__":
    # A. the cut-out classifier with a background class
    xc, yc, _ = cutout_dataset(x_train, t_train, 4000, 32, rng)
    xv, yv, _ = cutout_dataset(x_test, t_test, 800, 32, rng)
    cls = classifier()
    start = time.perf_counter()
    cls.fit(xc, yc, epochs=6, batch_size=64, optimizer=nn.optim.Adam(2e-3), seed=0, progress=False)
    pred = np.asarray(cls.predict(xv)).argmax(axis=1)
    print(f"cut-out classifier: validation accuracy {np.mean(pred == yv):.3f}, background "
          f"recall {np.mean(pred[yv == BACKGROUND] == BACKGROUND):.3f} "
          f"({time.perf_counter() - start:.0f} s)")

# %%
if __name__ == "__main__":
    # B. the sliding window: the slides' 59 windows (scaled to the image size)
    scale = x_test.shape[-1] / IMAGE
    windows = window_boxes(x_test.shape[2], x_test.shape[3], [int(s * scale) for s in WINDOWS[0]],
                           [int(s * scale) for s in WINDOWS[1]])
    start = time.perf_counter()
    found = [sliding_window_detect(cls, image, windows, threshold=0.3) for image in x_test]
    aps, mean = evaluate(found, t_test)
    print(f"sliding window ({len(windows)} windows per image): mAP@50 {mean:.3f} "
          f"({time.perf_counter() - start:.0f} s for {len(x_test)} images)")

# %%
if __name__ == "__main__":
    # C. YOLO, trained with augmentation that moves the boxes
    loss = make_loss(x_train.shape[-1])
    net = build_yolo(loss, width)
    start = time.perf_counter()
    net.fit(x_train, yolo_targets(t_train), epochs=epochs, batch_size=16,
            optimizer=nn.optim.Adam(2e-3), seed=0, augment=augmenter(0), progress=False)
    seconds = time.perf_counter() - start
    aps, mean = evaluate(detect(net, loss, x_test), t_test)
    present = ~np.isnan(aps)
    print(f"YOLO ({loss.channels} output channels, grid {x_test.shape[-1] // STRIDE}): "
          f"mAP@50 {mean:.3f} on the test images (the slides: about 0.32 on VOC 2007 test), "
          f"training {seconds:.0f} s")
    print("  " + "  ".join(f"{VOC_CLASSES[c]} {aps[c]:.2f}" for c in np.flatnonzero(present)))

# %%
if __name__ == "__main__":
    import matplotlib.pyplot as plt

    from nn.course import show
    from nn.detection import plot_detections

    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    for ax, k in zip(axes, range(3)):
        boxes, scores, classes = detect(net, loss, x_test[k:k + 1])[0]
        keep = scores >= 0.3
        plot_detections(x_test[k].transpose(1, 2, 0), boxes[keep], t_test[k]["boxes"], ax=ax,
                        title=f"test image {k}")
    show(fig, "yolo_detections")
