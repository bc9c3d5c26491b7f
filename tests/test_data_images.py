"""Image loaders on small files the tests write: IDX (MNIST), CIFAR-10 binary, image folders,
PASCAL VOC. Downloads go through file:// URLs; nothing touches the network."""
from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from nn.data import (CIFAR10_CLASSES, VOC_CLASSES, ChecksumError, DownloadError, Resource,
                     image_folder_classes, load_cifar10, load_fashion_mnist, load_image_folder,
                     load_mnist, load_voc, parse_voc_annotation, read_idx)
from nn.data import cifar, messages, mnist, voc


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """An empty download cache (NN_DATA_DIR) for one test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("NN_DATA_DIR", str(folder))
    return folder


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def as_resource(path: Path) -> Resource:
    data = path.read_bytes()
    return Resource(path.name, (path.as_uri(),), hashlib.sha256(data).hexdigest(), len(data))


# -- IDX -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("array, code", [
    (np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5), 0x08),
    (np.array([-3, 0, 700], dtype=np.int16), 0x0B),
    (np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), 0x0D),
])
def test_read_idx_round_trips_types_shapes_and_compression(tmp_path, array, code, compress):
    data = idx_bytes(array, code)
    path = tmp_path / "file-idx"  # compression is recognised from the content, not the name
    path.write_bytes(gzip.compress(data) if compress else data)
    out = read_idx(path)
    assert out.shape == array.shape and out.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(out, array)


def test_read_idx_rejects_a_truncated_file(tmp_path):
    data = idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))
    (tmp_path / "cut").write_bytes(data[:-100])
    with pytest.raises(ValueError, match=r"truncated or corrupt, delete it"):
        read_idx(tmp_path / "cut")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(data)[:-30])  # gzip stream cut short
    with pytest.raises(ValueError, match="not a readable gzip file"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "header").write_bytes(data[:9])  # the sizes themselves are cut
    with pytest.raises(ValueError, match="header is cut short"):
        read_idx(tmp_path / "header")


def test_read_idx_rejects_other_files(tmp_path):
    (tmp_path / "page.html").write_bytes(b"<html>Not Found</html>")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "page.html")


# -- MNIST and Fashion-MNIST -----------------------------------------------------------------------
def digits(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def write_split(folder: Path, split: str, images, labels, compress: bool):
    folder.mkdir(parents=True, exist_ok=True)
    image_name, label_name = mnist.FILES[split]
    for name, array in ((image_name, images), (label_name, labels)):
        data = idx_bytes(array)
        if compress:
            (folder / name).write_bytes(gzip.compress(data))
        else:
            (folder / name.removesuffix(".gz")).write_bytes(data)


def test_load_mnist_downloads_checks_and_reads(cache, tmp_path, monkeypatch):
    server = tmp_path / "server"
    images, labels = digits(7, seed=0)
    write_split(server, "test", images, labels, compress=True)
    resources = {name: as_resource(server / name) for name in mnist.FILES["test"]}
    monkeypatch.setattr(mnist, "MNIST_RESOURCES", resources)
    x, y = load_mnist("test", progress=False)
    assert x.shape == (7, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (7,) and y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0], images / np.float32(255), rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(mnist.FILES["test"])
    raw, _ = load_mnist("test", dtype=np.uint8)
    assert raw.dtype == np.uint8 and np.array_equal(raw[:, 0], images)


def test_load_mnist_reads_files_extracted_by_hand(cache):
    images, labels = digits(5, seed=1)
    write_split(cache / "mnist", "train", images, labels, compress=False)
    x, y = load_mnist("train")
    assert x.shape == (5, 1, 28, 28) and 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_offline_says_how_to_get_the_files(cache, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")
    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(DownloadError) as info:
        load_mnist("train", progress=False)
    message = str(info.value)
    assert "ossci-datasets" in message and "train-images-idx3-ubyte.gz" in message
    assert str(cache / "mnist") in message and "NN_DATA_DIR" in message


def test_load_mnist_rejects_a_corrupt_cached_download(cache):
    (cache / "mnist").mkdir(parents=True)
    (cache / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(ChecksumError, match="published sha256"):
        load_mnist("test")


def test_mnist_label_file_of_another_length_is_refused(cache):
    images, labels = digits(5, seed=2)
    write_split(cache / "mnist", "train", images, labels[:4], compress=False)
    with pytest.raises(ValueError, match="one per image"):
        load_mnist("train")


@pytest.mark.parametrize("loader", [load_mnist, load_fashion_mnist, load_cifar10])
def test_image_loaders_reject_other_split_names(loader):
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'valid'"):
        loader("valid")


def test_load_mnist_rejects_an_integer_dtype_other_than_uint8(cache):
    write_split(cache / "mnist", "test", *digits(2, seed=3), compress=False)
    with pytest.raises(ValueError, match="float type"):
        load_mnist("test", dtype=np.int32)


def test_fashion_mnist_prefers_the_system_package(cache, tmp_path, monkeypatch):
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    images, labels = digits(6, seed=4)
    write_split(system, "train", images, labels, compress=True)  # re-compressed: not checked
    monkeypatch.setattr(mnist, "FASHION_MNIST_SYSTEM_DIRS", (system,))
    x, y = load_fashion_mnist("train")
    np.testing.assert_array_equal(y, labels)
    assert x.shape == (6, 1, 28, 28)
    assert not cache.exists()  # nothing was downloaded or cached


@pytest.mark.parametrize("split, per_class", [("train", 200), ("test", 100)])
def test_fashion_mnist_sample_is_bundled_and_balanced(split, per_class):
    x, y = load_fashion_mnist(split, source="sample")
    assert x.shape == (10 * per_class, 1, 28, 28) and x.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y, minlength=10), [per_class] * 10)
    assert x.min() == 0.0 and x.max() == 1.0
    raw, _ = load_fashion_mnist(split, dtype=np.uint8, source="sample")
    np.testing.assert_array_equal(raw.astype(np.float32) / 255, x)
    # real images, not noise: neighbouring pixels are strongly correlated
    flat = x[:, 0].astype(np.float64)
    corr = np.corrcoef(flat[:, :, :-1].ravel(), flat[:, :, 1:].ravel())[0, 1]
    assert corr > 0.8


def unreachable_fashion_mnist(monkeypatch, tmp_path):
    """No system package, an empty cache and mirrors that do not exist."""
    monkeypatch.setattr(mnist, "FASHION_MNIST_SYSTEM_DIRS", ())
    missing = {name: Resource(name, ((tmp_path / "nowhere" / name).as_uri(),), r.sha256, r.size)
               for name, r in mnist.FASHION_MNIST_RESOURCES.items()}
    monkeypatch.setattr(mnist, "FASHION_MNIST_RESOURCES", missing)


def test_fashion_mnist_falls_back_to_the_sample_with_one_short_note(cache, tmp_path,
                                                                     monkeypatch, caplog):
    unreachable_fashion_mnist(monkeypatch, tmp_path)
    messages.forget()
    with caplog.at_level(logging.INFO, logger="nn.data"):
        x, y = load_fashion_mnist("train", progress=False)
        x, y = load_fashion_mnist("test", progress=False)  # a practical loads both splits
    assert x.shape == (1000, 1, 28, 28) and len(y) == 1000
    notes = [r for r in caplog.records if r.name == "nn.data" and r.levelno >= logging.INFO]
    assert len(notes) == 1 and notes[0].levelno == logging.WARNING
    note = notes[0].getMessage()
    assert "\n" not in note and len(note) < 250  # one short line, not the 700-character warning
    for part in ("Fashion-MNIST", "sample", "2 000", "apt-get install dataset-fashion-mnist"):
        assert part in note
    with pytest.raises(DownloadError, match="could not download"):
        load_fashion_mnist("test", progress=False, source="full")


def test_where_the_whole_set_was_found_is_said_once(cache, tmp_path, monkeypatch, caplog):
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    for split in ("train", "test"):
        write_split(system, split, *digits(3, seed=5), compress=True)
    monkeypatch.setattr(mnist, "FASHION_MNIST_SYSTEM_DIRS", (system,))
    messages.forget()
    with caplog.at_level(logging.INFO, logger="nn.data"):
        load_fashion_mnist("train")
        load_fashion_mnist("test")
    notes = [r.getMessage() for r in caplog.records if r.name == "nn.data"]
    assert notes == [f"Fashion-MNIST: {system} (system package)"]


@pytest.mark.parametrize("configured", [False, True])
def test_the_notes_reach_stderr_once(tmp_path, configured):
    """As in a script or a notebook: no logging set up, one line on stderr, not two; with
    logging set up by the program, one line through its handler (ours steps aside)."""
    script = (
        ("import logging; logging.basicConfig(format='%(levelname)s %(name)s %(message)s')\n"
         if configured else "") +
        "import nn.data.mnist as m\n"
        "from nn.data import Resource, load_fashion_mnist\n"
        "m.FASHION_MNIST_SYSTEM_DIRS = ()\n"
        "m.FASHION_MNIST_RESOURCES = {n: Resource(n, ('file:///nowhere/' + n,), r.sha256) "
        "for n, r in m.FASHION_MNIST_RESOURCES.items()}\n"
        "load_fashion_mnist('train', progress=False)\n"
        "load_fashion_mnist('test', progress=False)\n")
    env = {**os.environ, "NN_DATA_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.strip().splitlines()
    start = "WARNING nn.data " if configured else "nn.data: "
    assert len(lines) == 1 and lines[0].startswith(start + "Fashion-MNIST: using the sample")


def test_fashion_mnist_does_not_hide_a_corrupt_file_behind_the_sample(cache, monkeypatch):
    monkeypatch.setattr(mnist, "FASHION_MNIST_SYSTEM_DIRS", ())
    folder = cache / "fashion-mnist"
    folder.mkdir(parents=True)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"not the file")
    with pytest.raises(ChecksumError):
        load_fashion_mnist("test", progress=False)


def test_fashion_mnist_rejects_an_unknown_source():
    with pytest.raises(ValueError, match="source must be 'auto', 'full' or 'sample'"):
        load_fashion_mnist("test", source="web")


FASHION_SYSTEM = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


@pytest.mark.skipif(not FASHION_SYSTEM.is_file(),
                    reason="Debian's dataset-fashion-mnist package is not installed")
def test_fashion_mnist_from_the_debian_package():
    x, y = load_fashion_mnist("test")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(y), [1000] * 10)  # a balanced test set
    assert 0.0 == x.min() and x.max() == 1.0


# -- CIFAR-10 (binary version) -------------------------------------------------------------------
def cifar_records(labels, seed):
    """Records of 1 label byte + R, G, B planes; returns the bytes and the (N, 3, 32, 32) pixels."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8)
    records = np.concatenate([np.array(labels, dtype=np.uint8)[:, None],
                              pixels.reshape(len(labels), -1)], axis=1)
    return records.tobytes(), pixels


def cifar_archive(path: Path, truncate: int = 0):
    """A small cifar-10-binary.tar.gz: 2 records per training batch, 3 test records."""
    expected = {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for i, name in enumerate(cifar.BATCHES["train"] + cifar.BATCHES["test"]):
            labels = [9, 3, 0] if name == "test_batch.bin" else [i, 9 - i]
            data, pixels = cifar_records(labels, seed=i)
            expected[name] = (pixels, labels)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    path.write_bytes(data[:len(data) - truncate])
    return expected


def test_load_cifar10_reads_the_binary_archive(cache, tmp_path, monkeypatch):
    server = tmp_path / "server"
    server.mkdir()
    expected = cifar_archive(server / "cifar-10-binary.tar.gz")
    monkeypatch.setattr(cifar, "CIFAR10_RESOURCE", as_resource(server / "cifar-10-binary.tar.gz"))
    x, y = load_cifar10("train", progress=False)
    assert x.shape == (10, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(y, [0, 9, 1, 8, 2, 7, 3, 6, 4, 5])
    # the planes are R, G, B in that order, rows first: channels first as stored
    pixels, _ = expected["data_batch_2.bin"]
    np.testing.assert_allclose(x[2:4], pixels / np.float32(255), rtol=1e-6)
    x_test, y_test = load_cifar10("test", dtype=np.uint8)
    np.testing.assert_array_equal(x_test, expected["test_batch.bin"][0])
    np.testing.assert_array_equal(y_test, [9, 3, 0])
    assert len(CIFAR10_CLASSES) == 10 and CIFAR10_CLASSES[9] == "truck"


def test_load_cifar10_reads_a_folder_extracted_by_hand(cache):
    folder = cache / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    data, pixels = cifar_records([5, 6], seed=7)
    (folder / "test_batch.bin").write_bytes(data)
    x, y = load_cifar10("test", dtype=np.uint8)
    np.testing.assert_array_equal(x, pixels)
    np.testing.assert_array_equal(y, [5, 6])


def test_load_cifar10_rejects_a_truncated_batch(cache):
    folder = cache / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    data, _ = cifar_records([1, 2], seed=8)
    (folder / "test_batch.bin").write_bytes(data[:-1000])
    with pytest.raises(ValueError, match="whole number of 3073-byte records"):
        load_cifar10("test")


def test_load_cifar10_rejects_a_truncated_archive(cache, monkeypatch):
    folder = cache / "cifar10"
    folder.mkdir(parents=True)
    cifar_archive(folder / "cifar-10-binary.tar.gz", truncate=2000)
    # the (truncated) archive has the sha256 the test says is published: the tar reader must
    # still notice that it ends too early
    monkeypatch.setattr(cifar, "CIFAR10_RESOURCE", as_resource(folder / "cifar-10-binary.tar.gz"))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_cifar10("test")


# -- image folders -------------------------------------------------------------------------------
@pytest.fixture
def pets(tmp_path):
    from PIL import Image
    root = tmp_path / "pets"
    colours = {"cats": [(255, 0, 0), (0, 255, 0)], "dogs": [(0, 0, 255), (10, 20, 30), (200, 100, 50)]}
    for name, values in colours.items():
        (root / name).mkdir(parents=True)
        for i, colour in enumerate(values):
            # images of different sizes and formats, solid colours (exact after resizing)
            Image.new("RGB", (40 + 7 * i, 30 + 3 * i), colour).save(root / name / f"{i}.png")
    Image.new("RGB", (8, 8)).save(root / "dogs" / "3.JPG")  # upper-case extension
    (root / "dogs" / "notes.txt").write_text("not an image")
    (root / "dogs" / ".hidden.png").write_bytes(b"")
    (root / ".git").mkdir()
    return root


def test_load_image_folder_shapes_labels_and_values(pets):
    assert image_folder_classes(pets) == ["cats", "dogs"]
    x, y = load_image_folder(pets, 16)
    assert x.shape == (6, 3, 16, 16) and x.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 0, 1, 1, 1, 1])
    np.testing.assert_allclose(x[0, :, 5, 7], [1, 0, 0])       # red cat, channels first
    np.testing.assert_allclose(x[3, :, 0, 0], np.array([10, 20, 30]) / 255, rtol=1e-6)


def test_load_image_folder_sizes_and_grey_levels(pets):
    x, _ = load_image_folder(pets, (12, 20), mode="L", dtype=np.uint8)
    assert x.shape == (6, 1, 12, 20) and x.dtype == np.uint8
    assert x[0, 0, 0, 0] == 76  # ITU-R 601 luma of pure red: 0.299 * 255


@pytest.mark.parametrize("size", [0, -3, (16,), (16, 0), 2.5, "32", True])
def test_load_image_folder_rejects_bad_sizes(pets, size):
    with pytest.raises(ValueError, match="size must be a positive int or a"):
        load_image_folder(pets, size)


def test_load_image_folder_errors_say_what_to_do(tmp_path, pets):
    with pytest.raises(FileNotFoundError, match="one sub-folder of images per class"):
        load_image_folder(tmp_path / "nowhere", 8)
    (pets / "birds").mkdir()
    with pytest.raises(ValueError, match="holds no image"):
        load_image_folder(pets, 8)
    (pets / "birds").rmdir()
    (pets / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ValueError, match=r"cannot read the image .*broken\.jpg"):
        load_image_folder(pets, 8)


# -- PASCAL VOC ----------------------------------------------------------------------------------
ANNOTATION = """<annotation>
  <folder>VOC2007</folder><filename>{id}.jpg</filename>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
  {objects}
</annotation>"""
OBJECT = """<object><name>{name}</name><pose>Left</pose><truncated>0</truncated>
  <difficult>{difficult}</difficult>
  <bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox>
</object>"""


def voc_tree(root: Path, images: dict, splits: dict):
    """VOCdevkit/VOC2007 with the given {id: (w, h, [(name, box, difficult)])} and splits."""
    from PIL import Image
    base = root / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for image_id, (w, h, objects) in images.items():
        text = "".join(OBJECT.format(name=n, box=b, difficult=d) for n, b, d in objects)
        (base / "Annotations" / f"{image_id}.xml").write_text(
            ANNOTATION.format(id=image_id, w=w, h=h, objects=text))
        Image.new("RGB", (w, h), (120, 60, 30)).save(base / "JPEGImages" / f"{image_id}.jpg")
    for split, ids in splits.items():
        (base / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return base


IMAGES = {"000005": (500, 375, [("chair", (263, 211, 324, 339), 0),
                                ("person", (1, 1, 100, 50), 1)]),
          "000007": (200, 100, [("car", (141, 50, 200, 100), 0)])}


def test_parse_voc_annotation_boxes_classes_difficult(tmp_path):
    base = voc_tree(tmp_path, IMAGES, {"train": ["000005"]})
    target = parse_voc_annotation(base / "Annotations" / "000005.xml")
    assert target["id"] == "000005" and target["size"] == (375, 500)
    # VOC's 1-based inclusive pixel numbers become (xmin - 1, ymin - 1, xmax, ymax)
    np.testing.assert_array_equal(target["boxes"], [[262, 210, 324, 339], [0, 0, 100, 50]])
    assert target["boxes"].dtype == np.float32
    np.testing.assert_array_equal(target["classes"], [VOC_CLASSES.index("chair"),
                                                      VOC_CLASSES.index("person")])
    np.testing.assert_array_equal(target["difficult"], [False, True])
    assert len(VOC_CLASSES) == 20


def test_load_voc_paths_or_resized_images(tmp_path):
    voc_tree(tmp_path, IMAGES, {"train": ["000005", "000007"], "val": ["000007"]})
    paths, targets = load_voc(tmp_path, "2007", "train")
    assert [p.name for p in paths] == ["000005.jpg", "000007.jpg"] and all(p.is_file() for p in paths)
    assert [len(t["boxes"]) for t in targets] == [2, 1]
    x, targets = load_voc(tmp_path / "VOCdevkit", 2007, "val", size=50)  # a VOCdevkit root works
    assert x.shape == (1, 3, 50, 50) and x.dtype == np.float32
    # 200 x 100 image to 50 x 50: x scaled by 1/4, y by 1/2
    np.testing.assert_allclose(targets[0]["boxes"], [[35, 24.5, 50, 50]])
    assert targets[0]["size"] == (100, 200)


def test_load_voc_errors(tmp_path):
    base = voc_tree(tmp_path, IMAGES, {"train": ["000005"]})
    with pytest.raises(ValueError, match="split must be one of"):
        load_voc(tmp_path, "2007", "validation")
    with pytest.raises(ValueError, match="year must be '2007' or '2012'"):
        load_voc(tmp_path, "2010", "train")
    with pytest.raises(FileNotFoundError, match="no 'test' split"):
        load_voc(tmp_path, "2007", "test")
    with pytest.raises(FileNotFoundError, match="no VOC2012 folder"):
        load_voc(tmp_path, "2012", "train")
    with pytest.raises(ValueError, match="annotations are not public"):
        load_voc(None, "2012", "test")
    xml = base / "Annotations" / "000005.xml"
    xml.write_text(xml.read_text()[:200])  # truncated XML
    with pytest.raises(ValueError, match=r"000005\.xml is not a valid VOC annotation"):
        load_voc(tmp_path, "2007", "train")
    xml.write_text(ANNOTATION.format(id="000005", w=10, h=10, objects=OBJECT.format(
        name="unicorn", box=(1, 1, 2, 2), difficult=0)))
    with pytest.raises(ValueError, match="unknown class 'unicorn'"):
        load_voc(tmp_path, "2007", "train")


def test_load_voc_downloads_and_extracts_into_the_cache(cache, tmp_path, monkeypatch):
    voc_tree(tmp_path / "build", IMAGES, {"train": ["000007"]})
    archive = tmp_path / "VOCtrainval_06-Nov-2007.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "build" / "VOCdevkit", arcname="VOCdevkit")
    monkeypatch.setitem(voc.VOC_RESOURCES, ("2007", "trainval"), as_resource(archive))
    paths, targets = load_voc(None, "2007", "train", progress=False)
    folder = cache / "voc" / "VOCtrainval_06-Nov-2007"
    assert paths == [folder / "VOCdevkit" / "VOC2007" / "JPEGImages" / "000007.jpg"]
    assert not (cache / "voc" / archive.name).exists()  # extracted, then the archive removed
    archive.unlink()  # a second call uses the extracted folder
    assert load_voc(None, "2007", "train")[0] == paths
