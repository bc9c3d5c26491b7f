"""Stellar spectra of 7 spectral types: the course's files, or a synthetic stand-in.

The course's practical classifies 1115 spectra of 3753 flux bins into the types
O, B, A, F, G, K, M. :func:`load_stellar_spectra` reads its two text files when they are
in ``cache_dir("stellar_spectra")``; otherwise :func:`make_stellar_spectra` builds a stand-in
of the same shape and class imbalance from simple stellar physics, in well under a second:

- a black-body continuum at a temperature drawn in the type's range, reddened by a random
  amount of interstellar dust and distorted by a smooth flux-calibration error;
- absorption lines whose strengths follow the temperature as on a classification chart:
  He II (O), He I (B), the Balmer series (strongest in A), Ca II H & K, the G band, Ca I,
  Mg b, Na D and a forest of weak metal lines (F, G, K), TiO bands (M);
- a star-to-star scatter of line strengths (metallicity, gravity), small Doppler shifts,
  and noise at a random signal-to-noise ratio.

Wavelength grid: 3753 bins of 1 angstrom, centred on 3750, 3751, ..., 7502 angstrom
(:data:`WAVELENGTHS`), from the Balmer jump region to the TiO band at 7054 angstrom.

How hard it is (measured on ``make_stellar_spectra(seed)`` for seeds 0-4, a stratified 80/20
split, inputs normalised as in the course — subtract the training mean, divide by the
largest absolute value —, Adam(1e-3), batch 32, 400 epochs; details in
``datasets/README.md``): a linear softmax classifier ``Dense(3753, 7)`` reaches 73 % on the
test part (70-79 %), the course's MLP ``Dense(3753, 64), Sigmoid(), Dense(64, 7)`` 77 %
(71-84 %). Neighbouring types overlap in temperature once dust, noise and the scatter of
line strengths are added, as in real classifications.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, MissingFileError
from . import messages
from ._args import as_path, check_memory, pair, seed as check_seed, shown as _shown
from .download import file_error
from .paths import cache_dir, is_file

SPECTRAL_TYPES = ("O", "B", "A", "F", "G", "K", "M")
SPECTRA_COUNTS = (12, 134, 109, 192, 300, 327, 41)  # the course's 1115 spectra
N_BINS = 3753
WAVELENGTHS = 3750.0 + np.arange(N_BINS, dtype=np.float64)  # angstrom
SPECTRA_FILES = ("stellar_spectra.txt", "stellar_spectra_targets.txt")

# effective temperature range of each type (K), main sequence
TEMPERATURES = {"O": (30000, 45000), "B": (10000, 30000), "A": (7300, 10000),
                "F": (6000, 7300), "G": (5300, 6000), "K": (3900, 5300), "M": (2600, 3900)}
HC_OVER_K = 1.4388e8  # h c / k_B in angstrom kelvin
C_KM_S = 299792.458

# Absorption lines: family -> rest wavelengths (angstrom) and relative strengths. How strong
# a family is at a temperature is set by _family_strength; the Gaussian width (angstrom) by
# LINE_SIGMA (the Balmer lines of A stars are pressure-broadened).
LINES = {
    "HeII": ((4541.6, 4685.7, 5411.5), (0.5, 1.0, 0.6)),
    "HeI": ((4026.2, 4387.9, 4471.5, 4921.9, 5875.6, 6678.2), (0.6, 0.4, 1.0, 0.5, 0.8, 0.5)),
    "H": ((3889.1, 3970.1, 4101.7, 4340.5, 4861.3, 6562.8), (0.6, 0.7, 0.8, 0.9, 1.0, 1.2)),
    "CaII": ((3933.7, 3968.5), (1.0, 0.9)),
    "Gband": ((4300.0,), (1.0,)),
    "CaI": ((4226.7,), (1.0,)),
    "metals": ((4045.8, 4383.5, 5167.3, 5172.7, 5183.6, 5269.5, 5328.0, 5889.9, 5895.9),
               (0.6, 0.6, 0.5, 0.7, 0.8, 0.5, 0.4, 1.0, 0.9)),
}
LINE_SIGMA = {"HeII": 3.0, "HeI": 3.0, "H": None, "CaII": 5.0, "Gband": 8.0, "CaI": 3.0,
              "metals": 2.0}
TIO_HEADS = (4954.6, 5166.7, 5448.0, 5847.0, 6158.7, 6651.3, 7053.9)  # band heads, angstrom
TIO_DEPTHS = (0.35, 0.45, 0.5, 0.5, 0.8, 0.7, 1.0)
TIO_DECAY = 80.0  # angstrom: each band fades towards the red


def _family_strength(family: str, log_t: np.ndarray) -> np.ndarray:
    """Peak optical depth of a line family for stars of temperature ``10**log_t``.

    Bumps (in log T) at the temperature where a family is strongest, or steps for lines
    that keep growing towards cool stars.
    """
    def bump(peak, width):
        return np.exp(-0.5 * ((log_t - np.log10(peak)) / width) ** 2)

    def cooler_than(t, width):
        return 1.0 / (1.0 + np.exp((log_t - np.log10(t)) / width))

    if family == "HeII":
        return 0.6 * (1.0 - cooler_than(33000, 0.03))  # only in the hottest stars
    if family == "HeI":
        return 0.7 * bump(20000, 0.12)
    if family == "H":
        return 1.6 * bump(9500, 0.12) + 0.15
    if family == "CaII":
        return 2.5 * cooler_than(7000, 0.04)
    if family == "Gband":
        return 0.6 * bump(5000, 0.06)
    if family == "CaI":
        return 0.9 * bump(4000, 0.07)
    if family == "metals":
        return 0.8 * cooler_than(6200, 0.05)
    if family == "TiO":
        return 1.2 * cooler_than(3800, 0.025)
    raise KeyError(family)


def _metal_forest(n_lines: int = 300):
    """Positions and relative depths of weak metal lines, the same for every seed."""
    rng = np.random.default_rng(20240917)  # fixed: it is the physics, not a draw
    centers = rng.uniform(WAVELENGTHS[0] + 10, WAVELENGTHS[-1] - 10, n_lines)
    depths = rng.uniform(0.05, 0.3, n_lines) * (WAVELENGTHS[0] / centers) ** 2
    return centers, depths


def _add_lines(tau, strength, centers, depths, sigma, shift):
    """Add Gaussian lines to the optical depth ``tau (N, L)``, each in a local window.

    ``strength (N,)`` scales the lines of each star, ``shift (N,)`` is its Doppler factor
    ``v/c``, ``sigma`` (scalar or ``(N,)``) the width in angstrom.
    """
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), strength.shape)
    half = int(np.ceil(5 * sigma.max() + np.abs(shift).max() * WAVELENGTHS[-1])) + 1
    for center, depth in zip(centers, depths):
        i0 = max(0, int(center - WAVELENGTHS[0]) - half)
        i1 = min(N_BINS, int(center - WAVELENGTHS[0]) + half + 1)
        lam = WAVELENGTHS[i0:i1]
        observed = center * (1 + shift)[:, None]
        profile = np.exp(-0.5 * ((lam - observed) / sigma[:, None]) ** 2)
        tau[:, i0:i1] += (strength * depth)[:, None] * profile


def make_stellar_spectra(seed: int = 0, counts=SPECTRA_COUNTS, snr=(8.0, 40.0)):
    """A synthetic stand-in for the course's stellar spectra.

    Parameters
    ----------
    seed : int
        Same seed, identical arrays.
    counts : sequence of 7 ints
        Spectra of each type O, B, A, F, G, K, M (default: the course's 1115).
    snr : (float, float)
        Range of the per-bin signal-to-noise ratio, drawn log-uniformly for each star.

    Returns
    -------
    x : (N, 3753) float32
        Flux in arbitrary units on the grid :data:`WAVELENGTHS` (about 1 for a star at
        the median distance; the brightness spreads by factors of e for distance).
    y : (N,) int64
        Type ids into :data:`SPECTRAL_TYPES`, in a shuffled order.
    """
    owner = "make_stellar_spectra"
    try:
        counts = np.asarray(counts)
    except ValueError:
        counts = np.zeros(0)
    if counts.shape != (7,) or counts.dtype.kind not in "iu" or (counts < 0).any() \
            or counts.sum() == 0:
        raise ConfigError(f"{owner}: counts must be 7 integers >= 0 (O, B, A, F, G, K, M), not "
                          f"all 0, got {counts.tolist()}")
    low, high = pair(snr, "snr", owner, low=0)
    # float64 optical depth, continuum and flux, and their temporaries, while they are made
    check_memory(5 * 8 * N_BINS * int(counts.sum()), owner,
                 f"ask for fewer than {int(counts.sum())} spectra (the course has 1115)")
    rng = np.random.default_rng(check_seed(seed, owner))
    y = rng.permutation(np.repeat(np.arange(7), counts))
    n = len(y)
    bounds = np.log10([TEMPERATURES[t] for t in SPECTRAL_TYPES])
    log_t = rng.uniform(bounds[y, 0], bounds[y, 1])
    temperature = 10.0 ** log_t

    # continuum: Planck's law, reddened by dust (A_lambda / E(B-V) ~ 3.1 (5500/lambda)^1.2)
    lam = WAVELENGTHS
    continuum = lam ** -5.0 / np.expm1(HC_OVER_K / (lam * temperature[:, None]))
    continuum /= continuum.mean(axis=1, keepdims=True)
    ebv = rng.exponential(0.15, n)
    continuum *= 10.0 ** (-0.4 * ebv[:, None] * 3.1 * (5500.0 / lam) ** 1.2)

    # absorption: optical depth tau, flux = continuum * exp(-tau)
    tau = np.zeros((n, N_BINS))
    shift = rng.normal(0.0, 30.0, n) / C_KM_S
    metallicity = rng.lognormal(0.0, 0.4, n)  # scales all metal lines of a star together
    for family, (centers, depths) in LINES.items():
        strength = _family_strength(family, log_t) * rng.lognormal(0.0, 0.4, n)
        if family in ("CaII", "Gband", "CaI", "metals"):
            strength *= metallicity
        sigma = LINE_SIGMA[family]
        if family == "H":  # pressure broadening: from 3 A when weak to ~9 A at the A-star peak
            sigma = 3.0 + 6.0 * strength / _family_strength("H", np.log10(9500.0))
        _add_lines(tau, strength, centers, depths, sigma, shift)
    forest_centers, forest_depths = _metal_forest()
    _add_lines(tau, _family_strength("metals", log_t) * metallicity, forest_centers,
               forest_depths, 1.2, shift)
    tio = _family_strength("TiO", log_t) * rng.lognormal(0.0, 0.4, n)
    for head, depth in zip(TIO_HEADS, TIO_DEPTHS):
        past = np.clip(lam - head, 0.0, None)
        band = np.where(lam >= head, np.exp(-past / TIO_DECAY), 0.0)
        tau += (tio * depth)[:, None] * band
    flux = continuum * np.exp(-tau)

    # instrument: a smooth calibration error, the star's brightness, and noise
    u = (lam - lam.mean()) / (lam[-1] - lam.mean())
    a1, a2 = rng.normal(0.0, 0.08, (2, n, 1))
    flux *= np.exp(a1 * u + a2 * (u ** 2 - 1 / 3))
    flux *= rng.lognormal(0.0, 1.0, (n, 1))  # distance: apparent brightness spans ~e^+-2
    s_lo, s_hi = np.log(low), np.log(high)
    noise = flux.mean(axis=1, keepdims=True) / np.exp(rng.uniform(s_lo, s_hi, (n, 1)))
    flux += noise * rng.standard_normal((n, N_BINS))
    return flux.astype(np.float32), y.astype(np.int64)


def _read_course_files(folder: Path):
    """The course's text files: spectra ``(N, 3753)`` and one-hot targets ``(N, 7)``."""
    found = []
    for name in SPECTRA_FILES:
        for candidate in (folder / name, folder / (name + ".gz")):
            if is_file(candidate):
                found.append(candidate)
                break
        else:
            return None
    x_path, t_path = found
    try:
        x = np.loadtxt(x_path, dtype=np.float64, ndmin=2)
        t = np.loadtxt(t_path, dtype=np.float64, ndmin=2)
    except (PermissionError, IsADirectoryError) as exc:
        raise file_error(exc.filename or folder, exc) from exc
    except (ValueError, EOFError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the course's spectra files in {folder} "
                        f"({type(exc).__name__}: {exc}); they are damaged: copy them "
                        "again") from exc
    if x.shape[1] != N_BINS:
        raise DataError(f"{x_path} has {x.shape[1]} columns, expected {N_BINS} flux bins per "
                        "spectrum; the file is damaged or not the course's: copy it again")
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        row, column = (int(i) for i in bad[0])
        raise DataError(f"{x_path} holds {_shown(x[row, column])} at row {row + 1}, column {column + 1} "
                        "(NaN and inf are refused); the file is damaged: copy it again")
    if t.shape != (len(x), 7) or not (np.isin(t, (0, 1)).all() and (t.sum(axis=1) == 1).all()):
        raise DataError(f"{t_path} should hold {len(x)} one-hot rows of 7 types (one per "
                        f"spectrum of {x_path.name}), found shape {t.shape}; copy both files "
                        "again")
    return x.astype(np.float32), t.argmax(axis=1).astype(np.int64)


def load_stellar_spectra(source: str = "auto", path=None, seed: int = 0):
    """The course's stellar spectra, or the synthetic stand-in when they are absent.

    Parameters
    ----------
    source : "auto", "files" or "synthetic"
        ``"files"``: read the course's files (error if absent); ``"synthetic"``:
        :func:`make_stellar_spectra` ``(seed)``; ``"auto"``: the files when present, else the
        stand-in. One line, once per process, on the logger ``"nn.data"`` says which
        (:mod:`nn.data.messages`), so that nobody mistakes one for the other.
    path : str or Path, optional
        The folder of the files :data:`SPECTRA_FILES` (text, whitespace-separated, one
        spectrum or one one-hot row per line; ``.gz`` accepted). Default
        ``cache_dir("stellar_spectra")``. They have no public URL: the course hands them out.
        A folder given here must hold them (``"auto"`` falls back to the stand-in only when
        it looks in the default folder).

    Returns
    -------
    x : (N, 3753) float32 flux (N = 1115 for the course's files)
    y : (N,) int64 type ids into :data:`SPECTRAL_TYPES`
    """
    owner = "load_stellar_spectra"
    if not isinstance(source, str) or source not in ("auto", "files", "synthetic"):
        raise ConfigError(f"{owner}: source must be 'auto', 'files' or 'synthetic', got "
                          f"{source!r}")
    check_seed(seed, owner)
    folder = as_path(path, "path", owner) if path is not None else cache_dir("stellar_spectra")
    if source != "synthetic":
        data = _read_course_files(folder)
        if data is not None:
            messages.found("stellar spectra", f"the course's files in {folder}")
            return data
        if source == "files" or path is not None:
            raise MissingFileError(
                f"{owner}: the course's spectra files {' and '.join(SPECTRA_FILES)} are not in "
                f"{folder}; copy them there (they come with the course material), or use "
                "source='synthetic' for the stand-in")
        messages.standing_in(
            "stellar spectra", f"using the synthetic stand-in make_stellar_spectra(seed="
            f"{seed}); for the course's files, copy {' and '.join(SPECTRA_FILES)} into {folder}")
    return make_stellar_spectra(seed)
