# %% [markdown]
# # Classic image filters with your own 2D convolution
#
# **What you will learn.** What a convolution filter computes, pixel by pixel; the difference
# between the cross-correlation a CNN computes and the convolution of mathematics; how
# padding and stride set the size of the output; how to compute a filter with a loop over
# the kernel's offsets instead of the image's pixels; and what the slides' classic kernels
# (sharpen, Gaussian blur, edge detector, axis elevation) do to an image.
#
# **Estimated time:** 1 h 30 (★ a few minutes, ★★ up to half an hour, ★★★ longer).
#
# Slides: the doctoral course (`000_b388954048d25251.txt`), "Convolution filter", "Filter
# effect examples" and "Convolutional Neural Networks"; the lecture on convolutional networks
# (`003_34b0db9ed1061ff1.txt`), "Discrete convolution" and "2-D convolution" (strides,
# "Size_output = Size_input - Size_kernel + 1").
#
# A convolution layer slides a small grid of weights, the **kernel**, over an image. At each
# position it multiplies the pixels under the kernel by the weights and adds the products:
# one neuron whose weights are the kernel, applied at every position. For an image ``x`` of
# ``H x W`` pixels and a kernel ``k`` of ``kh x kw`` weights, the output pixel ``(i, j)`` is
#
#     y[i, j] = sum over a < kh, b < kw of  k[a, b] * x[s*i + a, s*j + b]
#
# with ``s`` the **stride** (the step between two positions of the kernel). This is, strictly
# speaking, a **cross-correlation**. The convolution of mathematics (the slides' discrete
# convolution) flips the kernel first,
#
#     (x * k)[i, j] = sum over a, b of  k[a, b] * x[i - a, j - b]
#
# that is, the cross-correlation of ``x`` with the kernel turned by 180 degrees (the output
# index is then counted from the window's last pixel, not its first), which makes it
# commutative (``x * k = k * x``) and makes a single bright pixel (an impulse) come out as
# the kernel itself. A CNN learns its kernels, so whether they are flipped makes no
# difference to what it can learn: every deep-learning library (PyTorch, Keras, nn) computes
# the cross-correlation and calls it convolution. For a symmetric kernel (a blur) both are
# the same; for an asymmetric one (axis elevation) they differ by the flip.
#
# **Padding.** Without it, the kernel must fit inside the image, and the output is smaller:
# ``H - kh + 1`` rows, as on the slide. Adding ``p`` rows and columns of zeros on every side,
# and moving by ``s`` pixels, gives
#
#     OH = (H + 2p - kh) // s + 1        OW = (W + 2p - kw) // s + 1
#
# For an odd kernel, ``p = kh // 2`` and ``s = 1`` keep the size of the image ("same").
#
# **How to compute it fast.** Looping over the output pixels is slow in Python (a 600 x 512
# image has 300 000 of them). Loop over the **kernel offsets** instead: for one offset
# ``(a, b)``, the pixels that this weight multiplies, for *every* output position at once,
# form a regular grid of the padded image (every ``s``-th row and column, starting at
# ``(a, b)``): one strided slice, an ``OH x OW`` array. Work out where that slice starts and
# stops. The output is then ``kh * kw`` array operations (25 for a 5 x 5 kernel), whatever
# the size of the image.
#
# **The slides' classic kernels** ("Filter effect examples"), all 3 x 3:
#
# | name | kernel | what it does |
# |---|---|---|
# | sharpen | ``[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]`` | adds to each pixel its difference with its 4 neighbours |
# | Gaussian blur | ``[[1, 2, 1], [2, 4, 2], [1, 2, 1]] / 16`` | a weighted local mean, weights decreasing with the distance |
# | edge detector | ``[[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]`` | the pixel minus its 8 neighbours: 0 on flat regions and on linear ramps, large across edges |
# | axis elevation | ``[[-1, -1, -1], [0, 0, 0], [1, 1, 1]]`` | the row below minus the row above: a vertical derivative, as if the image were lit from above |
#
# and two more, named for what they are: **Sobel x**, ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]``,
# the horizontal derivative (smoothed vertically), which finds vertical edges; and
# **emboss**, ``[[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]``, the image plus its derivative along
# the diagonal (a relief lit from the top-left corner). The slide's blur is a Gaussian
# sampled on 3 x 3 pixels; ``gaussian_kernel`` makes one of any size and width.
#
# A kernel that sums to 1 keeps the mean brightness of flat regions (blur, sharpen, emboss);
# one that sums to 0 returns 0 there (the edge detector, axis elevation, Sobel).
#
# You write ``correlate2d`` (what a CNN layer computes), ``convolve2d`` (the flip),
# ``gaussian_kernel`` and ``classic_kernels``. The experiment applies them to a photograph of
# Grace Hopper (shipped with matplotlib) and to a Fashion-MNIST image (the slides use MNIST
# digits; nn uses Fashion-MNIST, or its bundled sample when offline).

# %%
import numpy as np


def correlate2d(image, kernel, stride=1, padding=0):
    """Cross-correlation of a 2D ``image`` with a 2D ``kernel`` (what a CNN calls convolution).

    Difficulty ★★.

    Parameters
    ----------
    image : (H, W) array, any numeric dtype (uint8 images included)
    kernel : (kh, kw) array, any size up to the padded image (non-square allowed)
    stride : int >= 1, the step between two positions of the kernel
    padding : int >= 0, rows and columns of zeros added on every side of the image

    Returns
    -------
    (OH, OW) float array, ``OH = (H + 2 padding - kh) // stride + 1`` (``OW`` with ``W``)::

        y[i, j] = sum over a, b of kernel[a, b] * padded[stride*i + a, stride*j + b]

    computed with one loop over the kernel offsets (see "How to compute it fast" above), not
    over the output pixels. The sums are done in floating point: a uint8 photograph would
    overflow and wrap around in its own type.
    """
    image, kernel = np.asarray(image), np.asarray(kernel)
    if image.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"correlate2d: image and kernel must be 2D, got shapes {image.shape} "
                         f"and {kernel.shape}")
    H, W = image.shape
    kh, kw = kernel.shape
    if kh > H + 2 * padding or kw > W + 2 * padding:
        raise ValueError(f"correlate2d: a {kh}x{kw} kernel does not fit in the {H}x{W} image "
                         f"padded by {padding}; use more padding or a smaller kernel")
    raise NotImplementedError("★★ the output size, the image padded with zeros in floating point, then for every kernel offset add its weight times the strided slice of the padded image that this offset sees")
    return y


def convolve2d(image, kernel, stride=1, padding=0):
    """The true 2D convolution: the cross-correlation with the kernel turned by 180 degrees.

    Difficulty ★. Same parameters and output shape as :func:`correlate2d`::

        y[i, j] = sum over a, b of kernel[kh-1-a, kw-1-b] * padded[stride*i + a, stride*j + b]

    With ``padding = kernel size - 1`` on a square kernel ("full" mode), an impulse image
    gives the kernel back, and ``convolve2d(x, k)`` equals ``convolve2d(k, x)``.
    """
    raise NotImplementedError("★ reuse your cross-correlation, with the kernel reversed along both of its axes")
    return y


def gaussian_kernel(size, sigma):
    """A ``size x size`` Gaussian blur kernel of width ``sigma`` (pixels), summing to 1.

    Difficulty ★. With ``c = (size - 1) / 2`` the centre (between two pixels for an even
    ``size``)::

        k[u, v] = exp(-((u - c)² + (v - c)²) / (2 sigma²)) / (sum of all those values)

    Returns
    -------
    (size, size) float64 array, symmetric, largest at the centre.
    """
    raise NotImplementedError("★ the offsets of the rows and columns from the centre, the Gaussian of the squared distance for every pair, normalised so that the weights add up to 1 (no loop needed: an outer sum)")
    return k


def classic_kernels():
    """The slides' classic kernels and two more, by name (see the table at the top).

    Difficulty ★.

    Returns
    -------
    dict name -> (3, 3) float64 array, with the keys
        ``"sharpen"``, ``"gaussian blur"``, ``"edge detector"`` and ``"axis elevation"``
        (the four matrices of the slides' "Filter effect examples", the blur with its
        1/16), ``"sobel x"`` (positive on the right: it responds > 0 where the image gets
        brighter to the right, under :func:`correlate2d`) and ``"emboss"``.
    """
    raise NotImplementedError("★ the six matrices of the table at the top of the practical, as float arrays, in a dictionary keyed by the names of the docstring")
    return kernels


def greyscale(rgb):
    """An ``(H, W, 3)`` uint8 RGB photo as an ``(H, W)`` float image in [0, 1] (ITU-R 601 luma)."""
    return np.asarray(rgb[..., :3], dtype=np.float64) @ np.array([0.299, 0.587, 0.114]) / 255


def for_display(y, kernel):
    """A filtered image ``y`` in [0, 1] for display.

    A kernel summing to 1 keeps the grey levels: ``y`` clipped to [0, 1]. One summing to 0
    (an edge detector) gives signed values around 0: 0 becomes mid-grey and the largest
    responses (the 99.5th percentile of ``|y|``) black and white.
    """
    if abs(float(np.sum(kernel))) > 1e-9:
        return np.clip(y, 0.0, 1.0)
    scale = max(float(np.percentile(np.abs(y), 99.5)), 1e-12)
    return np.clip(0.5 + y / (2 * scale), 0.0, 1.0)


def show_side_by_side(images, titles, suptitle, cols=3):
    """A grid of grey images in [0, 1] (black 0, white 1) with their titles."""
    import matplotlib.pyplot as plt

    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
        ax.set_title(title, fontsize=10)
    fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


# %% [markdown]
# ## The kernels on a photograph
#
# Grace Hopper, 600 x 512 pixels, in grey levels. Each kernel is applied with
# ``padding = size // 2``, so every result keeps the size of the photo. The kernels that sum
# to 0 (edge detector, axis elevation, Sobel x) give signed values (dark on one side of an
# edge, bright on the other): they are shown with 0 as mid-grey (``for_display``).

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt
    from matplotlib import cbook

    from nn.course import show

    photo = greyscale(plt.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    kernels = classic_kernels()
    for name, k in kernels.items():
        print(f"{name:14s} {k.shape[0]}x{k.shape[1]}, sum of the weights {k.sum():+.2f}")

    start = time.perf_counter()
    filtered = {name: correlate2d(photo, k, padding=k.shape[0] // 2) for name, k in kernels.items()}
    seconds = time.perf_counter() - start
    print(f"\n{len(kernels)} filters on {photo.shape[0]}x{photo.shape[1]} pixels in "
          f"{1000 * seconds:.0f} ms (one strided slice per kernel offset)")
    shown = [for_display(y, k) for y, k in zip(filtered.values(), kernels.values())]
    show(show_side_by_side([photo, *shown], ["original", *filtered],
                           "Grace Hopper, filtered with correlate2d"), "grace_hopper")

# %% [markdown]
# A 3 x 3 blur barely shows on a photo of this size. Blurring harder (a wider Gaussian)
# and subtracting the blur from the image leaves only the fine details: the **unsharp mask**,
# whose sum with the image is a stronger, tunable version of "sharpen". Near the border the
# wide blur averages in the zeros of the padding: a dark frame, and a bright one in the
# details. (Libraries offer other paddings, e.g. repeating the edge pixels, for that reason.)

# %%
if __name__ == "__main__":
    wide = gaussian_kernel(15, 4.0)
    blurred = correlate2d(photo, wide, padding=7)
    details = photo - blurred
    show(show_side_by_side([photo, blurred, for_display(details, [0.0]),
                            np.clip(photo + 2 * details, 0, 1)],
                           ["original", "Gaussian blur 15x15, sigma 4", "details = image - blur",
                            "unsharp mask: image + 2 details"],
                           "Blur and unsharp mask", cols=4), "unsharp_mask")

# %% [markdown]
# ## The same kernels on a Fashion-MNIST image
#
# 28 x 28 pixels: each 3 x 3 kernel now covers a visible part of the garment, and the
# edge detectors draw its outline, the kind of feature the first layer of a CNN learns.

# %%
if __name__ == "__main__":
    from nn.data import FASHION_MNIST_CLASSES, load_fashion_mnist

    x_test, y_test = load_fashion_mnist("test")
    index = int(np.flatnonzero(y_test == FASHION_MNIST_CLASSES.index("ankle boot"))[0])
    garment = x_test[index, 0]
    results = [for_display(correlate2d(garment, k, padding=k.shape[0] // 2), k)
               for k in kernels.values()]
    show(show_side_by_side([garment, *results], ["original", *kernels],
                           f"Fashion-MNIST test image {index} ({FASHION_MNIST_CLASSES[y_test[index]]})"),
         "fashion_mnist")

# %% [markdown]
# ## Correlation or convolution?
#
# An impulse (one white pixel) filtered by an asymmetric kernel shows the difference:
# the convolution draws the kernel as it is, the cross-correlation draws it turned by 180
# degrees. On the photo, axis elevation under convolution is exactly minus axis elevation
# under correlation (the kernel turns into its opposite when rotated by 180 degrees; Sobel x
# too), and the Gaussian blur is the same under both (it is symmetric).

# %%
if __name__ == "__main__":
    k = np.array([[1.0, 2.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 4.0]])
    impulse = np.zeros((5, 5))
    impulse[2, 2] = 1.0
    print("kernel:\n", k)
    print("convolution of an impulse:\n", convolve2d(impulse, k, padding=1))
    print("cross-correlation of an impulse:\n", correlate2d(impulse, k, padding=1))
    elevation, blur = kernels["axis elevation"], kernels["gaussian blur"]
    print("axis elevation, convolution == -correlation:",
          np.allclose(convolve2d(photo, elevation, padding=1), -filtered["axis elevation"]))
    print("Gaussian blur, convolution == correlation:",
          np.allclose(convolve2d(photo, blur, padding=1), filtered["gaussian blur"]))

# %% [markdown]
# ## Stride: filtering and subsampling in one step
#
# With ``stride = 4`` only every fourth position is computed: the output is 4 times smaller
# on each axis. Taking every fourth pixel of the photo directly (a 1 x 1 identity kernel
# with stride 4) keeps fine stripes that are no longer resolved and turn into false
# patterns (aliasing); blurring first, in the same pass, avoids them. This is what a strided
# convolution in a CNN does: filter and reduce the resolution at once.

# %%
if __name__ == "__main__":
    small_plain = correlate2d(photo, np.ones((1, 1)), stride=4)
    small_blur = correlate2d(photo, gaussian_kernel(7, 2.0), stride=4, padding=3)
    print(f"stride 4: {photo.shape} -> {small_plain.shape} (1x1 kernel) and {small_blur.shape} "
          "(7x7 kernel, padding 3)")
    show(show_side_by_side([small_plain, small_blur],
                           ["every 4th pixel", "Gaussian 7x7 (sigma 2), stride 4"],
                           "Subsampling by 4", cols=2), "stride")
