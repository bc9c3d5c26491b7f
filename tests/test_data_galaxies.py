"""Synthetic galaxies (make_galaxies): shapes, determinism, the statistics of what is drawn
and of the volunteers' votes; and load_galaxy_zoo2 on small fake catalogues and images."""
from __future__ import annotations

import gzip
import logging

import numpy as np
import pytest
from PIL import Image

from nn.data import (GALAXY_CLASSES, GALAXY_PARAMS, GZ2_COLUMNS, GZ2_TASKS, load_galaxy_zoo2,
                     make_galaxies, messages)
from nn.data.galaxies import vote_fractions
from nn.data.gz2 import KAGGLE_COLUMNS, classes_from_votes, task_slices
from nn.errors import DataError, MissingFileError

N = 1200  # about a second: enough for the statistics below to be far from their thresholds


@pytest.fixture(scope="module")
def sky():
    return make_galaxies(N, seed=7)


def tasks():
    return task_slices()


# -- what comes back ---------------------------------------------------------------------------
def test_shapes_dtypes_and_ranges(sky):
    images, info = sky
    assert images.shape == (N, 3, 64, 64) and images.dtype == np.float32
    assert np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    assert set(info) == {"classes", "votes", "vote_columns", "counts", "n_volunteers",
                         "vote_classes", "params"}
    assert info["classes"].shape == (N,) and info["classes"].dtype == np.int64
    assert info["votes"].shape == (N, 37) and info["votes"].dtype == np.float32
    assert info["counts"].shape == (N, 37) and info["counts"].dtype == np.int64
    assert info["vote_columns"] == GZ2_COLUMNS and len(GZ2_COLUMNS) == 37
    assert GZ2_COLUMNS[0] == "t01_smooth_or_features_a01_smooth"
    assert GZ2_COLUMNS[-1] == "t11_arms_number_a37_cant_tell"
    assert set(info["params"]) == set(GALAXY_PARAMS)
    assert all(a.shape == (N,) and a.dtype == np.float32 for a in info["params"].values())
    assert GALAXY_CLASSES == ("E", "S", "SB")


def test_the_sky_is_dark_and_the_galaxy_in_the_middle(sky):
    images, info = sky
    corners = images[:, :, :6, :6].reshape(N, -1)
    assert np.median(corners) < 0.08
    centre = images[:, :, 28:36, 28:36].mean(axis=(1, 2, 3))
    assert np.all(centre > corners.mean(axis=1))
    # the light's centroid is the drawn centre (ellipticals: one smooth component)
    e = np.flatnonzero(info["classes"] == 0)[:100]
    grey = images[e].mean(axis=1) ** 2   # weight the galaxy, not the noise
    grey = np.where(grey > 0.05, grey, 0)
    ys, xs = np.mgrid[0:64, 0:64] + 0.5
    cx = (grey * xs).sum(axis=(1, 2)) / grey.sum(axis=(1, 2))
    cy = (grey * ys).sum(axis=(1, 2)) / grey.sum(axis=(1, 2))
    off = np.hypot(cx - info["params"]["x"][e], cy - info["params"]["y"][e])
    assert np.median(off) < 0.7


def test_same_seed_same_galaxies_and_prefixes_do_not_change():
    a_images, a = make_galaxies(260, seed=3)   # crosses the first block of 256 images
    b_images, b = make_galaxies(260, seed=3)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a["votes"], b["votes"])
    small_images, small = make_galaxies(10, seed=3)
    np.testing.assert_array_equal(small_images, a_images[:10])
    np.testing.assert_array_equal(small["counts"], a["counts"][:10])
    for name in GALAXY_PARAMS:
        np.testing.assert_array_equal(small["params"][name], a["params"][name][:10])
    other_images, _ = make_galaxies(10, seed=4)
    assert not np.allclose(other_images, small_images)


# -- the truth ----------------------------------------------------------------------------------
def test_class_balance_and_chosen_fractions(sky):
    _, info = sky
    share = np.bincount(info["classes"], minlength=3) / N
    np.testing.assert_allclose(share, [0.4, 0.4, 0.2], atol=0.06)   # 4 binomial sigmas
    _, only_spirals = make_galaxies(40, seed=1, class_fractions=(0, 1, 0))
    assert set(only_spirals["classes"].tolist()) == {1}


def test_geometry_parameters_follow_their_laws(sky):
    _, info = sky
    p, cls = info["params"], info["classes"]
    e, disc, sb = cls == 0, cls > 0, cls == 2
    # ellipticals: E0 to E6, a pure Sérsic
    assert np.all((p["axis_ratio"][e] >= 0.35) & (p["axis_ratio"][e] <= 1))
    assert np.all(p["bulge_fraction"][e] == 1) and np.isnan(p["inclination"][e]).all()
    assert np.all((p["sersic_n"][e] >= 2.5) & (p["sersic_n"][e] <= 6))
    assert np.all((p["bulge_re"][e] >= 3.5) & (p["bulge_re"][e] <= 9))
    assert np.all(p["arms"][e] == 0) and np.all(p["bar_length"][e] == 0)
    # discs: random orientations (cos i uniform), a thick disc's apparent axis ratio
    cos_i = np.cos(np.radians(p["inclination"][disc]))
    assert abs(cos_i.mean() - 0.5) < 0.04
    np.testing.assert_allclose(np.quantile(cos_i, [0.25, 0.75]), [0.25, 0.75], atol=0.05)
    np.testing.assert_allclose(p["axis_ratio"][disc],
                               np.sqrt(cos_i ** 2 + 0.12 ** 2 * (1 - cos_i ** 2)), rtol=1e-5)
    assert np.all((p["disc_scale"][disc] >= 3.5) & (p["disc_scale"][disc] <= 8))
    bt = p["bulge_fraction"][disc]
    assert np.all((bt >= 0.02) & (bt <= 0.6))
    assert abs(np.median(np.log(bt)) - np.log(np.sqrt(0.02 * 0.6))) < 0.25   # log-uniform
    assert set(np.unique(p["arms"][disc]).tolist()) <= set(range(1, 7))
    assert np.bincount(p["arms"][disc].astype(int)).argmax() == 2
    assert np.all((p["pitch"][disc] >= 8) & (p["pitch"][disc] <= 38))
    assert set(np.unique(p["winding"][disc]).tolist()) == {-1, 1}
    assert np.all((p["bar_length"] > 0) == sb) and np.isnan(p["bar_angle"][~sb]).all()
    assert np.all((p["pa"] >= 0) & (p["pa"] < 180))


def test_sizes_scale_with_the_image():
    _, info = make_galaxies(64, size=128, seed=2)
    p, disc = info["params"], info["classes"] > 0
    assert np.all((p["disc_scale"][disc] >= 7) & (p["disc_scale"][disc] <= 16))
    assert np.all(np.abs(p["x"] - 64) < 5) and np.all(np.abs(p["psf_fwhm"] - 3.2) <= 1.2)


def test_elliptical_images_point_along_their_position_angle(sky):
    images, info = sky
    p = info["params"]
    chosen = np.flatnonzero((info["classes"] == 0) & (p["axis_ratio"] < 0.6)
                            & (p["bulge_re"] > 5))[:40]
    assert len(chosen) >= 10
    ys, xs = np.mgrid[0:64, 0:64] + 0.5
    errors = []
    for i in chosen:
        w = np.clip(images[i].mean(axis=0) - 0.1, 0, None)
        dx, dy = xs - p["x"][i], ys - p["y"][i]
        cxx, cyy, cxy = (w * dx * dx).sum(), (w * dy * dy).sum(), (w * dx * dy).sum()
        angle = np.degrees(0.5 * np.arctan2(2 * cxy, cxx - cyy)) % 180
        errors.append(abs((angle - p["pa"][i] + 90) % 180 - 90))
    assert np.median(errors) < 8


def azimuthal_structure(image, x, y, pa, q):
    """How much the light varies around ellipses (the galaxy's own shape), over its mean:
    per ring of 2 px from 3 to 15 px, the scatter of the means of 12 sectors (averaging
    the pixels of a sector takes most of the noise out)."""
    grey = image.mean(axis=0)
    ys, xs = np.mgrid[0:64, 0:64] + 0.5
    t = np.radians(pa)
    u = (xs - x) * np.cos(t) + (ys - y) * np.sin(t)
    v = (-(xs - x) * np.sin(t) + (ys - y) * np.cos(t)) / q
    r, sector = np.hypot(u, v), ((np.arctan2(v, u) + np.pi) / (2 * np.pi) * 12).astype(int) % 12
    ratios = []
    for low in range(3, 15, 2):
        ring = (r >= low) & (r < low + 2)
        means = [grey[ring & (sector == k)].mean() for k in range(12)
                 if (ring & (sector == k)).any()]
        if len(means) == 12 and np.mean(means) > 0.1:
            ratios.append(np.std(means) / np.mean(means))
    return np.mean(ratios) if ratios else np.nan


def test_spirals_have_more_azimuthal_structure_than_ellipticals(sky):
    images, info = sky
    p, cls = info["params"], info["classes"]
    face_on_spirals = np.flatnonzero((cls == 1) & (p["inclination"] < 50)
                                     & (p["arm_strength"] > 0.5) & (p["noise"] < 0.015))[:30]
    ellipticals = np.flatnonzero((cls == 0) & (p["noise"] < 0.015))[:30]
    s = [azimuthal_structure(images[i], p["x"][i], p["y"][i], p["pa"][i], p["axis_ratio"][i])
         for i in face_on_spirals]
    e = [azimuthal_structure(images[i], p["x"][i], p["y"][i], p["pa"][i], p["axis_ratio"][i])
         for i in ellipticals]
    assert np.nanmedian(s) > 2.5 * np.nanmedian(e)


def test_ellipticals_are_redder_than_spirals(sky):
    images, info = sky
    bright = images.mean(axis=1) > 0.25
    red_minus_blue = np.array([(im[0] - im[2])[m].mean() if m.any() else np.nan
                               for im, m in zip(images, bright)])
    cls = info["classes"]
    assert np.nanmedian(red_minus_blue[cls == 0]) > np.nanmedian(red_minus_blue[cls == 1]) + 0.05


# -- the volunteers ---------------------------------------------------------------------------
def test_vote_fractions_are_fractions_per_question(sky):
    _, info = sky
    votes, counts = info["votes"], info["counts"]
    assert votes.min() >= 0 and votes.max() <= 1
    for task, s in tasks().items():
        total = votes[:, s].sum(axis=1)
        reached = counts[:, s].sum(axis=1) > 0
        np.testing.assert_allclose(total[reached], 1, atol=1e-5, err_msg=task)
        assert np.all(total[~reached] == 0), task
    assert np.all(counts[:, tasks()["t01_smooth_or_features"]].sum(axis=1)
                  == info["n_volunteers"])
    assert info["n_volunteers"].min() >= 20 and 38 < np.median(info["n_volunteers"]) < 52
    np.testing.assert_allclose(vote_fractions(counts), votes, atol=1e-6)


def test_volunteers_walk_the_decision_tree(sky):
    _, info = sky
    c = info["counts"]
    s = tasks()
    t01, t02, t04, t06 = (c[:, s[t]] for t in ("t01_smooth_or_features", "t02_edgeon",
                                                  "t04_spiral", "t06_odd"))
    asked = {"t02_edgeon": t01[:, 1], "t03_bar": t02[:, 1], "t04_spiral": t02[:, 1],
             "t05_bulge_prominence": t02[:, 1], "t06_odd": t01[:, 0] + t01[:, 1],
             "t07_rounded": t01[:, 0], "t08_odd_feature": t06[:, 0],
             "t09_bulge_shape": t02[:, 0], "t10_arms_winding": t04[:, 0],
             "t11_arms_number": t04[:, 0]}
    for task, who in asked.items():
        np.testing.assert_array_equal(c[:, s[task]].sum(axis=1), who, err_msg=task)


def test_labels_are_soft_and_sometimes_wrong(sky):
    _, info = sky
    agree = np.mean(info["vote_classes"] == info["classes"])
    assert 0.8 < agree < 0.97
    smooth = info["votes"][:, 0]
    assert np.mean((smooth > 0.1) & (smooth < 0.9)) > 0.2   # no unanimity for many galaxies
    np.testing.assert_array_equal(classes_from_votes(info["votes"]), info["vote_classes"])


def test_votes_follow_what_the_galaxies_are(sky):
    _, info = sky
    v, p, cls = info["votes"], info["params"], info["classes"]
    col = {name: i for i, name in enumerate(GZ2_COLUMNS)}
    s = tasks()
    reached = {t: info["counts"][:, sl].sum(axis=1) > 0 for t, sl in s.items()}
    smooth = v[:, col["t01_smooth_or_features_a01_smooth"]]
    assert smooth[cls == 0].mean() > 0.8 and smooth[cls == 1].mean() < 0.45
    bar = v[:, col["t03_bar_a06_bar"]]
    r = reached["t03_bar"]
    assert bar[r & (cls == 2)].mean() > bar[r & (cls == 1)].mean() + 0.3
    edge = v[:, col["t02_edgeon_a04_yes"]]
    incl = p["inclination"]
    r = reached["t02_edgeon"] & (cls > 0)
    assert edge[r & (incl > 82)].mean() > 0.7 and edge[r & (incl < 50)].mean() < 0.15
    round_ = v[:, col["t07_rounded_a16_completely_round"]]
    r = reached["t07_rounded"]
    q = p["axis_ratio"]
    assert round_[r & (q > 0.85)].mean() > round_[r & (q < 0.5)].mean() + 0.4
    tight = v[:, col["t10_arms_winding_a28_tight"]]
    r = reached["t10_arms_winding"] & (cls > 0)
    assert np.corrcoef(tight[r], p["pitch"][r])[0, 1] < -0.3
    dominant = v[:, col["t05_bulge_prominence_a13_dominant"]]
    r = reached["t05_bulge_prominence"] & (cls > 0)
    assert np.corrcoef(dominant[r], np.log(p["bulge_fraction"][r]))[0, 1] > 0.4
    two = v[:, col["t11_arms_number_a32_2"]]
    r = reached["t11_arms_number"] & (info["counts"][:, s["t11_arms_number"]].sum(axis=1) > 5)
    assert two[r & (p["arms"] == 2)].mean() > two[r & (p["arms"] >= 4)].mean() + 0.15


def test_the_tree_has_the_thirty_seven_answers_of_gz2():
    assert [t for t, _ in GZ2_TASKS] == [
        "t01_smooth_or_features", "t02_edgeon", "t03_bar", "t04_spiral",
        "t05_bulge_prominence", "t06_odd", "t07_rounded", "t08_odd_feature",
        "t09_bulge_shape", "t10_arms_winding", "t11_arms_number"]
    assert sum(len(a) for _, a in GZ2_TASKS) == 37
    assert KAGGLE_COLUMNS[:3] == ("Class1.1", "Class1.2", "Class1.3")
    assert KAGGLE_COLUMNS[-1] == "Class11.6" and len(KAGGLE_COLUMNS) == 37


# -- the real catalogue, on fake files --------------------------------------------------------
HART_CLASSES = ["Ei", "Sc+t", "SBb2m", "A", "Er", "Sd"]
OBJIDS = [587722981736120347, 587722981736579107, 587722981741363294, 587722981741363300,
          587722981741494407, 587722981741625499]


def hart_votes():
    _, info = make_galaxies(6, seed=11)
    return info["votes"].astype(np.float64).round(3)


def write_jpeg(path, size=48, border=(0, 0, 255), centre=(255, 0, 0)):
    """A square image: a coloured border and a coloured central half (to check the crop)."""
    pixels = np.zeros((size, size, 3), dtype=np.uint8)
    pixels[:] = border
    pixels[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = centre
    Image.fromarray(pixels).save(path, quality=95)


def write_hart16(root, votes, compress=True, drop=None, images=True, missing_image=1):
    root.mkdir(parents=True, exist_ok=True)
    header = ["dr7objid", "ra", "dec", "rastring", "decstring", "sample", "gz2_class",
              "total_classifications", "total_votes"]
    for column in GZ2_COLUMNS:
        header += [f"{column}_{k}" for k in ("count", "weight", "fraction",
                                               "weighted_fraction", "debiased", "flag")]
    if drop:
        header.remove(drop)
    lines = [",".join(header)]
    for i, objid in enumerate(OBJIDS):
        row = {"dr7objid": str(objid), "ra": "195.45", "dec": "14.23",
               "rastring": "13:01:48.00", "decstring": "+14:13:48.0", "sample": "original",
               "gz2_class": HART_CLASSES[i], "total_classifications": "44",
               "total_votes": "300"}
        for j, column in enumerate(GZ2_COLUMNS):
            for k in ("count", "weight", "fraction", "weighted_fraction", "flag"):
                row[f"{column}_{k}"] = "0"
            row[f"{column}_debiased"] = f"{votes[i, j]:.3f}"
            row[f"{column}_weighted_fraction"] = f"{min(1.0, votes[i, j] + 0.01):.3f}"
        lines.append(",".join(row[h] for h in header))
    text = "\n".join(lines) + "\n"
    if compress:
        with gzip.open(root / "gz2_hart16.csv.gz", "wt") as f:
            f.write(text)
    else:
        (root / "gz2_hart16.csv").write_text(text)
    mapping = ["objid,sample,asset_id"] + [f"{o},original,{100 + i}" for i, o in enumerate(OBJIDS)]
    (root / "gz2_filename_mapping.csv").write_text("\n".join(mapping) + "\n")
    if images:
        (root / "images").mkdir(exist_ok=True)
        for i in range(len(OBJIDS)):
            if i != missing_image:
                write_jpeg(root / "images" / f"{100 + i}.jpg")


def test_load_galaxy_zoo2_reads_the_hart16_catalogue_and_images(tmp_path, caplog):
    votes = hart_votes()
    write_hart16(tmp_path, votes)
    messages.forget()
    with caplog.at_level(logging.INFO, logger="nn.data"):
        images, info = load_galaxy_zoo2(tmp_path, size=16)
    # row 1 has no image, row 3 is a star/artifact ("A"): left out
    rows = [0, 2, 4, 5]
    assert images.shape == (4, 3, 16, 16) and images.dtype == np.float32
    np.testing.assert_array_equal(info["ids"], np.array(OBJIDS, dtype=np.int64)[rows])
    np.testing.assert_array_equal(info["classes"], [0, 2, 0, 1])
    assert list(info["gz2_class"]) == ["Ei", "SBb2m", "Er", "Sd"]
    np.testing.assert_allclose(info["votes"], votes[rows], atol=1e-6)
    assert info["vote_columns"] == GZ2_COLUMNS and info["source"] == "hart16"
    assert [f.name for f in info["files"]] == ["100.jpg", "102.jpg", "104.jpg", "105.jpg"]
    # crop=0.5 keeps the red centre only; the whole image shows the blue border
    assert images[:, 0].mean() > 0.9 and images[:, 2].mean() < 0.1
    whole, _ = load_galaxy_zoo2(tmp_path, size=16, crop=1.0)
    assert whole[:, 2, 0, :].mean() > 0.8
    notes = [r.getMessage() for r in caplog.records if r.name == "nn.data"]
    assert len(notes) == 1 and "Galaxy Zoo 2" in notes[0] and "4 galaxies" in notes[0]
    raw, _ = load_galaxy_zoo2(tmp_path, size=(8, 12), dtype=np.uint8)
    assert raw.shape == (4, 3, 8, 12) and raw.dtype == np.uint8


def test_load_galaxy_zoo2_options(tmp_path):
    votes = hart_votes()
    write_hart16(tmp_path, votes, compress=False)
    none, info = load_galaxy_zoo2(tmp_path, images=False)
    assert none is None and len(info["ids"]) == 5   # all but the star/artifact
    _, weighted = load_galaxy_zoo2(tmp_path, images=False, answers="weighted_fraction")
    np.testing.assert_allclose(weighted["votes"], np.minimum(1, votes[[0, 1, 2, 4, 5]] + 0.01),
                               atol=1e-6)
    _, two = load_galaxy_zoo2(tmp_path, size=8, n=2, seed=1)
    _, again = load_galaxy_zoo2(tmp_path, size=8, n=2, seed=1)
    np.testing.assert_array_equal(two["ids"], again["ids"])
    assert len(two["ids"]) == 2 and np.all(np.diff(two["ids"]) > 0)


def test_load_galaxy_zoo2_reads_the_kaggle_layout(tmp_path):
    votes = hart_votes()[:4]
    # Kaggle multiplies the fractions down the tree: t02 by "features", t03 by "not edge-on"
    s = task_slices()
    raw = votes.copy()
    parents = {"t02_edgeon": ("t01_smooth_or_features", 1), "t03_bar": ("t02_edgeon", 1),
               "t04_spiral": ("t02_edgeon", 1), "t05_bulge_prominence": ("t02_edgeon", 1),
               "t07_rounded": ("t01_smooth_or_features", 0), "t08_odd_feature": ("t06_odd", 0),
               "t09_bulge_shape": ("t02_edgeon", 0), "t10_arms_winding": ("t04_spiral", 0),
               "t11_arms_number": ("t04_spiral", 0)}
    for task, _ in GZ2_TASKS:  # in tree order: a parent is scaled before its children
        if task in parents:
            parent, answer = parents[task]
            raw[:, s[task]] *= raw[:, s[parent]][:, answer:answer + 1]
    ids = [100008, 100023, 100053, 100078]
    lines = ["GalaxyID," + ",".join(KAGGLE_COLUMNS)]
    lines += [f"{g}," + ",".join(f"{v:.6f}" for v in row) for g, row in zip(ids, raw)]
    (tmp_path / "training_solutions_rev1.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "images_training_rev1").mkdir()
    for g in ids:
        write_jpeg(tmp_path / "images_training_rev1" / f"{g}.jpg")
    images, info = load_galaxy_zoo2(tmp_path, size=8)
    assert images.shape == (4, 3, 8, 8) and info["source"] == "kaggle"
    np.testing.assert_array_equal(info["ids"], ids)
    for task, sl in s.items():
        scale = raw[:, sl].sum(axis=1)
        ok = scale > 1e-6
        np.testing.assert_allclose(info["votes"][ok][:, sl], votes[ok][:, sl], atol=2e-3,
                                   err_msg=task)
        assert np.all(info["votes"][~ok][:, sl] == 0), task
    np.testing.assert_array_equal(info["classes"], classes_from_votes(info["votes"]))
    assert info["gz2_class"] is None


def test_load_galaxy_zoo2_says_where_to_get_the_data(tmp_path):
    with pytest.raises(MissingFileError) as err:
        load_galaxy_zoo2(tmp_path / "nowhere")
    message = str(err.value)
    for part in ("gz2_hart16.csv.gz", "zenodo.org/records/3565489", "training_solutions_rev1",
                 "make_galaxies"):
        assert part in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFileError, match="no Galaxy Zoo 2 catalogue"):
        load_galaxy_zoo2(tmp_path / "empty")


def test_load_galaxy_zoo2_refuses_damaged_files(tmp_path):
    votes = hart_votes()
    write_hart16(tmp_path / "a", votes, drop="t03_bar_a06_bar_debiased")
    with pytest.raises(DataError, match="no column 't03_bar_a06_bar_debiased'"):
        load_galaxy_zoo2(tmp_path / "a")
    bad = votes.copy()
    bad[2, 5] = 7.0
    write_hart16(tmp_path / "b", bad)
    with pytest.raises(DataError, match=r"row 4 holds 7\.0 for t03_bar_a06_bar"):
        load_galaxy_zoo2(tmp_path / "b")
    write_hart16(tmp_path / "c", votes, images=False)
    with pytest.raises(MissingFileError, match="no image folder"):
        load_galaxy_zoo2(tmp_path / "c")
    assert load_galaxy_zoo2(tmp_path / "c", images=False)[0] is None
    write_hart16(tmp_path / "d", votes)
    (tmp_path / "d" / "images" / "102.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"cannot read the image .*102\.jpg"):
        load_galaxy_zoo2(tmp_path / "d", size=8)
    write_hart16(tmp_path / "e", votes)
    data = (tmp_path / "e" / "gz2_hart16.csv.gz").read_bytes()
    (tmp_path / "e" / "gz2_hart16.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated"):
        load_galaxy_zoo2(tmp_path / "e", images=False)
