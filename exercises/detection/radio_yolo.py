# %% [markdown]
# # YOLO on the radio sky: find, classify and measure radio sources in one pass
#
# The sliding-window detector ran its classifier 4,096 times per image and guessed the size
# of every box. A YOLO network looks at the whole image once: a stack of 3x3 convolutions
# and max-poolings brings a 128 x 128 map down to a grid of 16 x 16 cells (each 8 pixels
# wide), then 1x1 convolutions turn the features of each cell into, for each of 3 priors,
# a box, an objectness, 2 class scores and 5 source parameters. `nn.detection.YOLOLoss`
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
    raise NotImplementedError("np.arcsinh of the images divided by 2, as float32")
    return x.astype(np.float32)


def encode_params(params):
    """Source parameters ``(k, 4)`` [flux, bmaj, bmin, pa (degrees)] -> encoded ``(k, 5)``.

    Columns: ``log10(flux) - 1.5``, ``log(bmaj / BEAM)``, ``log(bmin / BEAM)``,
    ``e cos(2 pa)``, ``e sin(2 pa)`` with ``e = 1 - bmin / bmaj``.
    """
    p = np.asarray(params, dtype=np.float64).reshape(-1, 4)
    flux, bmaj, bmin, pa = p.T
    raise NotImplementedError("the five columns of the table, stacked on axis 1 (pa in radians, doubled)")
    return encoded


def decode_params(encoded):
    """Encoded ``(k, 5)`` -> ``(k, 4)`` [flux, bmaj, bmin, pa in [0, 180) degrees].

    The inverse of :func:`encode_params`; the angle is ``atan2(sin, cos) / 2`` (whatever
    the elongation).
    """
    q = np.asarray(encoded, dtype=np.float64).reshape(-1, 5)
    raise NotImplementedError("invert each column; pa = degrees(arctan2(q4, q3)) / 2, wrapped into [0, 180) with % 180")
    return params


def training_targets(targets, min_snr=4.0):
    """The targets the network learns: sources with a peak of at least ``min_snr`` sigma.

    Fainter sources are dropped: the network cannot see them, and asking for them would
    only teach it to fire on noise. Returns an object array (what ``Network.fit`` takes) of
    dicts ``{"boxes", "classes", "params"}`` with encoded params.
    """
    out = []
    for t in targets:
        raise NotImplementedError('keep = peak_snr(t["params"]) >= min_snr; the kept boxes, classes and encoded params')
    return np.array(out, dtype=object)


def build_network(loss, width=8):
    """3x3 convolutions and max-poolings down to stride 8, then 1x1 convolutions.

    ``width`` channels after the first convolution, doubling after each pooling:
    conv3x3(1 -> w) pool, conv3x3(w -> 2w) pool, conv3x3(2w -> 4w) pool,
    conv3x3(4w -> 8w), conv1x1(8w -> 8w), conv1x1(8w -> loss.channels), each but the last
    followed by ``LeakyReLU(0.1)``; padding 1 on the 3x3 convolutions. The objectness
    biases start at -4 (sigmoid 0.02: "nothing here" is the right first guess for nearly
    every box, so the first steps need not learn it).
    """
    w = width
    raise NotImplementedError("the list of layers of the docstring, then nn.Network(layers, loss)")
    bias = nn.backends.current().to_host(net.layers[-1].params["b"]).copy()
    bias[4::loss.channels_per_prior] = -4.0
    net.layers[-1].params["b"] = nn.backends.current().param(bias)
    return net


def make_loss():
    """The YOLO loss of this practical: 3 priors, 2 classes, 5 encoded parameters."""
    from nn.detection import YOLOLoss

    return YOLOLoss(PRIORS, n_classes=2, n_params=5, stride=STRIDE,
                    objectness_target="(1+iou)/2")


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
        raise NotImplementedError("for each bright source: best detection j = argmax; if its IoU > 0.5 append the relative errors of flux, bmaj, bmin, the class, and (elongated extended sources only) the angle error wrapped into [-90, 90)")
    return {key: np.array(value) for key, value in errors.items()}


# %% [markdown]
# ## Training
#
# 1,200 training images (about 7,500 sources above 4 sigma), 200 held-out images. Adam,
# batches of 16.

# %%
if __name__ == "__main__":
    import time

    from nn.course import show
    from nn.data import RADIO_CLASSES, make_radio_sky

    nn.use("numpy", "fp32", seed=0)
    train_images, train_targets = make_radio_sky(1200, seed=1, **SKY)
    test_images, test_targets = make_radio_sky(200, seed=2, **SKY)
    x, y = normalise(train_images), training_targets(train_targets)
    loss = make_loss()
    net = build_network(loss)
    print(net.summary((1, 128, 128)))

    def progress(epoch, history):
        if epoch % 5 == 4:
            _, mean = evaluate(detect(net, loss, test_images[:50]), test_targets[:50])
            parts = ", ".join(f"{k} {v:.3f}" for k, v in loss.parts.items())
            print(f"epoch {epoch + 1}: loss {history['train_loss'][-1]:.3f} ({parts}); "
                  f"mAP@50 on 50 test images {mean:.3f}", flush=True)

    start = time.perf_counter()
    epochs = 20
    history = net.fit(x, y, epochs=epochs, batch_size=16, optimizer=nn.optim.Adam(2e-3),
                      seed=0, progress=False, callback=progress)
    seconds = time.perf_counter() - start
    print(f"training: {seconds:.0f} s, {len(x) * epochs / seconds:.0f} images/s "
          "(the progress evaluations included)")

    # %%
    found = detect(net, loss, test_images)
    aps, mean = evaluate(found, test_targets)
    print(f"held-out images: mAP@50 = {mean:.3f}  "
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

    # %%
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
