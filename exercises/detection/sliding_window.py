# %% [markdown]
# # A sliding-window detector: a classifier with a background class, slid over the sky
#
# **What you will learn:** how a classifier becomes a detector once it can say
# "background", what a sliding window costs, and why its boxes are poor (it guesses their
# size). **Estimated time:** 1.5 hours, plus a minute of training.
#
# The slides: `shared/course/001_597c6f3b4d88b483.txt`, "Adding a background class" and
# "Using the new classifier as a sliding window detector" (on PASCAL VOC; the practical
# `voc_yolo` follows them there). Here the same idea on the synthetic radio sky, where a
# window is centred on every other pixel rather than on the slides' 3 grids of windows.
#
# The first detectors did not predict boxes at all: they took a **classifier** and asked it,
# at every position of the image, "what is in this window?". Here the classifier sees
# 16 x 16 cut-outs of the synthetic radio sky and answers one of three classes:
#
# * **background** (no source centred in the window),
# * a **point** source (unresolved, the shape of the beam),
# * an **extended** source (a resolved ellipse).
#
# Detection then is:
#
# 1. cut the image into windows every `stride` pixels (padding its borders so that a
#    source near the edge can still sit in the middle of a window);
# 2. classify every window; a window whose point or extended probability is above a
#    threshold is a *hit*, at the window's centre, with that probability as its score;
# 3. a source lights up several neighbouring windows, sometimes with different classes:
#    **NMS** over all the hits, whatever their class, keeps the best hit of each group.
#
# A classifier gives no size: each hit gets the typical box of its class (the beam for a
# point source, the median box of the extended sources of the training set). We measure
# AP@50 per class, with the sources fainter than 5 sigma marked difficult, and compare with
# the YOLO detector of the next practical, which learns sizes and evaluates its whole image
# in one pass instead of re-running the classifier on 4,096 overlapping windows.

# %%
import numpy as np

BACKGROUND, POINT, EXTENDED = 0, 1, 2
BEAM = 3.0                  # make_radio_sky's default beam, pixels (FWHM)


def peak_snr(target):
    """Peak signal-to-noise ratio of each source: ``flux * beam² / (bmaj * bmin)`` (noise 1)."""
    p = target["params"]
    return p[:, 0] * BEAM ** 2 / (p[:, 1] * p[:, 2])


def extract_windows(image, size, stride):
    """All the ``size x size`` windows of a 2D image, every ``stride`` pixels.

    The image is first padded with ``size // 2`` zeros on each side, so that window ``k``
    is centred on the pixel corner ``(x, y) = (i * stride, j * stride)`` of the original
    image, for every ``i, j`` with ``x, y`` in ``[0, W)`` and ``[0, H)``.

    Parameters
    ----------
    image : (H, W) array
    size, stride : int

    Returns
    -------
    windows : (K, size, size) array, rows of windows first (``j`` slow, ``i`` fast)
    centres : (K, 2) array of the ``(x, y)`` centre of each window, pixels
    """
    H, W = image.shape
    half = size // 2
    padded = np.pad(np.asarray(image, dtype=np.float32), half)
    ys = np.arange(0, H, stride)
    xs = np.arange(0, W, stride)
    raise NotImplementedError("★ the windows of the padded image that start at each pair of rows and columns (rows slow), and their centres in the original image, in the same order")
    return windows, centres


def hits_to_detections(probs, centres, box_sizes, threshold):
    """Windows whose point or extended probability is at least ``threshold``, as boxes.

    Parameters
    ----------
    probs : (K, 3) class probabilities of the windows (background, point, extended)
    centres : (K, 2) window centres ``(x, y)``
    box_sizes : dict {POINT: (w, h), EXTENDED: (w, h)}, the box of a hit of each class
    threshold : float

    Returns
    -------
    boxes (k, 4), scores (k,), classes (k,) where the class is 0 (point) or 1 (extended),
    the source class with the larger probability. A window gives at most one detection.
    """
    probs = np.asarray(probs, dtype=np.float64)
    raise NotImplementedError("★★ for each window, the more probable of the two source classes; the windows where its probability reaches the threshold become boxes of that class's size centred on them")
    return boxes, scores, classes


def detect(classify, image, box_sizes, size=16, stride=2, threshold=0.5, nms_threshold=0.1):
    """Slide the classifier over the image and return its detections after NMS.

    Parameters
    ----------
    classify : callable, windows ``(K, 1, size, size)`` -> probabilities ``(K, 3)``
    image : (H, W) array
    box_sizes, threshold : see :func:`hits_to_detections`
    size, stride : the windows, see :func:`extract_windows`
    nms_threshold : IoU above which a hit suppresses a weaker hit, of any class (a source
        has one class: its windows must not give a point *and* an extended detection).
        Low, 0.1: two 6 x 6 boxes 2 pixels apart overlap by only 0.29, and real sources
        seldom overlap

    Returns
    -------
    boxes (k, 4), scores (k,), classes (k,), best score first
    """
    from nn.detection import nms

    raise NotImplementedError("★★ the windows and their class probabilities (the classifier expects a channel axis), the hits, then one suppression over all the hits whatever their class")
    return boxes, scores, classes


def make_cutouts(images, targets, size=16, per_source=2, n_background=None, min_snr=4.0,
                 jitter=1.0, seed=0):
    """Training windows: centred (with a little jitter) on sources, or on empty sky.

    Sources fainter than ``min_snr`` give no positive window (a classifier cannot learn what
    it cannot see). Background windows are at least ``size / 2`` pixels from every source
    centre, and a quarter of them at 3 to 8 pixels from one: near misses, so that a window
    that is off a source by more than the jitter learns to say "background". Returns ``x (M, 1, size, size)`` float32 and labels ``(M,)``.
    """
    rng = np.random.default_rng(seed)
    half = size // 2
    x, y = [], []
    for image, t in zip(images, targets):
        padded = np.pad(image[0], half)
        H, W = image.shape[1:]
        centres = t["centers"]
        bright = peak_snr(t) >= min_snr
        for (cx, cy), c in zip(centres[bright], t["classes"][bright]):
            for _ in range(per_source):
                px, py = np.rint([cx, cy] + rng.uniform(-jitter, jitter, 2)).astype(int)
                if 0 <= px < W and 0 <= py < H:
                    x.append(padded[py:py + size, px:px + size])
                    y.append(POINT if c == 0 else EXTENDED)
        wanted = per_source * max(len(centres), 4) if n_background is None else n_background
        found = 0
        for _ in range(50 * wanted):
            if found == wanted:
                break
            if found < wanted // 4 and len(centres):
                k = rng.integers(len(centres))
                angle, r = rng.uniform(0, 2 * np.pi), rng.uniform(3, 8)
                px, py = np.rint(centres[k] + r * np.array([np.cos(angle), np.sin(angle)])).astype(int)
            else:
                px, py = rng.integers(0, W), rng.integers(0, H)
            if not (0 <= px < W and 0 <= py < H):
                continue
            d = np.hypot(*(centres - [px, py]).T) if len(centres) else np.array([np.inf])
            if d.min() >= (3 if found < wanted // 4 else half):
                x.append(padded[py:py + size, px:px + size])
                y.append(BACKGROUND)
                found += 1
    return np.arcsinh(np.array(x, dtype=np.float32)[:, None]), np.array(y)


def evaluate(detections_per_image, targets):
    """Per-class AP@50 and mAP, sources fainter than 5 sigma difficult."""
    from nn.detection import mean_average_precision

    dets = [(i, int(c), float(s), b) for i, (boxes, scores, classes) in enumerate(detections_per_image)
            for b, s, c in zip(boxes, scores, classes)]
    truth = {i: (t["boxes"], t["classes"], peak_snr(t) < 5) for i, t in enumerate(targets)}
    return mean_average_precision(dets, truth, n_classes=2, iou_threshold=0.5)


def classifier():
    """A small convolutional classifier of 16 x 16 windows into 3 classes (logits)."""
    import nn
    from nn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU

    # He init for the layers followed by a ReLU (the library's default is Xavier)
    return nn.Network([Conv2D(1, 8, 3, padding=1, init="he"), ReLU(), MaxPool2D(2),
                       Conv2D(8, 16, 3, padding=1, init="he"), ReLU(), MaxPool2D(2), Flatten(),
                       Dense(16 * 4 * 4, 32, init="he"), ReLU(), Dense(32, 3)],
                      nn.losses.SoftmaxCrossEntropy())


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# %% [markdown]
# ## The experiment
#
# 300 training images of 128 x 128 pixels give the cut-outs; 40 other images are searched.

# %%
if __name__ == "__main__":
    import time

    import nn
    from nn.course import show
    from nn.data import RADIO_CLASSES, make_radio_sky
    from nn.detection import plot_detections
    from nn.metrics import print_confusion

    nn.use("numpy", "fp32", seed=0)
    sky = dict(size=128, sources_per_image=8, extended_fraction=0.5)
    train_images, train_targets = make_radio_sky(300, seed=1, **sky)
    test_images, test_targets = make_radio_sky(40, seed=2, **sky)
    x, y = make_cutouts(train_images, train_targets, seed=0)
    x_valid, y_valid = make_cutouts(test_images, test_targets, seed=1)
    print(f"{len(x)} training windows: {np.bincount(y).tolist()} (background, point, extended)")

# %%
if __name__ == "__main__":
    net = classifier()
    start = time.perf_counter()
    net.fit(x, y, epochs=8, batch_size=64, optimizer=nn.optim.Adam(2e-3), seed=0,
            valid=(x_valid, y_valid))
    print(f"trained in {time.perf_counter() - start:.1f} s")
    result = net.evaluate(x_valid, y_valid)
    print(f"window accuracy on held-out images: {result['accuracy']:.3f}")
    print_confusion(result["confusion"], ["background", "point", "extended"])

# %%
if __name__ == "__main__":
    # the box of a hit: the beam for a point source, the median extended box
    extended = np.concatenate([t["boxes"][t["classes"] == 1] for t in train_targets])
    box_sizes = {POINT: (2 * BEAM, 2 * BEAM),
                 EXTENDED: tuple(np.median(extended[:, 2:] - extended[:, :2], axis=0))}

    def classify(windows):
        return softmax(net.predict(np.arcsinh(windows), batch_size=1024))

    start = time.perf_counter()
    found = [detect(classify, image[0], box_sizes) for image in test_images]
    seconds = time.perf_counter() - start
    print(f"searched {len(test_images)} images in {seconds:.1f} s "
          f"({seconds / len(test_images) * 1e3:.0f} ms per image, "
          f"{len(extract_windows(test_images[0, 0], 16, 2)[0])} windows each)")
    aps, mean = evaluate(found, test_targets)
    for name, ap in zip(RADIO_CLASSES, aps):
        print(f"AP@50 {name:<9} {ap:.3f}")
    print(f"mAP@50 {mean:.3f}  (sources above 5 sigma; fainter ones are difficult)")

# %%
if __name__ == "__main__":
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, k in zip(axes, range(2)):
        boxes, scores, classes = found[k]
        plot_detections(np.arcsinh(test_images[k, 0]), boxes, test_targets[k]["boxes"], ax=ax,
                        title=f"test image {k}: red found, green dashed true")
    show(fig, "detections")
