"""Synthetic galaxies for morphology classification, in the spirit of Galaxy Zoo 2.

Each image is a galaxy at the centre of an SDSS-like colour cut-out, built from the
components a photometric decomposition fits (all sizes scale with the image, here for 64²):

- **ellipticals (E)**: a Sérsic profile ``I(r) = I_e exp(-b_n ((r / r_e)^(1/n) - 1))``,
  index ``n`` 2.5-6, half-light radius ``r_e`` 3.5-9 px, axis ratio 0.35-1 (E0 to E6),
  red (old stars);
- **spirals (S)**: a Sérsic bulge (``n`` 1-3.5) inside an exponential disc
  ``I(r) = I_0 exp(-r / h)`` (scale length ``h`` 3.5-8 px), seen at an inclination ``i``
  (``cos i`` uniform: random orientations) so that its axis ratio is
  ``q = sqrt(cos² i + q_0² sin² i)`` with a thickness ``q_0 = 0.12``; logarithmic spiral
  arms ``θ = θ_0 ± ln(r / r_0) / tan ψ`` (pitch angle ``ψ`` 8-38°, 1 to 6 arms, either
  sense of winding) drawn in the plane of the disc: a fraction (25-80 %) of the disc light
  gathers into them along a von Mises profile, bluer than the disc (young stars); a dust
  lane along the major axis of discs seen nearly edge-on;
- **barred spirals (SB)**: the same, with a bar (a Ferrers ellipsoid ``(1 - m²)²``, half
  length 0.8-2 ``h``, axis ratio 0.2-0.35) in the plane of the disc, the arms starting at
  its ends;
- bulge-to-total ratio ``B/T`` 0.02-0.6 (log-uniform) for the discs, 1 for ellipticals;
  a few field stars; a Gaussian PSF (FWHM 1-2.2 px); sky noise (σ log-uniform, per image)
  plus the photon noise of the galaxy; an asinh stretch to [0, 1], as SDSS composites.

Colour: three bands, returned in the order i, r, g, so that channels 0, 1, 2 show as red,
green, blue (``images.transpose(0, 2, 3, 1)`` is what ``plt.imshow`` wants), as the
SDSS gri composites of Galaxy Zoo: ellipticals and bulges are orange, discs whiter, arms
blue. Colour carries information, as in the real images (the course's networks take the
three channels); for grey levels use ``images.mean(axis=1, keepdims=True)``.

Then 20 + Poisson(25) volunteers (GZ2's median is 44) walk the decision tree of
:mod:`nn.data.gz2` for each galaxy. Each answers from what the image shows rather than from
the truth: arms, bars and discs are seen with a probability that grows with their contrast
over the noise and their size over the PSF, and falls with the inclination (a faint or
small spiral looks smooth, an edge-on bar is a boxy bulge); the bulge answers follow
``B/T``, the roundness the axis ratio, the winding the pitch angle, the arm count the true
one give or take one. A galaxy's volunteers also share a random leaning (a Dirichlet draw
around those probabilities), so fractions are soft, and for some galaxies the majority is
wrong, as in the real catalogue.

Everything is drawn in blocks of images, each from its own seed sequence
``(seed, block)``: the same seed gives the same galaxies, and the first ``k`` galaxies do
not depend on how many are asked for.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from ._args import check_memory, seed as check_seed, whole
from .gz2 import GALAXY_CLASSES, GZ2_COLUMNS, GZ2_TASKS, classes_from_votes

#: the true parameters returned for every galaxy (``info["params"]``), see make_galaxies
GALAXY_PARAMS = ("x", "y", "pa", "axis_ratio", "inclination", "bulge_fraction", "sersic_n",
                 "bulge_re", "disc_scale", "arms", "pitch", "arm_strength", "winding",
                 "bar_length", "bar_angle", "dust", "psf_fwhm", "noise", "brightness")
CLASS_FRACTIONS = (0.4, 0.4, 0.2)
BLOCK_PIXELS = 1 << 20        # pixels of one image band rendered at once (bounds temporaries)
DISC_THICKNESS = 0.12         # intrinsic axis ratio of a disc seen edge-on
BULGE_THICKNESS = 0.6         # ... and of a bulge
STRETCH = 0.05                # asinh softening: linear below, logarithmic above
# colour of each component in the bands (i, r, g), relative to r
COLOURS = {"old": (1.25, 1.0, 0.55), "disc": (1.1, 1.0, 0.8), "young": (0.75, 1.0, 1.5)}
NOISE_BANDS = np.array([1.1, 1.0, 1.3])  # sky noise of i, r, g relative to r


def _sersic_b(n):
    """``b_n`` such that ``r_e`` encloses half the light (Ciotti & Bertin 1999)."""
    return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n ** 2)


def _sersic_total(n, re, q):
    """Total light of a Sérsic profile with ``I_e = 1``: ``2π q n r_e² e^b Γ(2n) / b^(2n)``."""
    b = _sersic_b(n)
    log_gamma = np.array([math.lgamma(2 * v) for v in np.ravel(n)]).reshape(np.shape(n))
    return 2 * np.pi * q * n * re ** 2 * np.exp(b + log_gamma - 2 * n * np.log(b))


def _log_uniform(rng, low, high, n):
    return np.exp(rng.uniform(np.log(low), np.log(high), n))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# -- the galaxies ------------------------------------------------------------------------------
def _draw(rng, n: int, size: int, fractions) -> dict:
    """The true parameters of ``n`` galaxies (float64 arrays, sizes in pixels of ``size``)."""
    f = size / 64.0
    cls = rng.choice(3, n, p=fractions)
    disc, barred = cls > 0, cls == 2
    p = {"class": cls}
    p["x"] = size / 2 + rng.normal(0.0, 0.6 * f, n)
    p["y"] = size / 2 + rng.normal(0.0, 0.6 * f, n)
    p["pa"] = rng.uniform(0.0, 180.0, n)
    cos_i = rng.uniform(0.0, 1.0, n)
    incl = np.degrees(np.arccos(cos_i))
    q_disc = np.sqrt(cos_i ** 2 + DISC_THICKNESS ** 2 * (1 - cos_i ** 2))
    q_ell = 1.0 - 0.65 * rng.beta(1.6, 3.0, n)
    p["inclination"] = np.where(disc, incl, np.nan)
    p["axis_ratio"] = np.where(disc, q_disc, q_ell)
    p["bulge_q"] = np.where(disc, np.sqrt(cos_i ** 2 + BULGE_THICKNESS ** 2 * (1 - cos_i ** 2)),
                            q_ell)
    h = _log_uniform(rng, 3.5, 8.0, n) * f
    p["disc_scale"] = np.where(disc, h, 0.0)
    p["bulge_fraction"] = np.where(disc, _log_uniform(rng, 0.02, 0.6, n), 1.0)
    p["sersic_n"] = np.where(disc, rng.uniform(1.0, 3.5, n), rng.uniform(2.5, 6.0, n))
    p["bulge_re"] = np.where(disc, h * rng.uniform(0.15, 0.45, n),
                             _log_uniform(rng, 3.5, 9.0, n) * f)
    # spiral arms: 2 most often, bars drive two
    arms = np.where(barred, rng.choice(np.arange(1, 7), n, p=[.02, .80, .10, .05, .02, .01]),
                    rng.choice(np.arange(1, 7), n, p=[.04, .56, .20, .12, .05, .03]))
    p["arms"] = np.where(disc, arms, 0)
    p["pitch"] = np.where(disc, rng.uniform(8.0, 38.0, n), np.nan)
    p["arm_strength"] = np.where(disc, rng.uniform(0.25, 0.8, n), 0.0)
    p["arm_width"] = rng.uniform(1.5, 5.0, n)  # von Mises concentration: larger, narrower
    p["winding"] = np.where(disc, rng.choice([-1, 1], n), 0)
    p["arm_phase"] = rng.uniform(0.0, 2 * np.pi, n)
    p["bar_length"] = np.where(barred, h * rng.uniform(0.8, 2.0, n), 0.0)
    p["bar_q"] = rng.uniform(0.2, 0.35, n)
    p["bar_angle"] = np.where(barred, rng.uniform(0.0, 180.0, n), np.nan)
    p["bar_fraction"] = np.where(barred, rng.uniform(0.06, 0.2, n), 0.0)
    # a dust lane in discs seen within ~25 degrees of edge-on
    p["dust"] = np.where(disc, rng.uniform(0.3, 1.5, n) * _sigmoid((incl - 70.0) / 4.0), 0.0)
    p["psf_fwhm"] = rng.uniform(1.0, 2.2, n) * f
    p["noise"] = _log_uniform(rng, 0.004, 0.03, n)
    # brightness: the face-on central surface brightness of a disc, I_e of an elliptical
    p["brightness"] = np.where(disc, _log_uniform(rng, 0.08, 0.5, n),
                               _log_uniform(rng, 0.03, 0.15, n))
    p["tint"] = rng.normal(1.0, 0.06, (n, 3))  # small colour differences between galaxies
    p["stars"] = rng.poisson(0.7, n)
    return p


def _normal(rng, shape) -> np.ndarray:
    """Standard normal float32 draws by the Box-Muller transform of uniform draws.

    ``z = sqrt(-2 ln u1) (cos 2πu2, sin 2πu2)``: twice as fast here as
    ``rng.standard_normal(dtype=np.float32)`` (the sky noise is most of the draws).
    """
    size = math.prod(shape)
    half = (size + 1) // 2
    u1, u2 = rng.random((2, half), dtype=np.float32)
    r = np.sqrt(np.float32(-2) * np.log1p(-u1))
    angle = np.float32(2 * np.pi) * u2
    out = np.empty(2 * half, dtype=np.float32)
    np.multiply(r, np.cos(angle), out=out[:half])
    np.multiply(r, np.sin(angle), out=out[half:])
    return out[:size].reshape(shape)


def _render(p: dict, rng, size: int) -> np.ndarray:
    """Images ``(n, 3, size, size)`` float32 in [0, 1] of the galaxies ``p``."""
    n = len(p["class"])
    f32 = np.float32
    col = lambda a: np.asarray(a, dtype=f32)[:, None, None]   # noqa: E731  (n,) -> (n, 1, 1)
    centres = np.arange(size, dtype=f32) + f32(0.5)
    dx = centres[None, None, :] - col(p["x"])
    dy = centres[None, :, None] - col(p["y"])
    pa = np.radians(p["pa"])
    u = dx * col(np.cos(pa)) + dy * col(np.sin(pa))      # along the major axis
    v = -dx * col(np.sin(pa)) + dy * col(np.cos(pa))     # along the minor axis
    old, young, disc_colour = (np.array(COLOURS[k], dtype=f32) for k in ("old", "young", "disc"))
    tint = p["tint"].astype(f32)

    # the disc's light sets the scale of a disc galaxy's components (B/T, bar/T)
    is_disc = p["class"] > 0
    h = np.where(is_disc, p["disc_scale"], 1.0)
    q = p["axis_ratio"]
    disc_total = 2 * np.pi * h ** 2 * p["brightness"]               # face-on, all the disc
    bt, bar_t = p["bulge_fraction"], p["bar_fraction"]
    total = np.where(is_disc, disc_total / np.maximum(1 - bt - bar_t, 1e-3), 0.0)

    # bulge (or the whole elliptical): Sérsic
    nb, re, qb = p["sersic_n"], p["bulge_re"], p["bulge_q"]
    ie = np.where(is_disc, bt * total / _sersic_total(nb, re, qb), p["brightness"])
    r2 = u * u + (v / col(qb)) ** 2 + f32(0.25)       # softened by a quarter pixel
    ln_r = f32(0.5) * np.log(r2) - col(np.log(re))
    bulge = col(ie) * np.exp(-col(_sersic_b(nb)) * (np.exp(ln_r / col(nb)) - f32(1)))
    light = bulge[:, None] * (old * tint)[:, :, None, None]     # (n, 3, size, size)

    d = np.flatnonzero(is_disc)
    if len(d):
        pd = {k: val[d] for k, val in p.items()}
        ud, vd = u[d], v[d] / col(q[d])                 # vd: deprojected onto the disc plane
        r = np.sqrt(ud * ud + vd * vd) + f32(1e-3)
        disc = col(p["brightness"][d] / q[d]) * np.exp(-r / col(h[d]))
        # logarithmic spiral arms from r0 outwards: the arm phase is constant along
        # theta = theta0 + winding * ln(r / r0) / tan(pitch)
        r0 = np.where(pd["bar_length"] > 0, pd["bar_length"], np.maximum(1.2 * pd["bulge_re"],
                                                                          0.5 * h[d]))
        theta0 = np.where(pd["bar_length"] > 0, np.radians(pd["bar_angle"]), pd["arm_phase"])
        theta = np.arctan2(vd, ud)
        wind = pd["winding"] / np.tan(np.radians(pd["pitch"]))
        phase = col(pd["arms"]) * (theta - col(theta0) - col(wind) * (np.log(r)
                                                                      - col(np.log(r0))))
        # a fraction A of the disc light gathers into the arms: the von Mises profile
        # exp(kappa (cos phase - 1)) divided by its mean around a circle, e^-kappa I0(kappa),
        # so that the disc keeps its light (and its profile, on average)
        kappa = pd["arm_width"]
        t = np.clip((r - col(0.6 * r0)) / col(0.8 * r0), f32(0), f32(1))
        in_arms = col(pd["arm_strength"]) * (t * t * (f32(3) - f32(2) * t))
        g = np.exp(col(kappa) * (np.cos(phase) - f32(1))) / col(np.exp(-kappa) * np.i0(kappa))
        arms = disc * in_arms * g
        disc *= f32(1) - in_arms
        part = disc[:, None] * (disc_colour * tint[d])[:, :, None, None] \
            + arms[:, None] * (young * tint[d])[:, :, None, None]
        # the bar: a Ferrers ellipsoid in the disc plane, projected like the disc
        b = np.flatnonzero(pd["bar_length"] > 0)
        if len(b):
            ang = np.radians(pd["bar_angle"][b])
            bu = ud[b] * col(np.cos(ang)) + vd[b] * col(np.sin(ang))
            bv = -ud[b] * col(np.sin(ang)) + vd[b] * col(np.cos(ang))
            a, qbar = pd["bar_length"][b], pd["bar_q"][b]
            m2 = (bu / col(a)) ** 2 + (bv / col(a * qbar)) ** 2
            amp = 3 * pd["bar_fraction"][b] * total[d][b] / (np.pi * a * a * qbar * q[d][b])
            bar = col(amp) * np.clip(f32(1) - m2, f32(0), None) ** 2
            part[b] += bar[:, None] * (old * tint[d][b])[:, :, None, None]
        # a dust lane along the major axis, redder light behind it (more extinction in g)
        s = np.flatnonzero(pd["dust"] > 0.02)
        if len(s):
            width = np.maximum(0.7, 0.35 * h[d][s] * q[d][s])
            lane = col(pd["dust"][s]) * np.exp(-(v[d][s] / col(width)) ** 2
                                                - (ud[s] / col(3 * h[d][s])) ** 2)
            for c, tau in enumerate((0.75, 1.0, 1.3)):
                part[s, c] *= np.exp(-f32(tau) * lane)
        light[d] += part

    # field stars: points (before the PSF), anywhere
    n_stars = p["stars"]
    if n_stars.sum():
        owner = np.repeat(np.arange(n), n_stars)
        k = len(owner)
        rows, cols = rng.integers(0, size, (2, k))
        flux = _log_uniform(rng, 0.5, 30.0, k) * p["noise"][owner] * 40
        colour = rng.uniform(0.6, 1.4, (k, 3))
        for c in range(3):
            np.add.at(light[:, c], (owner, rows, cols), (flux * colour[:, c]).astype(f32))

    # PSF: a Gaussian, applied as two matrix products (separable): K @ image @ K^T
    sigma = p["psf_fwhm"] / 2.3548
    taps = np.exp(-0.5 * (np.arange(1 - size, size)[None] / sigma[:, None]) ** 2)
    taps = (taps / taps.sum(axis=1, keepdims=True)).astype(f32)   # (n, 2 size - 1)
    offsets = np.arange(size)[None, :] - np.arange(size)[:, None] + size - 1
    kernel = taps[:, offsets][:, None]                            # K[j, j'] = g(j' - j)
    light = kernel @ light @ kernel.transpose(0, 1, 3, 2)

    # noise: the sky, and the photon noise of the light itself
    sky = (p["noise"][:, None] * NOISE_BANDS[None]).astype(f32)[:, :, None, None]
    np.maximum(light, f32(0), out=light)
    sd = np.sqrt(sky * sky + f32(0.1) * sky * light)
    light += sd * _normal(rng, light.shape)
    # asinh stretch, as SDSS colour composites: faint discs visible, bright centres kept
    light = np.arcsinh(light / f32(STRETCH))
    light *= f32(1 / math.asinh(1 / STRETCH))
    return np.clip(light, f32(0), f32(1), out=light)


# -- the volunteers ---------------------------------------------------------------------------
def _answer_probabilities(p: dict, rng) -> list[np.ndarray]:
    """For each task, ``(n, answers)`` probabilities that one volunteer picks each answer."""
    n = len(p["class"])
    e, disc, sb = p["class"] == 0, p["class"] > 0, p["class"] == 2
    incl = np.nan_to_num(p["inclination"])
    q = p["axis_ratio"]
    noise, fwhm = p["noise"], p["psf_fwhm"]
    h = np.maximum(p["disc_scale"], 1e-6)
    edge_on = np.where(disc, _sigmoid((incl - 74.0) / 3.5), 0.0)
    face = _sigmoid((68.0 - incl) / 6.0)
    # what shows: contrast over the noise, size over the PSF, and the inclination
    kappa = p["arm_width"]
    arm_sb = p["arm_strength"] * p["brightness"] * np.exp(-1.5) \
        * (1 / (np.exp(-kappa) * np.i0(kappa)) - 1)     # crest over the mean disc, at 1.5 h
    see_arms = disc * face * _sigmoid(2.0 * np.log(arm_sb / (1.5 * noise) + 1e-12)) \
        * _sigmoid(3.0 * (h / fwhm - 1.8))
    bar_sb = 3 * p["bar_fraction"] * p["brightness"] * 2 * h ** 2 \
        / np.maximum(p["bar_length"] ** 2 * p["bar_q"], 1e-6)
    see_bar = sb * face * _sigmoid(2.0 * np.log(bar_sb / (2 * noise) + 1e-12)) \
        * _sigmoid(3.0 * (p["bar_length"] / fwhm - 1.5))
    inclined = disc * _sigmoid((incl - 60.0) / 6.0) * (1 - p["bulge_fraction"])
    see_disc = 1 - (1 - see_arms) * (1 - see_bar) * (1 - 0.9 * edge_on) * (1 - 0.7 * inclined) \
        * (1 - 0.3 * (1 - p["bulge_fraction"]) * disc)
    flat_e = e * _sigmoid((0.42 - q) / 0.04)  # an E6 can pass for a disc seen edge-on

    star = 0.004 + 0.02 * rng.random(n) ** 3
    features = np.where(disc, 0.1 + 0.85 * see_disc, 0.04 + 0.4 * flat_e + 0.3 * rng.random(n) ** 4)
    t01 = np.stack([1 - features - star, features, star], axis=1)
    t02 = _yes(np.where(disc, 0.04 + 0.92 * edge_on, 0.04 + 0.5 * flat_e))
    t03 = _yes(np.where(sb, 0.05 + 0.85 * see_bar, 0.04 + 0.1 * rng.random(n)))
    t04 = _yes(np.where(disc, 0.06 + 0.88 * see_arms, 0.05))
    log_bt = np.log10(p["bulge_fraction"])
    t05 = _soft(log_bt, [-1.75, -1.05, -0.55, -0.15], 0.3)
    t06 = _yes(0.03 + 0.1 * rng.random(n) + 0.35 * p["dust"] * edge_on)
    t07 = _soft(q, [0.95, 0.7, 0.35], 0.12)
    dust_seen = np.clip(p["dust"] * edge_on, 0, 1.5)
    t08 = np.stack([np.full(n, 0.08), np.full(n, 0.05), np.full(n, 0.12), np.full(n, 0.12),
                    np.full(n, 0.45), np.full(n, 0.08), 0.1 + 3.0 * dust_seen], axis=1)
    bulge_seen = _sigmoid((log_bt + 1.3) / 0.15)
    t09 = np.stack([bulge_seen * (1 - 0.7 * sb), 0.08 + 0.7 * sb * _sigmoid((log_bt + 1.6) / 0.2),
                    1 - bulge_seen + 0.05], axis=1)
    t10 = _soft(np.nan_to_num(p["pitch"], nan=20.0), [11.0, 21.0, 32.0], 5.0)
    cant = 0.03 + 0.35 * (1 - see_arms)
    k = np.arange(1, 6)[None, :]
    counted = np.exp(-1.6 * np.abs(k - np.minimum(p["arms"], 5)[:, None]))
    counted /= counted.sum(axis=1, keepdims=True)
    t11 = np.concatenate([counted * (1 - cant)[:, None], cant[:, None]], axis=1)
    return [t01, t02, t03, t04, t05, t06, t07, t08, t09, t10, t11]


def _yes(p_yes):
    return np.stack([p_yes, 1 - p_yes], axis=1)


def _soft(value, centres, width):
    """Probabilities of ordered answers: a Gaussian in ``value`` around each answer's centre."""
    w = np.exp(-0.5 * ((np.asarray(value)[:, None] - np.asarray(centres)[None]) / width) ** 2)
    return w + 1e-3


def _volunteers(p: dict, rng):
    """Vote counts ``(n, 37)`` of volunteers walking the tree, and their number ``(n,)``."""
    n = len(p["class"])
    probs = _answer_probabilities(p, rng)
    # a galaxy's volunteers share a leaning: a Dirichlet draw around the probabilities, wider
    # for some galaxies than others (concentration 6 to 60)
    concentration = _log_uniform(rng, 6.0, 60.0, n)[:, None]
    leaning = []
    for t in probs:
        t = np.clip(t, 1e-6, None)
        t = t / t.sum(axis=1, keepdims=True)
        g = rng.standard_gamma(concentration * t + 0.02)
        leaning.append(g / g.sum(axis=1, keepdims=True))
    volunteers = 20 + rng.poisson(25, n)
    counts = [None] * 11

    def ask(task, who):
        counts[task] = rng.multinomial(who, leaning[task])
        return counts[task]

    c01 = ask(0, volunteers)
    c02 = ask(1, c01[:, 1])                 # features or disk: edge-on?
    ask(8, c02[:, 0])                       # edge-on: bulge shape
    ask(2, c02[:, 1])                       # not edge-on: bar, spiral, bulge
    c04 = ask(3, c02[:, 1])
    ask(4, c02[:, 1])
    ask(9, c04[:, 0])                       # spiral: winding and number of arms
    ask(10, c04[:, 0])
    ask(6, c01[:, 0])                       # smooth: how round
    c06 = ask(5, c01[:, 0] + c01[:, 1])     # everyone but star/artifact: anything odd?
    ask(7, c06[:, 0])
    return np.concatenate(counts, axis=1), volunteers


def vote_fractions(counts: np.ndarray) -> np.ndarray:
    """Counts ``(n, 37)`` as fractions per question (0 where nobody reached the question)."""
    out = np.zeros(counts.shape, dtype=np.float64)
    start = 0
    for _, answers in GZ2_TASKS:
        s = slice(start, start + len(answers))
        total = counts[:, s].sum(axis=1, keepdims=True)
        np.divide(counts[:, s], total, out=out[:, s], where=total > 0)
        start += len(answers)
    return out


# -- the function -------------------------------------------------------------------------------
def make_galaxies(n_images: int, size: int = 64, seed: int = 0, class_fractions=CLASS_FRACTIONS):
    """Synthetic galaxy images with a morphology class, Galaxy-Zoo-2-like votes and the truth.

    See the module's documentation for what is drawn. About 6 s of CPU for 10 000 images
    of 64² (one core; the sky noise, the spiral arms and the PSF take most of it).

    Parameters
    ----------
    n_images : int
    size : int
        Images are ``size x size``; the galaxies scale with it (64 and 128 as in the course).
    seed : int
        Same seed, same galaxies; the first k galaxies are the same whatever ``n_images``.
    class_fractions : 3 floats
        Probabilities of E, S and SB (default 0.4, 0.4, 0.2: mildly unbalanced, as the
        course's rebalancing expects).

    Returns
    -------
    images : (n_images, 3, size, size) float32 in [0, 1]
        Bands i, r, g (channels red, green, blue of the SDSS composites).
    info : dict
        ``"classes"`` (N,) int64 true classes into :data:`GALAXY_CLASSES` (E, S, SB);
        ``"votes"`` (N, 37) float32 vote fractions per question, columns ``"vote_columns"``
        = :data:`nn.data.GZ2_COLUMNS` (each question's answers sum to 1 where volunteers
        reached it, else are all 0); ``"counts"`` (N, 37) int64 the votes themselves;
        ``"n_volunteers"`` (N,) int64; ``"vote_classes"`` (N,) int64 the class the
        volunteers' majority gives (:func:`nn.data.gz2.classes_from_votes`), sometimes not
        the true one; ``"params"`` dict of (N,) float32 arrays named :data:`GALAXY_PARAMS`:
        centre ``x, y`` (px, pixel (row j, column i) covers [i, i+1) x [j, j+1)), ``pa``
        (degrees from +x towards +y, the major axis), ``axis_ratio`` (b/a as seen),
        ``inclination`` (degrees, NaN for E), ``bulge_fraction`` (B/T, 1 for E),
        ``sersic_n``, ``bulge_re`` (px), ``disc_scale`` (px, 0 for E), ``arms`` (0 for E),
        ``pitch`` (degrees, NaN for E), ``arm_strength``, ``winding`` (+1 or -1, 0 for E),
        ``bar_length`` (half length, px, 0 without bar), ``bar_angle`` (degrees in the disc
        plane from the major axis, NaN without bar), ``dust`` (optical depth of the dust
        lane in r), ``psf_fwhm`` (px), ``noise`` (sky σ in r, before the stretch),
        ``brightness`` (face-on central surface brightness of the disc, or ``I_e`` of an E).
    """
    owner = "make_galaxies"
    n_images = whole(n_images, "n_images", owner, minimum=1)
    size = whole(size, "size", owner, minimum=16)
    seed = check_seed(seed, owner)
    try:
        fractions = np.asarray(class_fractions, dtype=np.float64)
    except (TypeError, ValueError):
        fractions = np.zeros(0)
    if fractions.shape != (3,) or not np.isfinite(fractions).all() or (fractions < 0).any() \
            or fractions.sum() <= 0:
        raise ConfigError(f"{owner}: class_fractions must be 3 numbers >= 0 (E, S, SB), not all "
                          f"0, got {class_fractions!r}")
    fractions = fractions / fractions.sum()
    # the output, and about ten block-sized float32 temporaries
    check_memory(4 * 3 * n_images * size * size + 40 * 3 * BLOCK_PIXELS, owner,
                 f"ask for fewer than {n_images} images of {size}x{size}")
    block = max(1, BLOCK_PIXELS // (size * size))
    images = np.empty((n_images, 3, size, size), dtype=np.float32)
    counts, volunteers, params, classes = [], [], [], []
    for b, start in enumerate(range(0, n_images, block)):
        rng = np.random.default_rng(np.random.SeedSequence([seed, b]))
        p = _draw(rng, block, size, fractions)  # a whole block: the first k never change
        c, v = _volunteers(p, rng)
        stop = min(start + block, n_images)
        keep = stop - start
        if keep == block:
            images[start:stop] = _render(p, rng, size)
        else:  # the last block is rendered whole too, so its noise does not depend on keep
            images[start:stop] = _render(p, rng, size)[:keep]
        p = {k: val[:keep] for k, val in p.items()}
        counts.append(c[:keep])
        volunteers.append(v[:keep])
        params.append(p)
        classes.append(p["class"])
    counts = np.concatenate(counts)
    votes = vote_fractions(counts)
    info = {"classes": np.concatenate(classes).astype(np.int64),
            "votes": votes.astype(np.float32), "vote_columns": GZ2_COLUMNS,
            "counts": counts.astype(np.int64),
            "n_volunteers": np.concatenate(volunteers).astype(np.int64),
            "vote_classes": classes_from_votes(votes),
            "params": {name: np.concatenate([p[name] for p in params]).astype(np.float32)
                       for name in GALAXY_PARAMS}}
    return images, info


__all__ = ["make_galaxies", "GALAXY_PARAMS", "GALAXY_CLASSES", "vote_fractions"]
