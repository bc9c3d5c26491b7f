"""Data augmentation: an Albumentations pipeline as ``Network.fit(augment=...)``.

``Network.fit`` calls ``augment(x_batch, y_batch)`` on every training batch and trains on
the ``(x_batch, y_batch)`` it returns. Albumentations transforms one image at a time, in
``(H, W, C)`` layout; :class:`Augment` does the bookkeeping between the two::

    import albumentations as A
    augment = Augment([A.HorizontalFlip(), A.Affine(rotate=(-10, 10))])
    net.fit(x, y, augment=augment)                       # classification: y unchanged

    augment = Augment([A.HorizontalFlip(), A.RandomCrop(224, 224)], boxes=True)
    net.fit(x, targets, augment=augment)                 # detection: boxes follow the image

Albumentations is the optional extra ``pip install -e ".[augment]"``; it is imported only
when a list of transforms has to be composed (nothing imports it with ``nn``).

With ``boxes=True`` the boxes are checked (``(k, 4)`` finite numbers, ``x2 > x1``,
``y2 > y1``) and clipped to the image before the pipeline sees them, since Albumentations
refuses a box that sticks out of the image (a radio source on the edge); a box lying wholly
outside its image is an error that names the image and the box. A composed pipeline without
``bbox_params`` would flip the image and leave the boxes where they were: it is refused.
"""
from __future__ import annotations

import numpy as np

from ..checks import as_array, check_finite
from ..errors import ConfigError, DataError, ShapeError


def import_albumentations():
    """The ``albumentations`` module, or an ``ImportError`` that says how to install it."""
    try:
        import albumentations
    except ImportError as exc:
        raise ImportError('data augmentation needs Albumentations, an optional extra of nn: '
                          'pip install -e ".[augment]"') from exc
    return albumentations


class Augment:
    """Apply an Albumentations pipeline to each image of ``(N, C, H, W)`` batches.

    Parameters
    ----------
    pipeline : callable or list of transforms
        An ``A.Compose`` (or anything called as ``pipeline(image=..., bboxes=..., labels=...)``
        that returns a dict with ``"image"`` and, for boxes, ``"bboxes"`` and the label field),
        or a list of transforms to compose. With ``boxes=True`` a composed pipeline needs
        ``bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"])``; a list is
        composed that way here.
    boxes : bool
        False: ``y`` is passed through (classification). True: ``y`` holds one dict per image
        with ``"boxes"`` ``(k, 4)`` as ``(x1, y1, x2, y2)`` pixels (the targets of
        :func:`load_voc` and :func:`make_radio_sky`, as a list or a NumPy object array); the
        boxes are transformed with the image, and every per-box array of the dict (classes,
        difficult, params, ...) keeps the rows of the boxes that survive (a crop can drop
        some). Those other arrays are not transformed: a rotation changes a box but not a
        position angle in ``"params"``.
    label_field : str
        The ``label_fields`` name the pipeline's ``BboxParams`` declares.
    """

    def __init__(self, pipeline, boxes: bool = False, label_field: str = "labels"):
        if not isinstance(boxes, (bool, np.bool_)):
            raise ConfigError(f"Augment: boxes must be True or False, got {boxes!r}")
        if not isinstance(label_field, str) or not label_field:
            raise ConfigError(f"Augment: label_field must be a name (str), got {label_field!r}")
        if isinstance(pipeline, (list, tuple)):
            A = import_albumentations()
            pipeline = A.Compose(list(pipeline), bbox_params=_bbox_params(A, label_field)
                                 if boxes else None)
        if not callable(pipeline):
            raise ConfigError(f"Augment: pipeline must be an Albumentations Compose (or a list of "
                              f"transforms), got {type(pipeline).__name__}")
        processors = getattr(pipeline, "processors", None)
        if boxes and isinstance(processors, dict) and "bboxes" not in processors:
            raise ConfigError("Augment(boxes=True): this Compose has no bbox_params, so it would "
                              "move the image and not the boxes; build it with bbox_params="
                              f"A.BboxParams(format='pascal_voc', label_fields=['{label_field}']), "
                              "or give Augment the list of transforms")
        self.pipeline, self.boxes, self.label_field = pipeline, bool(boxes), label_field

    def __call__(self, x, y):
        x = np.asarray(as_array(x, "the images", "Augment"))
        if x.ndim != 4:
            raise ShapeError(f"Augment: expected a batch of images (N, C, H, W), got shape "
                             f"{x.shape}; give images channels first (x[:, None] adds C = 1)")
        if len(x) == 0:                      # an empty batch: nothing to transform
            return x, y
        if self.boxes:
            hint = ("y must hold one dict per image with a 'boxes' entry (k, 4), as load_voc "
                    "and make_radio_sky return")
            if y is None or isinstance(y, dict) or not hasattr(y, "__len__"):
                raise DataError(f"Augment(boxes=True): {hint}; got {type(y).__name__}")
            if len(y) != len(x):
                raise ShapeError(f"Augment(boxes=True): {len(x)} images but {len(y)} targets; "
                                 f"{hint}")
            for i, t in enumerate(y):
                if not isinstance(t, dict) or "boxes" not in t:
                    what = "a dict without boxes" if isinstance(t, dict) else type(t).__name__
                    raise DataError(f"Augment(boxes=True): the target of image {i} is {what}; "
                                    f"{hint}")
            pairs = [self._image_and_boxes(i, image, target)
                     for i, (image, target) in enumerate(zip(x, y))]
            images = [p[0] for p in pairs]
            targets = [p[1] for p in pairs]
            if isinstance(y, np.ndarray):  # what fit indexes; a list stays a list
                out = np.empty(len(targets), dtype=object)
                out[:] = targets
                targets = out
        else:
            images = [self._image(image) for image in x]
            targets = y
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise ValueError(f"Augment: the pipeline returned images of different shapes "
                             f"{sorted(shapes)}; end it with a fixed-size transform (A.Resize, "
                             "A.CenterCrop) so that a batch can be stacked")
        return np.stack(images).astype(x.dtype, copy=False), targets

    @staticmethod
    def _to_hwc(image):
        # Albumentations works on float32 (or uint8) (H, W, C) images
        work = image if image.dtype in (np.uint8, np.float32) else image.astype(np.float32)
        return np.ascontiguousarray(work.transpose(1, 2, 0))

    @staticmethod
    def _to_chw(image):
        image = np.asarray(image)
        return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)

    def _run(self, **inputs):
        out = self.pipeline(**inputs)
        needed = ["image"] + (["bboxes", self.label_field] if "bboxes" in inputs else [])
        if not isinstance(out, dict) or any(k not in out for k in needed):
            got = sorted(out) if isinstance(out, dict) else type(out).__name__
            raise ConfigError(f"Augment: the pipeline must return a dict with {needed}, got "
                              f"{got}; give an Albumentations Compose (with bbox_params for "
                              "boxes) or a list of transforms")
        return out

    def _image(self, image):
        return self._to_chw(self._run(image=self._to_hwc(image))["image"])

    def _image_and_boxes(self, i, image, target):
        where = f"Augment: 'boxes' of image {i}"
        boxes = np.asarray(as_array(target["boxes"], f"'boxes' of image {i}", "Augment"),
                           dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ShapeError(f"{where} must have shape (k, 4) = (x1, y1, x2, y2), got shape "
                             f"{boxes.shape}")
        check_finite(boxes, f"'boxes' of image {i}", "Augment")
        height, width = image.shape[1:]
        bad = np.flatnonzero((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1]))
        if len(bad):
            raise DataError(f"{where}: box {bad[0]}, {boxes[bad[0]].tolist()}, has x2 <= x1 or "
                            "y2 <= y1; boxes are (x1, y1, x2, y2) in pixels")
        # Albumentations refuses boxes that stick out of the image: clip them to it
        clipped = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
        bad = np.flatnonzero((clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1]))
        if len(bad):
            raise DataError(f"{where}: box {bad[0]}, {boxes[bad[0]].tolist()}, lies wholly outside "
                            f"the {width} x {height} image; drop it")
        n = len(boxes)
        # each box carries its row number through the pipeline: the rows that come back say
        # which boxes survived, and so which rows of the other per-box arrays to keep
        out = self._run(image=self._to_hwc(image), bboxes=clipped,
                        **{self.label_field: list(range(n))})
        kept = np.asarray(out[self.label_field], dtype=np.int64).reshape(-1)
        new = {}
        for key, value in target.items():
            if key == "boxes":
                new[key] = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)[:, :4]
            elif isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == n:
                new[key] = value[kept]
            else:
                new[key] = value
        return self._to_chw(out["image"]), new

    def __repr__(self):
        return f"Augment({self.pipeline!r}, boxes={self.boxes})"


def _bbox_params(A, label_field):
    """Boxes as (x1, y1, x2, y2) pixels, clipped to the image after each transform when the
    installed Albumentations can (its ``clip`` option)."""
    try:
        return A.BboxParams(format="pascal_voc", label_fields=[label_field], clip=True)
    except TypeError:       # an Albumentations without the clip option
        return A.BboxParams(format="pascal_voc", label_fields=[label_field])
