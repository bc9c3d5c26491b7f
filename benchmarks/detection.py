"""Detection: non-maximum suppression on 10,000 boxes, and the YOLO loss forward + backward.

1. NMS of 10,000 boxes (IoU threshold 0.5) in two layouts: *uniform* (random boxes of
   10 to 100 pixels over a 1000 x 1000 image: few overlap, most are kept, the worst case for
   the greedy loop) and *clustered* (10 jittered candidates around each of 1,000 objects,
   what a detector outputs before NMS). Timed in the same process: nn's ``nms`` (the numba
   greedy loop, its NumPy path), its array path (``nn.use(numba=False)``, the GPU's
   algorithm, run on NumPy), ``torchvision.ops.nms`` when torchvision is installed, and the
   plain-Python O(n·kept) loop that defines NMS (once: it takes seconds). Every method must
   keep exactly the same boxes.
2. ``YOLOLoss`` (equation (14)) forward + backward on a batch of 16 raw outputs of a 9 x 9
   grid with 5 priors and 20 classes (130 channels: the slides' VOC network), 1 to 12
   targets per image, with each association rule ("best": by the predicted boxes, "prior":
   by the prior shapes); split into the association (its host part: reading and checking
   the targets, cells, ranks) and the loss itself.

    python benchmarks/detection.py [--repeat 7] [--no-python] [--backend numpy|cupy]
"""
from __future__ import annotations

import argparse
import importlib
import os
import time

import numpy as np

import nn
from nn.detection import YOLOLoss, nms

nms_module = importlib.import_module("nn.detection.nms")
yolo_module = importlib.import_module("nn.detection.yolo")


def uniform_boxes(n, seed=0, size=1000.0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(10, 100, (n, 2))
    return (np.concatenate([xy - wh / 2, xy + wh / 2], axis=1).astype(np.float32),
            rng.random(n).astype(np.float32))


def clustered_boxes(n, n_objects=1000, seed=0, size=1000.0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, size, (n_objects, 2))
    sizes = rng.uniform(10, 80, (n_objects, 2))
    k = rng.integers(0, n_objects, n)
    c = centres[k] + rng.normal(0, 3, (n, 2))
    wh = sizes[k] * rng.uniform(0.8, 1.25, (n, 2))
    return (np.concatenate([c - wh / 2, c + wh / 2], axis=1).astype(np.float32),
            rng.random(n).astype(np.float32))


def python_nms(boxes, scores, threshold):
    """The definition, in plain Python: each box against every kept box."""
    boxes, scores = boxes.tolist(), scores.tolist()
    keep = []
    for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)):
        x1, y1, x2, y2 = boxes[i]
        area = (x2 - x1) * (y2 - y1)
        for j in keep:
            a1, b1, a2, b2 = boxes[j]
            w = min(x2, a2) - max(x1, a1)
            h = min(y2, b2) - max(y1, b1)
            if w > 0 and h > 0:
                inter = w * h
                if inter / (area + (a2 - a1) * (b2 - b1) - inter) > threshold:
                    break
        else:
            keep.append(i)
    return np.array(keep)


def best_time(f, repeat, warmup=1):
    for _ in range(warmup):
        result = f()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = f()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_nms(args):
    torchvision = None
    try:
        import torch
        import torchvision
        torch.set_num_threads(len(os.sched_getaffinity(0)))
    except ImportError:
        print("(torchvision is not installed: no torchvision.ops.nms row)")
    print("NMS of 10,000 boxes, IoU threshold 0.5, float32, best of", args.repeat)
    print(f"{'layout':<11}{'method':<34}{'kept':>6}{'ms':>10}{'vs nn':>9}")
    for layout, make in (("uniform", uniform_boxes), ("clustered", clustered_boxes)):
        boxes, scores = make(10_000)
        t_nn, keep = best_time(lambda: nms(boxes, scores, 0.5), args.repeat)
        rows = [("nn.detection.nms (numba loop)", t_nn, keep)]
        with nn.backends.using(numba=False):
            rows.append(("nn, array path (the GPU's)", *best_time(lambda: nms(boxes, scores, 0.5),
                                                                    max(1, args.repeat // 3))))
        if torchvision is not None:
            tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
            rows.append(("torchvision.ops.nms", *best_time(
                lambda: torchvision.ops.nms(tb, ts, 0.5).numpy(), args.repeat)))
        if not args.no_python:
            rows.append(("plain Python loop (once)", *best_time(
                lambda: python_nms(boxes, scores, 0.5), 1, warmup=0)))
        for name, t, kept in rows:
            same = "" if np.array_equal(np.asarray(kept), keep) else "  DIFFERENT BOXES"
            print(f"{layout:<11}{name:<34}{len(kept):>6}{t * 1e3:>10.2f}{t / t_nn:>9.1f}{same}")


def yolo_batch(loss, N=16, grid=9, seed=0):
    rng = np.random.default_rng(seed)
    size = grid * loss.stride
    targets = []
    for _ in range(N):
        k = int(rng.integers(1, 13))
        c = rng.uniform(0, size, (k, 2))
        wh = rng.uniform(12, 200, (k, 2))
        targets.append({"boxes": np.concatenate([c - wh / 2, c + wh / 2], axis=1),
                        "classes": rng.integers(0, loss.n_classes, k)})
    raw = rng.normal(0, 1, (N, loss.channels, grid, grid)).astype(np.float32)
    return raw, targets


def bench_yolo(args):
    priors = [[20, 24], [50, 70], [90, 50], [120, 150], [250, 230]]
    print(f"\nYOLOLoss forward + backward: batch 16, 9x9 grid, 5 priors, 20 classes "
          f"({args.backend}), best of {args.repeat} x 20 calls")
    print(f"{'rule':<7}{'precision':<11}{'fwd+bwd ms':>12}{'associate ms':>14}"
          f"{'host part ms':>14}{'targets':>9}{'matched':>9}")
    for rule, precision in (("best", "fp32"), ("best", "mixed"), ("best", "fp64"),
                            ("prior", "fp32")):
        B = nn.use(args.backend, precision, seed=0)
        loss = YOLOLoss(priors, 20, stride=32, association=rule)
        raw_host, targets = yolo_batch(loss)
        raw = B.asarray(raw_host)

        def sync():
            if B.name == "cupy":
                B.xp.cuda.Stream.null.synchronize()

        def step():
            for _ in range(20):
                loss.forward(raw, targets)
                loss.backward()
            sync()

        def associate():
            for _ in range(20):
                loss.associate(raw, targets)
            sync()

        def host_part():
            for _ in range(20):
                image, boxes, _, _ = loss._read_targets(targets, len(targets), (9, 9))
                gx, gy, _ = loss._cells(boxes, (9, 9))
                yolo_module._rank_in_group((image * 9 + gy) * 9 + gx)
                loss._shape_iou(boxes)

        t_step, _ = best_time(step, args.repeat)
        t_assoc, _ = best_time(associate, args.repeat)
        t_host, _ = best_time(host_part, args.repeat)
        a = loss.association
        print(f"{rule:<7}{precision:<11}{t_step / 20 * 1e3:>12.3f}{t_assoc / 20 * 1e3:>14.3f}"
              f"{t_host / 20 * 1e3:>14.3f}{a.n_targets:>9}{a.n_matched:>9}")
    nn.use()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-python", action="store_true", help="skip the plain-Python NMS")
    parser.add_argument("--backend", default="numpy", choices=("numpy", "cupy"))
    args = parser.parse_args(argv)
    print(f"{len(os.sched_getaffinity(0))} cores")
    bench_nms(args)
    bench_yolo(args)


if __name__ == "__main__":
    main()
