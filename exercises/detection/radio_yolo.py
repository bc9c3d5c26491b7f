# %% [markdown]
# # YOLO on the radio sky: find, classify and measure radio sources in one pass
#
# **What you will learn:** to train a YOLO detector end to end (targets, network, loss of
# equation (14), decoding, mAP), to make a network regress physical parameters (periodic
# angles included), to choose the detector's thresholds on a validation set, and how the
# slides' association rule compares with YOLOv2's. **Estimated time:** 2 to 3 hours, plus
# about 10 minutes of training (two networks) on two CPU cores.
#
# The sliding-window detector ran its classifier 4,096 times per image and guessed the size
# of every box. A YOLO network looks at the whole image once: a stack of 3x3 convolutions
# and max-poolings brings a 128 x 128 map down to a grid of 16 x 16 cells (each 8 pixels
# wide), then 1x1 convolutions turn the features of each cell into, for each of 3 priors,
# a box, a probability, an objectness, 2 class scores and 5 source parameters. `nn.detection.YOLOLoss`
# (whose pieces you wrote in the previous practical) trains it.
#
# This is a scaled-down version of the course's suggested architecture for the SKA data
# challenge: the same idea with fewer and thinner layers, so that it trains in minutes on
# two CPU cores.
#
# The parameters of a source are its flux, its axes and its position angle. Networks learn
# numbers of order 1, so we encode them:
#
# | parameter | encoded as |
# |---|---|
# | integrated flux `S` | `log10(S) - 1.5` |
# | major and minor axes (FWHM) | `log(bmaj / beam)`, `log(bmin / beam)` |
# | position angle `pa` in [0, 180) | `e cos(2 pa)`, `e sin(2 pa)` with `e = 1 - bmin / bmaj` |
#
# An angle is periodic (179 degrees is next to 1 degree), so it is given as a point on a
# circle (angle doubled: `pa` and `pa + 180` are the same ellipse), scaled by the
# elongation `e`: a round source, whose angle means nothing, is at the centre and costs
# nothing whatever angle is predicted.
#
# The images are radio maps in units of the noise (1 sigma): the sources span from 5 to 500
# times the noise, so they are compressed with `arcsinh(x / 2)`, nearly linear in the noise
# and logarithmic for bright sources.
#
# Evaluation: AP@50 per class on held-out images, for the sources whose peak is above 5
# sigma; fainter ones are *difficult* (found or not, they do not count). Then the errors on
# the parameters of the sources found.

# %%
import numpy as np

import nn
from nn.layers import Conv2D, LeakyReLU, MaxPool2D

BEAM = 3.0                         # make_radio_sky's beam, pixels (FWHM)
SKY = dict(size=128, sources_per_image=8, extended_fraction=0.5)
PRIORS = [[6.0, 6.0], [11.0, 11.0], [20.0, 20.0]]
STRIDE = 8


def peak_snr(params):
    """Peak signal-to-noise ratio of sources ``(k, 4)`` [flux, bmaj, bmin, pa] (noise 1)."""
    params = np.asarray(params, dtype=np.float64).reshape(-1, 4)
    return params[:, 0] * BEAM ** 2 / (params[:, 1] * params[:, 2])


def normalise(images):
    """Compress the dynamic range of radio maps: ``arcsinh(x / 2)``, float32."""
    raise NotImplementedError("★ the compression of the markdown above, in single precision")
    return x.astype(np.float32)


def encode_params(params):
    """Source parameters ``(k, 4)`` [flux, bmaj, bmin, pa (degrees)] -> encoded ``(k, 5)``.

    Columns: ``log10(flux) - 1.5``, ``log(bmaj / BEAM)``, ``log(bmin / BEAM)``,
    ``e cos(2 pa)``, ``e sin(2 pa)`` with ``e = 1 - bmin / bmaj``.
    """
    p = np.asarray(params, dtype=np.float64).reshape(-1, 4)
    flux, bmaj, bmin, pa = p.T
    raise NotImplementedError("★ the five columns of the table, one row per source (the angle doubled, in radians)")
    return encoded


def decode_params(encoded):
    """Encoded ``(k, 5)`` -> ``(k, 4)`` [flux, bmaj, bmin, pa in [0, 180) degrees].

    The inverse of :func:`encode_params`; the angle is ``atan2(sin, cos) / 2`` (whatever
    the elongation).
    """
    q = np.asarray(encoded, dtype=np.float64).reshape(-1, 5)
    raise NotImplementedError("★★ invert each column of the table; the angle from the point on the circle (the two-argument arctangent), halved, in degrees, wrapped into [0, 180)")
    return params


def training_targets(targets, min_snr=4.0):
    """The targets the network learns: sources with a peak of at least ``min_snr`` sigma.

    Fainter sources are dropped: the network cannot see them, and asking for them would
    only teach it to fire on noise. Returns an object array (what ``Network.fit`` takes) of
    dicts ``{"boxes", "classes", "params"}`` with encoded params.
    """
    out = []
    for t in targets:
        raise NotImplementedError("★ for each image, the sources bright enough, with their boxes, classes and encoded parameters")
    return np.array(out, dtype=object)


def build_network(loss, width=8):
    """The YOLO network of this practical (★★).

    What it must achieve: from ``(N, 1, H, W)`` radio maps to the raw output
    ``(N, loss.channels, H / 8, W / 8)`` (the stride of the loss, 8: three 2x2
    max-poolings), with 3x3 convolutions (padding 1) of ``width`` channels at first, the
    width doubling after each pooling, then 1x1 convolutions on the grid (the slides' YOLO
    networks end this way: the last convolution is the YOLO cube, with no activation).
    ``LeakyReLU(0.1)`` after every other convolution, whose weights then start with He's
    init (``init="he"``; the library's default, Xavier, suits layers without a ReLU). The
    test checks four 3x3 convolutions (widths w, 2w, 4w, 8w) and two 1x1. The biases of
    ``P`` and ``O`` start at -4 (sigmoid 0.02: "nothing here" is the right first guess for
    nearly every box, so the first steps need not learn it); that part is given.
    """
    w = width
    raise NotImplementedError("★★ a stack that meets the docstring's constraints, then the network with the loss")
    bias = nn.backends.current().to_host(net.layers[-1].params["b"]).copy()
    bias[4::loss.channels_per_prior] = -4.0       # P, the probability of a source
    bias[5::loss.channels_per_prior] = -4.0       # O, the objectness
    net.layers[-1].params["b"] = nn.backends.current().param(bias)
    return net


def make_loss(association="best"):
    """The YOLO loss of this practical: 3 priors, 2 classes, 5 encoded parameters.

    ``association="best"`` is the slides' rule (the best predicted box of the target's
    cell), ``"prior"`` YOLOv2's (the prior of the best shape). The objectness target is
    ``(1 + IoU) / 2``, a variant of the slides' fIoU = IoU that never asks less than 1/2
    of a real source.
    """
    from nn.detection import YOLOLoss

    return YOLOLoss(PRIORS, n_classes=2, n_params=5, stride=STRIDE, association=association,
                    fiou="(1+iou)/2")


def detect(net, loss, images, objectness_threshold=0.02, nms_threshold=0.4, batch_size=64):
    """Detections in each image: a list of ``(boxes, scores, classes, params)``.

    The network sees :func:`normalise`-d images; ``loss.decode`` turns its output into
    boxes (objectness above the threshold, per-class NMS); the parameters are decoded with
    :func:`decode_params`. A low objectness threshold keeps the faint candidates that the
    precision-recall curve needs.
    """
    raw = net.predict(normalise(images), batch_size=batch_size)
    boxes, scores, classes, params = loss.decode(raw, objectness_threshold, nms_threshold)
    return [(b, s, c, decode_params(p)) for b, s, c, p in zip(boxes, scores, classes, params)]


def evaluate(found, targets):
    """Per-class AP@50 and mAP; sources fainter than 5 sigma are difficult."""
    from nn.detection import mean_average_precision

    dets = [(i, int(c), float(s), b) for i, (boxes, scores, classes, _) in enumerate(found)
            for b, s, c in zip(boxes, scores, classes)]
    truth = {i: (t["boxes"], t["classes"], peak_snr(t["params"]) < 5)
             for i, t in enumerate(targets)}
    return mean_average_precision(dets, truth, n_classes=2, iou_threshold=0.5)


def choose_thresholds(net, loss, images, targets, objectness_thresholds=(0.005, 0.02, 0.1, 0.3),
                      nms_thresholds=(0.2, 0.3, 0.4, 0.5, 0.6)):
    """Explore (★★, graded by outcome): the objectness and NMS thresholds that maximise the
    mAP@50 on a validation set.

    Parameters
    ----------
    net, loss : the trained network and its YOLOLoss
    images : (n, 1, H, W) validation radio maps (not normalised); targets : their targets
    objectness_thresholds, nms_thresholds : the candidate values to try

    Returns
    -------
    (objectness_threshold, nms_threshold, mAP) : the best pair and the mAP it reaches on
    these images. The test applies your pair to *other* images and checks the mAP there.
    """
    raise NotImplementedError("★★ the network's output once (it does not depend on the thresholds), then every pair of candidates: decode, evaluate, remember the best")
    return best


def parameter_errors(found, targets, min_score=0.3):
    """Errors on the parameters of the sources found, above 5 sigma.

    Each true source above 5 sigma is paired with the detection (score at least
    ``min_score``) that overlaps it most, if their IoU is above 0.5. Returns a dict of
    arrays over the pairs: ``"flux"`` relative error ``(S_pred - S) / S``; ``"bmaj"``,
    ``"bmin"`` relative errors; ``"pa"`` the angle error in degrees, in [-90, 90), for the
    extended sources elongated enough to have an angle (bmin / bmaj < 0.7); and
    ``"classes"`` the true classes of the pairs.
    """
    from nn.detection import box_iou

    errors = {"flux": [], "bmaj": [], "bmin": [], "pa": [], "classes": []}
    for (boxes, scores, _, params), t in zip(found, targets):
        bright = peak_snr(t["params"]) >= 5
        sure = scores >= min_score
        if not bright.any() or not sure.any():
            continue
        overlaps = box_iou(t["boxes"][bright], boxes[sure])
        raise NotImplementedError("★★ for each bright source, the sure detection that overlaps it most; when their IoU is above 0.5, the errors of the docstring (the angle error of an elongated extended source wrapped into [-90, 90) degrees)")
    return {key: np.array(value) for key, value in errors.items()}


# %% [markdown]
# ## Training
#
# 1,200 training images (about 7,500 sources above 4 sigma), 200 held-out images. Adam,
# batches of 16 (the slides train with SGD and momentum; Adam converges in fewer epochs).
# Then the same training with the other association rule, `"prior"`, to compare.

# %%
if __name__ == "__main__":
    import time

    from nn.course import show
    from nn.data import RADIO_CLASSES, make_radio_sky

    train_images, train_targets = make_radio_sky(1200, seed=1, **SKY)
    test_images, test_targets = make_radio_sky(200, seed=2, **SKY)
    valid_images, valid_targets = make_radio_sky(100, seed=3, **SKY)
    x, y = normalise(train_images), training_targets(train_targets)

    def train(association, epochs=20):
        nn.use("numpy", "fp32", seed=0)
        loss = make_loss(association)
        net = build_network(loss)

        def progress(epoch, history):
            if epoch % 5 == 4:
                _, mean = evaluate(detect(net, loss, test_images[:50]), test_targets[:50])
                parts = ", ".join(f"{k} {v:.3f}" for k, v in loss.parts.items())
                print(f"[{association}] epoch {epoch + 1}: loss {history['train_loss'][-1]:.3f} "
                      f"({parts}); mAP@50 on 50 test images {mean:.3f}", flush=True)

        start = time.perf_counter()
        net.fit(x, y, epochs=epochs, batch_size=16, optimizer=nn.optim.Adam(2e-3), seed=0,
                progress=False, callback=progress)
        seconds = time.perf_counter() - start
        print(f"[{association}] training: {seconds:.0f} s, {len(x) * epochs / seconds:.0f} "
              "images/s (the progress evaluations included)")
        return net, loss

    net, loss = train("best")
    print(net.summary((1, 128, 128)))

# %%
if __name__ == "__main__":
    found = detect(net, loss, test_images)
    aps, mean = evaluate(found, test_targets)
    print(f"held-out images, association 'best': mAP@50 = {mean:.3f}  "
          + "  ".join(f"AP {name} {ap:.3f}" for name, ap in zip(RADIO_CLASSES, aps)))
    errors = parameter_errors(found, test_targets)
    point = errors["classes"] == 0
    for name in ("flux", "bmaj", "bmin"):
        e = errors[name]
        print(f"{name:<5} relative error: median |error| {np.median(np.abs(e)):.3f} "
              f"(point {np.median(np.abs(e[point])):.3f}, extended "
              f"{np.median(np.abs(e[~point])):.3f}), bias {np.median(e):+.3f}")
    print(f"angle of elongated extended sources: median |error| "
          f"{np.median(np.abs(errors['pa'])):.1f} degrees over {len(errors['pa'])} sources")

# %% [markdown]
# ## Explore: the thresholds of the detector
#
# The objectness threshold and the NMS threshold are chosen on the validation images,
# never on the test images, then applied to the test images.

# %%
if __name__ == "__main__":
    obj, overlap, valid_map = choose_thresholds(net, loss, valid_images, valid_targets)
    _, tuned = evaluate(detect(net, loss, test_images, obj, overlap), test_targets)
    print(f"validation: best objectness threshold {obj}, NMS threshold {overlap} "
          f"(mAP@50 {valid_map:.3f}); on the test images mAP@50 {tuned:.3f} "
          f"(defaults: {mean:.3f})")

# %% [markdown]
# ## The other association rule
#
# YOLOv2's rule gives each target to the box of the prior with the best shape, whatever
# the network predicts; the slides' rule to the box that predicts it best. Same data,
# same seed, same number of epochs.

# %%
if __name__ == "__main__":
    net_prior, loss_prior = train("prior")
    _, mean_prior = evaluate(detect(net_prior, loss_prior, test_images), test_targets)
    print(f"held-out mAP@50: association 'best' {mean:.3f}, association 'prior' "
          f"{mean_prior:.3f}")

# %%
if __name__ == "__main__":
    import matplotlib.pyplot as plt
    from nn.detection import plot_detections, plot_precision_recall, precision_recall_curve

    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    for ax, k in zip(axes[:2], range(2)):
        boxes, scores, classes, _ = found[k]
        keep = scores >= 0.3
        plot_detections(normalise(test_images[k, 0]), boxes[keep], test_targets[k]["boxes"],
                        ax=ax, title=f"test image {k}")
    fig.suptitle("red: predicted (score > 0.3), green dashed: true sources (all, even below "
                 "5 sigma)")
    for c, name in enumerate(RADIO_CLASSES):
        dets = [(i, s, b) for i, (bb, ss, cc, _) in enumerate(found)
                for b, s, k in zip(bb, ss, cc) if k == c]
        truth = {i: (t["boxes"][t["classes"] == c], peak_snr(t["params"])[t["classes"] == c] < 5)
                 for i, t in enumerate(test_targets)}
        precision, recall, _ = precision_recall_curve(dets, truth)
        plot_precision_recall(precision, recall, ax=axes[2], label=f"{name}: AP {aps[c]:.2f}")
    show(fig, "detections")

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    truth_pred = []
    for (boxes, scores, _, params), t in zip(found, test_targets):
        bright = peak_snr(t["params"]) >= 5
        if bright.any() and len(boxes):
            from nn.detection import box_iou
            o = box_iou(t["boxes"][bright], boxes)
            j = o.argmax(axis=1)
            ok = o[np.arange(len(j)), j] > 0.5
            truth_pred += list(zip(t["params"][bright][ok], params[j[ok]]))
    true_p = np.array([a for a, _ in truth_pred])
    pred_p = np.array([b for _, b in truth_pred])
    for ax, col, name in zip(axes, (0, 1, 2), ("flux", "bmaj (pixels)", "bmin (pixels)")):
        ax.loglog(true_p[:, col], pred_p[:, col], ".", ms=3, alpha=0.5)
        lim = [true_p[:, col].min(), true_p[:, col].max()]
        ax.plot(lim, lim, "k--", lw=1)
        ax.set(xlabel=f"true {name}", ylabel=f"predicted {name}")
    show(fig, "parameters")
