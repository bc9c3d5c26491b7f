"""A synthetic radio sky for source detection, in the spirit of the SKA Data Challenge 1.

Each image is Gaussian noise plus radio sources, each an elliptical Gaussian:

- **point** sources are unresolved: they take the shape of the synthesised beam
  (``bmaj = bmin = beam``, ``pa = 0``);
- **extended** sources are resolved ellipses, ``bmaj`` log-uniform between 1.5 beams and
  ``max_size`` pixels, axis ratio ``bmin / bmaj`` uniform in [0.3, 1] (never below the beam),
  position angle uniform in [0, 180) degrees.

Integrated fluxes follow a power law ``dN/dS ~ S**-flux_index`` (faint sources are many),
as source counts do. Images are in units of surface brightness per beam, as a radio map
in Jy/beam: a source of integrated flux ``S`` has the peak ``S * beam**2 / (bmaj * bmin)``,
so a point source of flux 5 peaks at 5 times the noise when ``noise = 1``.

Geometry: pixel ``(row j, column i)`` covers ``[i, i+1) x [j, j+1)``, the x axis runs along
columns and y along rows. ``bmaj``, ``bmin`` are full widths at half maximum in pixels; the
position angle is counted from the +y axis (north, rows increasing) towards -x (east), as
on the sky with north up and east left. A source's box is the bounding box of its ellipse
at half-axes ``bmaj`` and ``bmin`` (the 1/16-of-peak contour), clipped to the image.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ._args import check_memory, number, pair, seed as check_seed, whole

RADIO_CLASSES = ("point", "extended")
RADIO_PARAMS = ("flux", "bmaj", "bmin", "pa")
FWHM_TO_SIGMA = 1.0 / np.sqrt(8.0 * np.log(2.0))
CHUNK_PIXELS = 1 << 22  # stamp pixels evaluated at once: bounds the temporary memory


def _power_law(rng, n, low, high, index):
    """``n`` draws of ``p(S) ~ S**-index`` on ``[low, high]`` by inverting the CDF."""
    u = rng.random(n)
    if np.isclose(index, 1.0):
        return low * (high / low) ** u
    a = 1.0 - index
    return (low ** a + u * (high ** a - low ** a)) ** (1.0 / a)


def _ellipse_half_extent(bmaj, bmin, pa_rad):
    """Half width and half height of the bounding box of the ellipse of half-axes bmaj, bmin."""
    ux, uy = -np.sin(pa_rad), np.cos(pa_rad)  # major axis direction
    vx, vy = np.cos(pa_rad), np.sin(pa_rad)   # minor axis direction
    return np.hypot(bmaj * ux, bmin * vx), np.hypot(bmaj * uy, bmin * vy)


def _render(images, image_id, x, y, peak, bmaj, bmin, pa_rad):
    """Add the Gaussians to ``images (n, size, size)`` in place, each in a square stamp.

    Sources are grouped by stamp radius so that each group is one broadcast expression;
    ``np.add.at`` accumulates where stamps overlap or cross the edge (masked out).
    """
    n, size, _ = images.shape
    flat = images.reshape(-1)
    radius = np.ceil(2.0 * bmaj).astype(np.int64)  # 2 FWHM: the profile is < 2e-5 of the peak
    # the quadratic form of each ellipse, in units of sigma
    sa, sb = bmaj * FWHM_TO_SIGMA, bmin * FWHM_TO_SIGMA
    ux, uy = -np.sin(pa_rad), np.cos(pa_rad)
    vx, vy = np.cos(pa_rad), np.sin(pa_rad)
    for r in np.unique(radius):
        members = np.flatnonzero(radius == r)
        offsets = np.arange(-r, r + 1)
        per_chunk = max(1, CHUNK_PIXELS // len(offsets) ** 2)
        for start in range(0, len(members), per_chunk):
            m = members[start:start + per_chunk]
            col0 = np.floor(x[m]).astype(np.int64)
            row0 = np.floor(y[m]).astype(np.int64)
            cols = col0[:, None, None] + offsets[None, None, :]   # (k, 1, S)
            rows = row0[:, None, None] + offsets[None, :, None]   # (k, S, 1)
            dx = cols + 0.5 - x[m, None, None]                    # from the pixel centres
            dy = rows + 0.5 - y[m, None, None]
            u = (dx * ux[m, None, None] + dy * uy[m, None, None]) / sa[m, None, None]
            v = (dx * vx[m, None, None] + dy * vy[m, None, None]) / sb[m, None, None]
            values = peak[m, None, None] * np.exp(-0.5 * (u * u + v * v))
            inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
            index = (image_id[m, None, None] * size + rows) * size + cols
            index, inside = np.broadcast_arrays(index, inside)
            np.add.at(flat, index[inside], values[inside].astype(images.dtype))


def make_radio_sky(n_images: int, size: int = 256, seed: int = 0, sources_per_image: float = 20.0,
                   extended_fraction: float = 0.3, flux_range=(5.0, 500.0),
                   flux_index: float = 2.0, beam: float = 3.0, max_size: float = 20.0,
                   noise: float = 1.0):
    """Images of a synthetic radio sky, and the catalogue of the sources in each.

    Parameters
    ----------
    n_images, size : int
        ``n_images`` square images of ``size x size`` pixels.
    seed : int
        Same seed and arguments, identical images and catalogues.
    sources_per_image : float
        Mean of the Poisson number of sources per image.
    extended_fraction : float
        Probability that a source is extended rather than point-like.
    flux_range : (float, float)
        Integrated fluxes, in units of ``noise x beam``: a point source of flux S peaks at S.
    flux_index : float
        ``dN/dS ~ S**-flux_index``: 2.5 gives Euclidean counts, lower values more bright
        sources.
    beam : float
        FWHM of the synthesised beam, pixels (the size of a point source).
    max_size : float
        Largest FWHM of an extended source, pixels.
    noise : float
        Standard deviation of the Gaussian noise of each pixel.

    Returns
    -------
    images : (n_images, 1, size, size) float32
    targets : list of n_images dicts, for image ``i`` with ``k`` sources:
        ``"boxes"`` ``(k, 4)`` float32 ``(x1, y1, x2, y2)`` in pixels (clipped to the image);
        ``"classes"`` ``(k,)`` int64 into :data:`RADIO_CLASSES` (0 point, 1 extended);
        ``"params"`` ``(k, 4)`` float32 columns :data:`RADIO_PARAMS`: integrated flux,
        ``bmaj`` and ``bmin`` (FWHM, pixels), ``pa`` (degrees in [0, 180));
        ``"centers"`` ``(k, 2)`` float32 ``(x, y)`` of each source (exact, even when its
        box is clipped).
    """
    owner = "make_radio_sky"
    n_images = whole(n_images, "n_images", owner, minimum=1)
    size = whole(size, "size", owner, minimum=1)
    low, high = pair(flux_range, "flux_range", owner, low=0, strict=True)
    beam = number(beam, "beam", owner, low=0, low_open=True)
    max_size = number(max_size, "max_size", owner)
    if max_size <= 1.5 * beam:
        raise ConfigError(f"{owner}: max_size must be larger than 1.5 * beam = {1.5 * beam:g} "
                          f"(an extended source is larger than the beam), got {max_size!r}")
    noise = number(noise, "noise", owner, low=0)
    sources_per_image = number(sources_per_image, "sources_per_image", owner, low=0, high=1e6)
    extended_fraction = number(extended_fraction, "extended_fraction", owner, low=0, high=1)
    flux_index = number(flux_index, "flux_index", owner)
    seed = check_seed(seed, owner)
    check_memory(4 * n_images * size * size, owner,
                 f"ask for fewer than {n_images} images of {size}x{size}")
    rng = np.random.default_rng(seed)
    counts = rng.poisson(sources_per_image, n_images)
    k = int(counts.sum())
    image_id = np.repeat(np.arange(n_images), counts)
    x, y = rng.uniform(0, size, (2, k))
    extended = rng.random(k) < extended_fraction
    flux = _power_law(rng, k, low, high, flux_index)
    bmaj = np.where(extended, np.exp(rng.uniform(np.log(1.5 * beam), np.log(max_size), k)), beam)
    bmin = np.where(extended, np.maximum(bmaj * rng.uniform(0.3, 1.0, k), beam), beam)
    pa = np.where(extended, rng.uniform(0.0, 180.0, k), 0.0)
    pa_rad = np.deg2rad(pa)
    peak = flux * beam ** 2 / (bmaj * bmin)

    # the noise is most of the cost (65 M draws for 1000 images of 256^2): scale it in place
    images = rng.standard_normal((n_images, size, size), dtype=np.float32)
    images *= np.float32(noise)
    _render(images, image_id, x, y, peak, bmaj, bmin, pa_rad)

    hx, hy = _ellipse_half_extent(bmaj, bmin, pa_rad)
    boxes = np.clip(np.stack([x - hx, y - hy, x + hx, y + hy], axis=1), 0, size).astype(np.float32)
    params = np.stack([flux, bmaj, bmin, pa], axis=1).astype(np.float32)
    centers = np.stack([x, y], axis=1).astype(np.float32)
    classes = extended.astype(np.int64)
    cuts = np.cumsum(counts)[:-1]
    targets = [{"boxes": b, "classes": c, "params": p, "centers": xy} for b, c, p, xy in zip(
        np.split(boxes, cuts), np.split(classes, cuts), np.split(params, cuts),
        np.split(centers, cuts))]
    return images[:, None], targets
