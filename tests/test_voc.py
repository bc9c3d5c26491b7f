"""The PASCAL VOC track's library side, offline: load_voc on a small VOC-format folder written
here (JPEG images and XML annotations), split files that try to leave the folder, the
sha256-checked download path (file:// URLs), and detection augmentation with boxes feeding
YOLOLoss. Nothing touches the network."""
from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest

import nn
from nn.data import VOC_CLASSES, Augment, Resource, load_voc, voc
from nn.detection import YOLOLoss
from nn.errors import ConfigError, DataError, MissingFileError

Image = pytest.importorskip("PIL.Image")

ANNOTATION = """<annotation>
  <folder>VOC{year}</folder><filename>{id}.jpg</filename>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
  {objects}
</annotation>"""
OBJECT = """<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>
  <difficult>{difficult}</difficult>
  <bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox>
</object>"""

# {id: (width, height, [(class, (xmin, ymin, xmax, ymax) 1-based inclusive, difficult)])}
IMAGES = {
    "000012": (120, 90, [("car", (11, 21, 60, 70), 0), ("person", (71, 6, 100, 85), 0)]),
    "000017": (80, 100, [("dog", (1, 1, 80, 100), 0)]),
    "2008_000003": (100, 100, [("cat", (31, 31, 50, 50), 1), ("bird", (61, 11, 90, 30), 0),
                               ("tvmonitor", (5, 60, 40, 95), 0)]),
}


def write_voc(root: Path, images=IMAGES, splits=None, year="2007") -> Path:
    """A VOCdevkit/VOC<year> folder: one JPEG (a coloured rectangle per object) and one XML
    per image, and the split files."""
    splits = splits or {"train": ["000012", "2008_000003"], "val": ["000017"],
                        "trainval": list(images)}
    base = root / "VOCdevkit" / f"VOC{year}"
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for image_id, (w, h, objects) in images.items():
        pixels = np.full((h, w, 3), 40, np.uint8)
        for k, (name, (x1, y1, x2, y2), _) in enumerate(objects):
            pixels[y1 - 1:y2, x1 - 1:x2] = (60 * k + 100, 255 - 40 * k, 30 * VOC_CLASSES.index(name) % 255)
        Image.fromarray(pixels).save(base / "JPEGImages" / f"{image_id}.jpg", quality=95)
        text = "".join(OBJECT.format(name=n, box=b, difficult=d) for n, b, d in objects)
        (base / "Annotations" / f"{image_id}.xml").write_text(
            ANNOTATION.format(year=year, id=image_id, w=w, h=h, objects=text))
    for split, ids in splits.items():
        (base / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return base


def test_load_voc_reads_a_voc_folder(tmp_path):
    write_voc(tmp_path)
    paths, targets = load_voc(tmp_path, "2007", "train")
    assert [p.name for p in paths] == ["000012.jpg", "2008_000003.jpg"]
    assert [t["id"] for t in targets] == ["000012", "2008_000003"]
    np.testing.assert_array_equal(targets[0]["boxes"], [[10, 20, 60, 70], [70, 5, 100, 85]])
    assert [VOC_CLASSES[c] for c in targets[1]["classes"]] == ["cat", "bird", "tvmonitor"]
    assert targets[1]["difficult"].tolist() == [True, False, False]
    x, sized = load_voc(tmp_path, 2007, "trainval", size=(48, 64), dtype=np.uint8)
    assert x.shape == (3, 3, 48, 64) and x.dtype == np.uint8
    # 120 x 90 to 64 x 48: x scaled by 64/120, y by 48/90; the car's pixels are bright
    np.testing.assert_allclose(sized[0]["boxes"][0], [10 * 64 / 120, 20 * 48 / 90,
                                                      60 * 64 / 120, 70 * 48 / 90], rtol=1e-6)
    assert x[0, 1, 20, 15] > 200 and x[0, 1, 2, 2] < 80
    assert sized[0]["size"] == (90, 120)


@pytest.mark.parametrize("bad_id", ["../../outside", "../VOC2012/000012", "/etc/hostname",
                                    "..", "sub/000012", "..\\..\\outside", "C:outside"])
def test_split_ids_cannot_leave_the_dataset_folder(tmp_path, bad_id):
    base = write_voc(tmp_path / "data")
    # a file that a "../" id would reach, outside the dataset
    (tmp_path / "outside.xml").write_text(ANNOTATION.format(year="2007", id="x", w=5, h=5,
                                                            objects=""))
    split = base / "ImageSets" / "Main" / "train.txt"
    split.write_text(f"000012\n{bad_id}\n")
    with pytest.raises(DataError, match=r"train\.txt, line 2: the image id .* is not a plain "
                                        r"file name.*must not lead out of the dataset folder"):
        load_voc(tmp_path / "data", "2007", "train")


def test_voc_folder_errors_name_the_file(tmp_path):
    base = write_voc(tmp_path)
    split = base / "ImageSets" / "Main" / "train.txt"
    split.write_text("\n\n")
    with pytest.raises(DataError, match=r"train\.txt lists no image id"):
        load_voc(tmp_path, "2007", "train")
    split.write_text("000012\n000099\n")
    with pytest.raises(MissingFileError, match=r"000099\.xml is missing: train\.txt lists "
                                               r"the image '000099'"):
        load_voc(tmp_path, "2007", "train")
    (base / "JPEGImages" / "000017.jpg").unlink()
    with pytest.raises(MissingFileError, match=r"000017\.jpg does not exist"):
        load_voc(tmp_path, "2007", "val", size=32)
    xml = base / "Annotations" / "000012.xml"
    xml.write_text(ANNOTATION.format(year="2007", id="000012", w=50, h=50, objects=OBJECT.format(
        name="car", box=(30, 10, 20, 40), difficult=0)))
    split.write_text("000012\n")
    with pytest.raises(DataError, match=r"000012\.xml is not a valid VOC annotation.*object 0 "
                                        r"\(car\).*is not a box"):
        load_voc(tmp_path, "2007", "train")
    with pytest.raises(MissingFileError, match="no VOC2007 folder under"):
        load_voc(tmp_path / "nowhere", "2007", "train")


@pytest.mark.parametrize("kwargs, message", [
    ({"year": "2010"}, "year must be '2007' or '2012'"),
    ({"year": True}, "year must be"),
    ({"split": "validation"}, "split must be one of 'train', 'val', 'trainval', 'test'"),
    ({"split": None}, "split must be one of"),
    ({"size": 0}, "size must be a positive int"),
    ({"size": (32, 32, 3)}, "size must be"),
    ({"dtype": np.int32}, "load_voc: dtype must be a float type"),
    ({"root": 5}, "root must be a folder"),
])
def test_load_voc_bad_options(tmp_path, kwargs, message):
    write_voc(tmp_path)
    with pytest.raises(ConfigError, match=message):
        load_voc(**{"root": tmp_path, "year": "2007", "split": "train", **kwargs})


def test_load_voc_downloads_with_sha256_and_refuses_a_bad_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("NN_DATA_DIR", str(tmp_path / "cache"))
    write_voc(tmp_path / "build")
    archive = tmp_path / "VOCtrainval_06-Nov-2007.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "build" / "VOCdevkit", arcname="VOCdevkit")
    data = archive.read_bytes()
    wrong = Resource(archive.name, (archive.as_uri(),), hashlib.sha256(b"other").hexdigest(),
                     len(data))
    monkeypatch.setitem(voc.VOC_RESOURCES, ("2007", "trainval"), wrong)
    with pytest.raises(nn.data.ChecksumError):
        load_voc(None, "2007", "train", progress=False)
    assert not (tmp_path / "cache" / "voc" / "VOCtrainval_06-Nov-2007" / "VOCdevkit").exists()
    right = Resource(archive.name, (archive.as_uri(),), hashlib.sha256(data).hexdigest(), len(data))
    monkeypatch.setitem(voc.VOC_RESOURCES, ("2007", "trainval"), right)
    paths, targets = load_voc(None, "2007", "val", progress=False)
    assert [p.name for p in paths] == ["000017.jpg"] and paths[0].is_file()


def test_the_published_voc_archives_are_registered_with_sha256():
    names = {key: r.filename for key, r in voc.VOC_RESOURCES.items()}
    assert names == {("2007", "trainval"): "VOCtrainval_06-Nov-2007.tar",
                     ("2007", "test"): "VOCtest_06-Nov-2007.tar",
                     ("2012", "trainval"): "VOCtrainval_11-May-2012.tar"}
    assert all(len(r.sha256) == 64 and r.size > 4e8 for r in voc.VOC_RESOURCES.values())


# -- augmentation with boxes, for detection training ----------------------------------------------------
def test_albumentations_boxes_follow_the_image_into_yolo_loss(tmp_path):
    A = pytest.importorskip("albumentations")
    write_voc(tmp_path)
    x, targets = load_voc(tmp_path, "2007", "trainval", size=96)
    augment = Augment([A.HorizontalFlip(p=1.0), A.RandomSizedBBoxSafeCrop(64, 64, p=1.0)],
                      boxes=True)
    xa, ta = augment(x, targets)
    assert xa.shape == (3, 3, 64, 64) and xa.dtype == np.float32
    for before, after in zip(targets, ta):
        assert after["boxes"].shape[1] == 4 and len(after["boxes"]) == len(after["classes"])
        assert len(after["difficult"]) == len(after["boxes"]) <= len(before["boxes"])
        assert (after["boxes"] >= 0).all() and (after["boxes"] <= 64).all()
        assert after["id"] == before["id"]
    # the flip alone moves x1 to width - x2
    xf, tf = Augment([A.HorizontalFlip(p=1.0)], boxes=True)(x, targets)
    np.testing.assert_allclose(tf[0]["boxes"][:, [0, 2]], 96 - targets[0]["boxes"][:, [2, 0]],
                               atol=1e-4)
    np.testing.assert_allclose(xf, x[..., ::-1], atol=1e-6)
    # the VOC track: 5 priors, stride 32 (a 2 x 2 grid on 64 x 64 crops), 20 classes
    loss = YOLOLoss([[24, 24], [48, 64], [96, 176], [144, 80], [256, 192]], n_classes=20,
                    stride=32)
    raw = np.random.default_rng(0).normal(size=(3, loss.channels, 2, 2))
    assert np.isfinite(loss.forward(raw, ta)) and loss.association.n_targets == sum(
        len(t["boxes"]) for t in ta)


def test_augment_an_empty_batch_is_returned_as_it_is():
    A = pytest.importorskip("albumentations")
    x, y = np.zeros((0, 3, 8, 8), np.float32), []
    xa, ya = Augment([A.HorizontalFlip(p=1.0)], boxes=True)(x, y)
    assert xa.shape == (0, 3, 8, 8) and ya == []


def test_augment_clips_boxes_that_stick_out(tmp_path):
    A = pytest.importorskip("albumentations")
    x = np.zeros((1, 1, 10, 20), np.float32)
    target = [{"boxes": np.array([[-3.0, 2, 5, 12], [15, 1, 19, 4]]), "classes": np.array([0, 1])}]
    _, out = Augment([A.HorizontalFlip(p=1.0)], boxes=True)(x, target)
    np.testing.assert_allclose(out[0]["boxes"], [[15, 2, 20, 10], [1, 1, 5, 4]], atol=1e-4)


BAD_AUGMENT = [
    ("no bbox_params", lambda A: Augment(A.Compose([A.HorizontalFlip()]), boxes=True),
     ConfigError, "has no bbox_params, so it would move the image and not the boxes"),
    ("boxes='yes'", lambda A: Augment([A.HorizontalFlip()], boxes="yes"), ConfigError,
     "boxes must be True or False"),
    ("label_field 3", lambda A: Augment([A.HorizontalFlip()], label_field=3), ConfigError,
     "label_field must be a name"),
    ("y None", lambda A: Augment([A.HorizontalFlip()], boxes=True)(np.zeros((1, 1, 4, 4)), None),
     DataError, "one dict per image"),
    ("2 images, 1 target", lambda A: Augment([A.HorizontalFlip()], boxes=True)(
        np.zeros((2, 1, 4, 4)), [{"boxes": np.zeros((0, 4))}]), nn.errors.ShapeError,
     "2 images but 1 targets"),
    ("no boxes key", lambda A: Augment([A.HorizontalFlip()], boxes=True)(
        np.zeros((1, 1, 4, 4)), [{"classes": [0]}]), DataError, "image 0 is a dict without boxes"),
    ("boxes (1, 5)", lambda A: Augment([A.HorizontalFlip()], boxes=True)(
        np.zeros((1, 1, 4, 4)), [{"boxes": np.zeros((1, 5))}]), nn.errors.ShapeError,
     r"'boxes' of image 0 must have shape \(k, 4\)"),
    ("NaN box", lambda A: Augment([A.HorizontalFlip()], boxes=True)(
        np.zeros((1, 1, 4, 4)), [{"boxes": [[0, np.nan, 2, 2]]}]), DataError,
     r"'boxes' of image 0 holds NaN at index \(0, 1\)"),
    ("inverted box", lambda A: Augment([A.HorizontalFlip()], boxes=True)(
        np.zeros((1, 1, 4, 4)), [{"boxes": [[3, 0, 2, 2]]}]), DataError, "has x2 <= x1"),
    ("box outside", lambda A: Augment([A.HorizontalFlip()], boxes=True)(
        np.zeros((1, 1, 4, 4)), [{"boxes": [[5, 0, 8, 2]]}]), DataError,
     "lies wholly outside the 4 x 4 image"),
    ("string images", lambda A: Augment([A.HorizontalFlip()])(np.full((1, 1, 2, 2), "a"), None),
     DataError, "the images holds strings"),
    ("a pipeline returning a list", lambda A: Augment(lambda image: [image])(
        np.zeros((1, 1, 2, 2)), None), ConfigError, r"must return a dict with \['image'\]"),
]


@pytest.mark.parametrize("what, call, error, message", BAD_AUGMENT, ids=[c[0] for c in BAD_AUGMENT])
def test_augment_bad_inputs(what, call, error, message):
    A = pytest.importorskip("albumentations")
    with pytest.raises(error, match=message):
        call(A)
