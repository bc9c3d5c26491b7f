"""The synthetic generators (stellar spectra, radio sky): shapes, determinism, statistics,
and the reader of the course's spectra files."""
from __future__ import annotations

import gzip
import logging

import numpy as np
import pytest

from nn.data import (RADIO_CLASSES, RADIO_PARAMS, SPECTRAL_TYPES, WAVELENGTHS, CenterMaxAbs,
                     load_stellar_spectra, make_radio_sky, make_stellar_spectra, one_hot,
                     split_indices)
from nn.data import messages
from nn.data import spectra as spectra_module
from nn.data.spectra import SPECTRA_COUNTS, SPECTRA_FILES

SMALL = (2, 3, 3, 3, 3, 3, 2)


@pytest.fixture(scope="module")
def spectra():
    return make_stellar_spectra(0)


# -- stellar spectra -----------------------------------------------------------------------------
def test_spectra_shape_dtype_and_the_course_class_counts(spectra):
    x, y = spectra
    assert x.shape == (1115, 3753) and x.dtype == np.float32
    assert y.shape == (1115,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [12, 134, 109, 192, 300, 327, 41])
    assert SPECTRA_COUNTS == (12, 134, 109, 192, 300, 327, 41)
    assert SPECTRAL_TYPES == ("O", "B", "A", "F", "G", "K", "M")
    assert np.isfinite(x).all()
    assert not np.all(np.diff(y) >= 0)  # shuffled, not sorted by type


def test_spectra_wavelength_grid():
    assert WAVELENGTHS.shape == (3753,)
    assert WAVELENGTHS[0] == 3750.0 and WAVELENGTHS[-1] == 7502.0
    np.testing.assert_allclose(np.diff(WAVELENGTHS), 1.0)


def test_spectra_same_seed_same_arrays_other_seed_other_arrays():
    x1, y1 = make_stellar_spectra(5, counts=SMALL)
    x2, y2 = make_stellar_spectra(5, counts=SMALL)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    x3, _ = make_stellar_spectra(6, counts=SMALL)
    assert not np.allclose(x1, x3)
    np.testing.assert_array_equal(np.bincount(y1), SMALL)


def _depth(x, center, half=3, side=(15, 35)):
    """Line depth: 1 - flux at the line / flux of the continuum windows on both sides."""
    lam = WAVELENGTHS
    core = np.abs(lam - center) <= half
    cont = (np.abs(lam - center) >= side[0]) & (np.abs(lam - center) <= side[1])
    return 1 - x[:, core].mean(axis=1) / x[:, cont].mean(axis=1)


def _median_by_type(values, y):
    return np.array([np.median(values[y == t]) for t in range(7)])


def test_spectra_follow_the_spectral_sequence(spectra):
    x, y = spectra
    O, B, A, F, G, K, M = range(7)
    # hot stars are blue: the blue / red flux ratio falls from O to M
    colour = _median_by_type(x[:, WAVELENGTHS < 4200].mean(1) / x[:, WAVELENGTHS > 7300].mean(1), y)
    assert np.all(np.diff(colour) < 0), colour
    # the Balmer lines peak in A stars
    balmer = _median_by_type(_depth(x, 4861.3, side=(40, 70)), y)
    assert balmer.argmax() == A and balmer[A] > 2 * balmer[K]
    # He II only in O stars, He I strongest in B stars
    assert _median_by_type(_depth(x, 4685.7), y).argmax() == O
    assert _median_by_type(_depth(x, 4471.5), y).argmax() == B
    # Ca II K grows towards the cool types; the TiO band at 7054 A marks M stars
    ca_k = _median_by_type(_depth(x, 3933.7, half=4, side=(60, 90)), y)
    assert ca_k[G] > 3 * ca_k[A] and ca_k[K] > ca_k[F]
    lam = WAVELENGTHS
    tio = x[:, (lam > 7060) & (lam < 7100)].mean(1) / x[:, (lam > 7000) & (lam < 7040)].mean(1)
    tio = _median_by_type(tio, y)
    assert tio.argmin() == M and tio[M] < 0.8 < tio[K]


def test_spectra_are_noisy_and_doppler_shifted(spectra):
    x, _ = spectra
    # noise: neighbouring bins of a line-free region differ by more than a smooth continuum would
    region = x[:, (WAVELENGTHS > 6000) & (WAVELENGTHS < 6100)]
    snr = region.mean(axis=1) / (np.diff(region, axis=1).std(axis=1) / np.sqrt(2))
    assert 5 < np.median(snr) < 50
    # Doppler: the Halpha core is not at the same bin in every star
    core = (WAVELENGTHS > 6550) & (WAVELENGTHS < 6576)
    assert np.ptp(x[:, core].argmin(axis=1)) >= 2


def test_a_linear_model_does_not_solve_the_spectra(spectra):
    """Ridge regression to one-hot targets (the dual form: fast with N << L) on a stratified
    hold-out: well above chance, well below perfect (an MLP trained with nn reaches about
    75-80 %; see datasets/README.md for the measurements)."""
    x, y = spectra
    parts = split_indices(len(y), test=0.25, seed=0, y=y)
    train, test = parts["train"], parts["test"]
    norm = CenterMaxAbs().fit(x[train])
    a, c = norm.transform(x[train]), norm.transform(x[test])
    alpha = np.linalg.solve(a @ a.T + 0.1 * np.eye(len(a), dtype=np.float32),
                            one_hot(y[train], 7, np.float32) - np.float32(1 / 7))
    accuracy = np.mean(((c @ a.T) @ alpha).argmax(axis=1) == y[test])
    majority = np.bincount(y[test]).max() / len(test)
    assert majority + 0.25 < accuracy < 0.92


def test_spectra_counts_are_checked():
    with pytest.raises(ValueError, match="7 integers >= 0"):
        make_stellar_spectra(0, counts=(1, 2, 3))


# -- the course's spectra files --------------------------------------------------------------------
def write_course_files(folder, x, y, compress=False):
    folder.mkdir(parents=True, exist_ok=True)
    for name, array, fmt in ((SPECTRA_FILES[0], x, "%.6g"), (SPECTRA_FILES[1], one_hot(y, 7), "%d")):
        path = folder / (name + (".gz" if compress else ""))
        np.savetxt(path, array, fmt=fmt)  # numpy gzips a .gz name


@pytest.mark.parametrize("compress", [False, True])
def test_load_stellar_spectra_reads_the_course_format(tmp_path, compress):
    x, y = make_stellar_spectra(1, counts=(1, 1, 1, 0, 1, 0, 1))
    write_course_files(tmp_path, x, y, compress)
    if compress:
        assert gzip.open(tmp_path / (SPECTRA_FILES[0] + ".gz")).read(1)
    for source in ("auto", "files"):
        x_read, y_read = load_stellar_spectra(source, path=tmp_path)
        assert x_read.shape == (5, 3753) and x_read.dtype == np.float32
        np.testing.assert_allclose(x_read, x, rtol=1e-5)
        np.testing.assert_array_equal(y_read, y)


def test_load_stellar_spectra_falls_back_to_the_stand_in_with_one_note(tmp_path, monkeypatch,
                                                                        caplog):
    monkeypatch.setenv("NN_DATA_DIR", str(tmp_path))
    calls = []

    def small_stand_in(seed):  # the full-size generator is tested above; keep this test fast
        calls.append(seed)
        return make_stellar_spectra(seed, counts=SMALL)
    monkeypatch.setattr(spectra_module, "make_stellar_spectra", small_stand_in)
    messages.forget()
    with caplog.at_level(logging.INFO, logger="nn.data"):
        x, y = load_stellar_spectra(seed=3)
        load_stellar_spectra(seed=3)  # the note is made once per process, not per call
    notes = [r.getMessage() for r in caplog.records if r.name == "nn.data"]
    assert len(notes) == 1 and "synthetic stand-in" in notes[0]
    assert SPECTRA_FILES[0] in notes[0] and str(tmp_path / "stellar_spectra") in notes[0]
    x_synthetic, y_synthetic = load_stellar_spectra("synthetic", seed=3)
    assert calls == [3, 3, 3]
    np.testing.assert_array_equal(x, x_synthetic)
    np.testing.assert_array_equal(y, y_synthetic)
    with pytest.raises(FileNotFoundError, match=SPECTRA_FILES[0]):
        load_stellar_spectra("files")
    with pytest.raises(ValueError, match="source must be 'auto', 'files' or 'synthetic'"):
        load_stellar_spectra("real")


def test_damaged_course_files_are_refused(tmp_path):
    x, y = make_stellar_spectra(2, counts=(1, 1, 0, 0, 0, 0, 1))
    write_course_files(tmp_path, x[:, :-1], y)  # a column lost
    with pytest.raises(ValueError, match="3752 columns, expected 3753"):
        load_stellar_spectra("files", path=tmp_path)
    write_course_files(tmp_path, x, y)
    np.savetxt(tmp_path / SPECTRA_FILES[1], np.ones((3, 7)), fmt="%d")  # not one-hot
    with pytest.raises(ValueError, match="one-hot rows of 7 types"):
        load_stellar_spectra("files", path=tmp_path)
    np.savetxt(tmp_path / SPECTRA_FILES[1], one_hot(y, 7)[:2], fmt="%d")  # one row short
    with pytest.raises(ValueError, match="one-hot rows"):
        load_stellar_spectra("files", path=tmp_path)


# -- radio sky -------------------------------------------------------------------------------------
def test_radio_sky_shapes_and_catalogue_structure():
    images, targets = make_radio_sky(4, size=64, seed=0)
    assert images.shape == (4, 1, 64, 64) and images.dtype == np.float32
    assert isinstance(targets, list) and len(targets) == 4
    for t in targets:
        k = len(t["boxes"])
        assert t["boxes"].shape == (k, 4) and t["boxes"].dtype == np.float32
        assert t["classes"].shape == (k,) and t["classes"].dtype == np.int64
        assert t["params"].shape == (k, 4) and t["params"].dtype == np.float32
        assert t["centers"].shape == (k, 2)
        assert set(np.unique(t["classes"])) <= {0, 1}
    assert RADIO_CLASSES == ("point", "extended") and RADIO_PARAMS == ("flux", "bmaj", "bmin", "pa")
    assert sum(len(t["boxes"]) for t in targets) > 40  # Poisson(20) sources per image


def test_radio_sky_is_deterministic():
    a, ta = make_radio_sky(3, size=48, seed=7)
    b, tb = make_radio_sky(3, size=48, seed=7)
    np.testing.assert_array_equal(a, b)
    for s, t in zip(ta, tb):
        for key in s:
            np.testing.assert_array_equal(s[key], t[key])
    c, _ = make_radio_sky(3, size=48, seed=8)
    assert not np.array_equal(a, c)


def test_radio_noise_is_gaussian_with_the_asked_sigma():
    images, targets = make_radio_sky(4, size=128, seed=1, sources_per_image=0, noise=2.0)
    assert all(len(t["boxes"]) == 0 for t in targets)
    assert abs(images.mean()) < 0.02 and abs(images.std() - 2.0) < 0.02
    assert abs(np.mean(np.abs(images) > 4.0) - 0.0455) < 0.003  # the 2-sigma tail of a Gaussian


def test_radio_source_parameters_follow_their_distributions():
    _, targets = make_radio_sky(300, size=32, seed=2, sources_per_image=40, noise=0.0)
    params = np.concatenate([t["params"] for t in targets])
    classes = np.concatenate([t["classes"] for t in targets])
    flux, bmaj, bmin, pa = params.T
    assert len(flux) > 10000
    # dN/dS ~ S^-2 on [5, 500]: P(S > 50) = (1/50 - 1/500) / (1/5 - 1/500) = 0.0909
    assert flux.min() >= 5 and flux.max() <= 500
    assert abs(np.mean(flux > 50) - 0.0909) < 0.01
    assert abs(classes.mean() - 0.3) < 0.02
    point, ext = classes == 0, classes == 1
    np.testing.assert_array_equal(bmaj[point], 3.0)
    np.testing.assert_array_equal(bmin[point], 3.0)
    np.testing.assert_array_equal(pa[point], 0.0)
    assert bmaj[ext].min() >= 4.5 - 1e-4 and bmaj[ext].max() <= 20 + 1e-4
    assert np.all(bmin[ext] <= bmaj[ext]) and np.all(bmin[ext] >= 3.0 - 1e-6)
    assert 0 <= pa[ext].min() and pa[ext].max() < 180 and pa[ext].std() > 40


def test_radio_boxes_hold_their_sources():
    size = 64
    _, targets = make_radio_sky(50, size=size, seed=3)
    boxes = np.concatenate([t["boxes"] for t in targets])
    centers = np.concatenate([t["centers"] for t in targets])
    params = np.concatenate([t["params"] for t in targets])
    assert boxes.min() >= 0 and boxes.max() <= size
    assert np.all((boxes[:, 0] <= centers[:, 0]) & (centers[:, 0] <= boxes[:, 2]))
    assert np.all((boxes[:, 1] <= centers[:, 1]) & (centers[:, 1] <= boxes[:, 3]))
    inside = np.all((boxes > 0) & (boxes < size), axis=1)
    # an unclipped box spans at least the minor axis and at most the major axis, both ways
    width, height = boxes[inside, 2] - boxes[inside, 0], boxes[inside, 3] - boxes[inside, 1]
    bmaj, bmin = params[inside, 1], params[inside, 2]
    for extent in (width, height):
        assert np.all(extent >= 2 * bmin - 1e-3) and np.all(extent <= 2 * bmaj + 1e-3)


def _isolated_sources(size=96, n=200, seed=4, extended_fraction=1.0):
    """Images with exactly one source, well inside the image, and no noise."""
    images, targets = make_radio_sky(n, size=size, seed=seed, sources_per_image=1.0, noise=0.0,
                                     extended_fraction=extended_fraction)
    keep = [i for i, t in enumerate(targets) if len(t["boxes"]) == 1
            and np.all(np.abs(t["centers"][0] - size / 2) < size / 2 - 2.2 * t["params"][0, 1])]
    return images[keep, 0].astype(np.float64), [targets[i] for i in keep]


def test_radio_integrated_flux_is_the_catalogue_flux():
    images, targets = _isolated_sources(extended_fraction=0.5)
    assert len(images) > 20
    beam_area = np.pi * 3.0 ** 2 / (4 * np.log(2))  # pixels in a Gaussian beam of FWHM 3
    flux = np.array([t["params"][0, 0] for t in targets])
    np.testing.assert_allclose(images.sum(axis=(1, 2)) / beam_area, flux, rtol=0.01)


def test_radio_source_shape_and_position_angle_from_image_moments():
    images, targets = _isolated_sources()
    rows, cols = np.mgrid[0:96, 0:96] + 0.5
    checked = 0
    for image, t in zip(images, targets):
        flux, bmaj, bmin, pa = t["params"][0]
        w = image / image.sum()
        mx, my = (w * cols).sum(), (w * rows).sum()
        np.testing.assert_allclose([mx, my], t["centers"][0], atol=0.05)
        cxx, cyy = (w * (cols - mx) ** 2).sum(), (w * (rows - my) ** 2).sum()
        cxy = (w * (cols - mx) * (rows - my)).sum()
        eig = np.linalg.eigvalsh([[cxx, cxy], [cxy, cyy]])
        fwhm = np.sqrt(8 * np.log(2) * eig)
        np.testing.assert_allclose(fwhm, [bmin, bmaj], rtol=0.03)
        if bmaj > 1.3 * bmin:
            # PA counts from +y towards -x: the major axis points along 90 degrees + PA
            angle = np.degrees(0.5 * np.arctan2(2 * cxy, cxx - cyy))
            assert abs((angle - (pa + 90) + 90) % 180 - 90) < 3
            checked += 1
    assert checked > 10


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_images=0), "n_images must be an int >= 1"),
    (dict(n_images=2, size=2.5), "size must be an int >= 1"),
    (dict(n_images=2, flux_range=(5, 1)), "0 < low < high"),
    (dict(n_images=2, beam=0), "beam must be a finite number > 0"),
])
def test_radio_sky_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_radio_sky(**kwargs)
