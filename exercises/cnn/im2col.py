# %% [markdown]
# # im2col and col2im by hand
#
# **What you will learn.** How a whole convolution layer becomes one matrix product (the
# im2col transformation of the slides), with the exact layout of the columns that nn uses;
# what the adjoint of a linear map is, and why backpropagation through im2col needs it
# (col2im); how to test an adjoint without writing its matrix.
#
# **Estimated time:** 2 h (★ a few minutes, ★★ up to half an hour, ★★★ longer).
#
# Slides: the doctoral course (`000_b388954048d25251.txt` or `002_89640e05264e4932.txt`),
# "The Im2col transformation", "Learning the filters" and "Convolutional layer complete
# matrix formalism" (X the batched inputs, W the filters, a the activation maps, E_a the
# activation errors, E_x the propagated input errors).
#
# A convolution layer takes a batch ``x`` of ``N`` images with ``C`` channels, ``(N, C, H, W)``,
# and ``O`` filters ``W`` of shape ``(O, C, kh, kw)``. Output channel ``o`` at position
# ``(i, j)`` of image ``n`` is the cross-correlation of the previous practical, summed over the
# input channels:
#
#     y[n, o, i, j] = b[o] + sum over c, a, b' of W[o, c, a, b'] * padded[n, c, s*i + a, s*j + b']
#
# Written as loops, that is ``N * O * OH * OW`` dot products of length ``C * kh * kw``; slow
# in Python, and even in C it does not use the processor well. **im2col** ("image to
# columns") turns the whole layer into **one matrix product**: copy, for every image ``n`` and
# output position ``(i, j)``, the ``C * kh * kw`` input values under the kernel into one
# column of a matrix ``cols``. Then the filters, one per row of a ``(O, C*kh*kw)`` matrix,
# times ``cols``, ``(C*kh*kw, N*OH*OW)``, give every output value at once (slide: "Matrix
# multiply!"). A matrix product is the most optimised operation there is (BLAS on a CPU,
# cuBLAS on a GPU); the price is memory, ``cols`` being about ``kh * kw`` times larger than
# ``x``.
#
# **The layout** (the one ``nn`` uses, so your columns can be compared with the library's):
#
# - row ``c*kh*kw + a*kw + b`` holds channel ``c`` at kernel offset ``(a, b)``: the order of
#   the weights of one filter read in memory order, so that the filters reshaped to
#   ``(O, C*kh*kw)`` line up with it;
# - column ``n*OH*OW + i*OW + j`` holds image ``n`` at output position ``(i, j)``: images are
#   the slow index, positions in reading order.
#
# In other words ``cols`` is an array of shape ``(C, kh, kw, N, OH, OW)`` seen as
# ``(C*kh*kw, N*OH*OW)``, holding ``padded[n, c, s*i + a, s*j + b]`` at ``[c, a, b, n, i, j]``.
# As in ``correlate2d``, loop over the kernel offsets ``(a, b)`` only: for one offset, the
# values it takes, for every image, channel and position at once, are one strided slice of
# the padded batch; its axes are not in the order of ``cols``, so reorder them before you
# store them.
#
# **col2im.** im2col is linear: ``cols = M x`` for a (huge, 0/1) matrix ``M`` that nobody
# writes down. Backpropagation needs its **adjoint** (transpose) ``M^T``: if a loss ``L``
# depends on ``x`` only through ``cols``, the chain rule gives ``dL/dx = M^T dL/dcols``. This
# is how the slides' E_x, the error propagated to the inputs, is obtained from the error of
# the columns. col2im is that adjoint, defined by the identity
#
#     < im2col(x), c >  =  < x, col2im(c) >        for every x and c
#
# (``<u, v>`` is the sum of the element-wise products). Derive what ``M^T`` does to one entry
# of ``c`` (which pixel of ``x`` it belongs to, and what happens to a pixel that was copied
# into several columns, or to an entry that was copied from the padding), then write it
# without a loop over pixels. The tests check the identity in float64 for random ``x`` and
# ``c``. Is col2im the inverse of im2col? Decide before you run the experiment.
#
# You write ``conv_output_size``, ``im2col``, ``col2im`` and ``conv2d_im2col`` (a whole
# convolution layer's forward pass as one matrix product). The experiment compares them with
# ``nn``'s, checks your convolution against ``nn.layers.Conv2D``, and times the loops over
# pixels against im2col.

# %%
import numpy as np


def conv_output_size(size, kernel, stride=1, padding=0):
    """Number of positions of a ``kernel``-wide window sliding by ``stride`` along an axis of
    ``size`` pixels padded with ``padding`` zeros on both sides.

    Difficulty ★. The window starts at ``0, stride, 2 stride, ...`` and must fit inside the
    padded axis (the previous practical's ``OH``). Returns an int, less than 1 when the
    window does not fit at all.
    """
    raise NotImplementedError("★ count the starting positions of the window that leave it inside the padded axis (an integer division)")
    return out


def _output_shape(H, W, kh, kw, stride, padding):
    """``(OH, OW)``, or a ``ValueError`` when the kernel does not fit in the padded image."""
    OH = conv_output_size(H, kh, stride, padding)
    OW = conv_output_size(W, kw, stride, padding)
    if OH < 1 or OW < 1:
        raise ValueError(f"a {kh}x{kw} kernel does not fit in a {H}x{W} image padded by "
                         f"{padding}; use more padding or a smaller kernel")
    return OH, OW


def im2col(x, kh, kw, stride=1, padding=0):
    """The columns of ``x``: every window of the convolution as one column.

    Difficulty ★★ (the layout above).

    Parameters
    ----------
    x : (N, C, H, W) images
    kh, kw : kernel height and width
    stride : int, the step of the window on both axes
    padding : int, zeros added on each side of both spatial axes

    Returns
    -------
    cols : (C*kh*kw, N*OH*OW) array of ``x``'s dtype; ``cols`` reshaped to
        ``(C, kh, kw, N, OH, OW)`` holds ``padded[n, c, stride*i + a, stride*j + b]`` at
        ``[c, a, b, n, i, j]``.
    """
    N, C, H, W = x.shape
    OH, OW = _output_shape(H, W, kh, kw, stride, padding)
    raise NotImplementedError("★★ pad the two spatial axes, then fill the six-axis array of the layout one kernel offset at a time (one strided slice of the batch, its axes reordered so that channels come first) and view it as a matrix")
    return cols


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
    """The adjoint of :func:`im2col`: ``<im2col(x), c> = <x, col2im(c)>`` for every ``x``, ``c``.

    Difficulty ★★★ (a derivation: see "col2im" above). With ``c = dL/dcols``, col2im gives
    ``dL/dx``, the error propagated back to the images (the slides' E_x in "Convolutional
    layer complete matrix formalism").

    Parameters
    ----------
    cols : (C*kh*kw, N*OH*OW) array, laid out as :func:`im2col`'s output
    x_shape : (N, C, H, W), the shape of the images ``cols`` would come from
    kh, kw, stride, padding : as for :func:`im2col`

    Returns
    -------
    x : (N, C, H, W) array of ``cols``'s dtype (``cols`` itself is not modified)
    """
    N, C, H, W = x_shape
    OH, OW = _output_shape(H, W, kh, kw, stride, padding)
    raise NotImplementedError("★★★ undo the layout of the columns, and for every kernel offset send its block back to the strided slice of a padded batch of zeros it was read from; decide what to do where slices overlap and with the padding")
    return x


def conv2d_im2col(x, W, b, stride=1, padding=0):
    """A convolution layer's forward pass as one matrix product (the slides' "Matrix multiply!").

    Difficulty ★★.

    Parameters
    ----------
    x : (N, C, H, W) images
    W : (O, C, kh, kw) filters; b : (O,) biases
    stride, padding : int, the same on both axes

    Returns
    -------
    y : (N, O, OH, OW), ``y[n, o, i, j] = b[o] + sum over c, a, b' of W[o, c, a, b'] *
        padded[n, c, stride*i + a, stride*j + b']``, equal to :func:`conv_loops`.
    """
    O, _, kh, kw = W.shape
    raise NotImplementedError("★★ the filters as a matrix with one filter per row, times the columns of x, plus each filter's bias on its row; then from one column per image and position back to images first")
    return y


def conv_loops(x, W, b, stride=1, padding=0):
    """The convolution layer written as loops over images, filters and output pixels.

    The reference to check the fast version against, and to time it against:
    ``y[n, o, i, j] = b[o] + sum(W[o] * window)``, one ``(C, kh, kw)`` window at a time.
    """
    N, C, H, Wd = x.shape
    O, _, kh, kw = W.shape
    OH, OW = _output_shape(H, Wd, kh, kw, stride, padding)
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.empty((N, O, OH, OW), dtype=np.result_type(x, W))
    for n in range(N):
        for o in range(O):
            for i in range(OH):
                for j in range(OW):
                    window = padded[n, :, stride * i:stride * i + kh, stride * j:stride * j + kw]
                    y[n, o, i, j] = b[o] + np.sum(W[o] * window)
    return y


# %% [markdown]
# ## The layout on a small example
#
# One image of 2 channels, 3 x 4 pixels numbered in order, a 2 x 2 kernel: 2 x 3 = 6 output
# positions, so 6 columns, each holding the 2 x 2 x 2 = 8 values under the kernel (channel 0
# first, then channel 1). Read the first column: the top-left 2 x 2 block of channel 0
# (0, 1, 4, 5), then the same block of channel 1 (12, 13, 16, 17).

# %%
if __name__ == "__main__":
    x_small = np.arange(24.0).reshape(1, 2, 3, 4)
    print("x:\n", x_small[0])
    print("im2col(x, 2, 2):\n", im2col(x_small, 2, 2))
    ones = np.ones_like(x_small)
    print("col2im(im2col(ones)): how many windows cover each pixel\n",
          col2im(im2col(ones, 2, 2), ones.shape, 2, 2)[0, 0])

# %% [markdown]
# ## The same as nn's, and the adjoint identity
#
# ``nn.backends.im2col`` holds the library's versions (N-dimensional, with dilation). On a
# batch of images, a 3 x 5 kernel, stride 2 and padding 1, both give the same columns, the
# same col2im, and ``<im2col(x), c> = <x, col2im(c)>`` holds to rounding in float64.

# %%
if __name__ == "__main__":
    from nn.backends import im2col as lib

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 9, 8))
    geometry = dict(kh=3, kw=5, stride=2, padding=1)
    cols = im2col(x, **geometry)
    lib_cols = lib.im2col(np, x, (3, 5), (2, 2), (1, 1), (1, 1))
    print(f"cols {cols.shape}; largest difference with nn's im2col: {np.abs(cols - lib_cols).max():.1e}")
    c = rng.standard_normal(cols.shape)
    back = col2im(c, x.shape, **geometry)
    lib_back = lib.col2im(np, c, x.shape, (3, 5), (2, 2), (1, 1), (1, 1))
    print(f"largest difference with nn's col2im: {np.abs(back - lib_back).max():.1e}")
    left, right = np.sum(cols * c), np.sum(x * back)
    print(f"<im2col(x), c> = {left:.12f}\n<x, col2im(c)> = {right:.12f}")

# %% [markdown]
# Where windows overlap, col2im adds. ``col2im(im2col(ones))`` counts, for each pixel, the
# windows that cover it: a 3 x 3 kernel with stride 1 covers the inner pixels 9 times
# and the corners once (without padding); with stride 2 the count alternates, and the last
# row and column of a 12 x 12 image are in no window at all (``(12 - 3) // 2 + 1 = 5``
# windows reach pixel 10 only: the rounding down of the output size drops them). With
# stride 3 every pixel is in exactly one window: col2im is then the inverse of im2col.

# %%
if __name__ == "__main__":
    import matplotlib.pyplot as plt

    from nn.course import show

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    shape = (1, 1, 12, 12)
    for ax, (stride, padding) in zip(axes, [(1, 0), (1, 1), (2, 0), (3, 0)]):
        count = col2im(im2col(np.ones(shape), 3, 3, stride, padding), shape, 3, 3, stride, padding)[0, 0]
        image = ax.imshow(count, cmap="viridis", vmin=0, vmax=9)
        ax.set_title(f"3x3, stride {stride}, padding {padding}", fontsize=10)
        ax.axis("off")
    fig.colorbar(image, ax=axes, shrink=0.8, label="windows covering the pixel")
    show(fig, "overlap_counts")

# %% [markdown]
# ## A convolution in one matrix product
#
# Eight 5 x 5 filters on 64 Fashion-MNIST images: ``W.reshape(O, -1) @ cols`` plus the bias,
# reshaped to ``(O, N, OH, OW)`` and transposed to ``(N, O, OH, OW)``, equals the output of
# ``nn.layers.Conv2D`` with the same weights (in float64, to rounding), and the loops over
# pixels. Then the time of each: the loops make ``N * O * OH * OW`` small NumPy calls; im2col
# makes 25 copies and one matrix product.

# %%
if __name__ == "__main__":
    import time

    import nn
    from nn.data import load_fashion_mnist
    from nn.layers import Conv2D

    images = load_fashion_mnist("test")[0][:64].astype(np.float64)
    O, stride, padding = 8, 1, 2
    N = len(images)
    with nn.backends.using("numpy", "fp64", seed=0):
        conv = Conv2D(1, O, 5, stride=stride, padding=padding)
        W, b = conv.params["W"], rng.standard_normal(O)
        conv.params["b"] = b.copy()
        y_lib = conv.forward(images)

    def timed(f, repeat):
        best = np.inf
        for _ in range(repeat):
            start = time.perf_counter()
            result = f()
            best = min(best, time.perf_counter() - start)
        return result, best

    y_fast, t_fast = timed(lambda: conv2d_im2col(images, W, b, stride, padding), 5)
    y_slow, t_slow = timed(lambda: conv_loops(images[:8], W, b, stride, padding), 1)
    t_slow *= N / 8                       # the loops on 8 images, scaled to the batch
    _, t_lib = timed(lambda: conv.forward(images), 5)
    print(f"im2col + matmul vs nn's Conv2D: largest difference {np.abs(y_fast - y_lib).max():.1e}")
    print(f"loops vs nn's Conv2D:           largest difference {np.abs(y_slow - y_lib[:8]).max():.1e}")
    print(f"\n{O} filters 5x5 on {N} images 28x28 (float64, best of several runs):")
    print(f"  loops over pixels   {1000 * t_slow:8.1f} ms   ({N * O * 28 * 28:,} dot products; "
          "timed on 8 images, times 8)")
    print(f"  im2col + matmul     {1000 * t_fast:8.1f} ms   ({t_slow / t_fast:.0f} times faster)")
    print(f"  nn.layers.Conv2D    {1000 * t_lib:8.1f} ms")
