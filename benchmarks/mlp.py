"""Full-batch epoch time of the course's 4-8-3 sigmoid MLP on Iris: nn against plain NumPy.

The reference is the network as students first write it by hand in the course: NumPy
arrays, a constant -1 input as bias, the sigmoid with slope beta, the delta rule for the
quadratic error. nn runs the same arithmetic through ``Network.fit`` (full batch, float64
like the reference, shuffling off) and through a bare forward/backward/step loop. When
PyTorch is installed, the same network in PyTorch (CPU, same thread count) is timed too.
All timings come from this one process; the ratios are what to read.

    python benchmarks/mlp.py [--epochs 2000] [--repeat 5] [--tile 100]

Iris is tiny (150 x 8 hidden activations), so an epoch is dominated by the fixed cost of each
NumPy call and Python method call; the second table repeats the data 100 times to show the
ratios once arithmetic dominates.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import nn
from nn.data import load_iris, one_hot
from nn.layers import Dense, Sigmoid
from nn.losses import MSE
from nn.optim import SGD

BETA, LR, HIDDEN = 1.0, 0.1, 8


def data():
    x, y = load_iris()
    x = (x - x.mean(axis=0)) / np.abs(x - x.mean(axis=0)).max(axis=0)
    return x, one_hot(y)


def plain_numpy(x, t, epochs, seed=0):
    """The course's hand-written MLP: bias as a weight on a constant -1 input."""
    rng = np.random.default_rng(seed)
    n = len(x)
    x1 = np.hstack([x, -np.ones((n, 1))])
    w1 = rng.uniform(-0.01, 0.01, (x1.shape[1], HIDDEN))
    w2 = rng.uniform(-0.01, 0.01, (HIDDEN + 1, t.shape[1]))
    minus_one = -np.ones((n, 1))
    for _ in range(epochs):
        h = 1 / (1 + np.exp(-BETA * (x1 @ w1)))
        h1 = np.hstack([h, minus_one])
        a = 1 / (1 + np.exp(-BETA * (h1 @ w2)))
        delta_o = BETA * (a - t) * a * (1 - a) / n
        delta_h = BETA * h * (1 - h) * (delta_o @ w2[:-1].T)
        w2 -= LR * (h1.T @ delta_o)
        w1 -= LR * (x1.T @ delta_h)
    return a


def nn_network():
    return nn.Network([Dense(4, HIDDEN), Sigmoid(BETA), Dense(HIDDEN, 3), Sigmoid(BETA)], MSE())


def nn_fit(x, t, epochs):
    net = nn_network()
    net.fit(x, t, epochs=epochs, batch_size=len(x), optimizer=SGD(LR), shuffle=False,
            progress=False)
    return net


def nn_loop(x, t, epochs):
    """forward / loss / backward / step by hand, without fit's bookkeeping."""
    net, loss, opt = nn_network(), MSE(), SGD(LR)
    params = net.parameters()
    for _ in range(epochs):
        loss.forward(net.forward(x, train=True), t)
        net.backward(loss.backward())
        opt.step(params)
    return net


def torch_mlp(x, t, epochs):
    import torch
    xt, tt = torch.tensor(x), torch.tensor(t)
    model = torch.nn.Sequential(torch.nn.Linear(4, HIDDEN), torch.nn.Sigmoid(),
                                torch.nn.Linear(HIDDEN, 3), torch.nn.Sigmoid()).double()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    for _ in range(epochs):
        opt.zero_grad()
        loss = 0.5 * ((model(xt) - tt) ** 2).sum() / len(xt)
        loss.backward()
        opt.step()
    return model


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(x, t, epochs, repeat):
    runs = {
        "plain NumPy (reference)": lambda: plain_numpy(x, t, epochs),
        "nn Network.fit": lambda: nn_fit(x, t, epochs),
        "nn forward/backward/step loop": lambda: nn_loop(x, t, epochs),
    }
    try:
        import torch
        runs["PyTorch CPU"] = lambda: torch_mlp(x, t, epochs)
    except ImportError:
        pass
    print(f"\n4-{HIDDEN}-3 sigmoid MLP, {len(x):,} examples, full batch, float64, {epochs} epochs, "
          f"best of {repeat}")
    reference = None
    for name, fn in runs.items():
        fn()  # warm-up
        per_epoch = best_time(fn, repeat) / epochs * 1e6
        reference = reference or per_epoch
        print(f"  {name:32s} {per_epoch:9.1f} µs/epoch   {per_epoch / reference:5.2f}x the reference")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tile", type=int, default=100,
                        help="also time Iris repeated this many times (0: skip)")
    args = parser.parse_args(argv)
    nn.use("numpy", "fp64", seed=0)
    try:
        import torch
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    except ImportError:
        print("PyTorch not installed: its lines are skipped")
    x, t = data()
    compare(x, t, args.epochs, args.repeat)
    if args.tile:
        # the same network on a batch 100 times larger: per-call overhead against arithmetic
        compare(np.tile(x, (args.tile, 1)), np.tile(t, (args.tile, 1)),
                max(1, args.epochs // args.tile * 10), args.repeat)


if __name__ == "__main__":
    main()
