"""Full-batch epoch time of the course's 4-8-3 sigmoid MLP on Iris: nn against plain NumPy.

The reference is the network as students first write it by hand in the course: NumPy
arrays, a constant -1 input as bias, the sigmoid with slope beta, the delta rule for the
quadratic error. nn runs the same arithmetic through ``Network.fit`` (full batch, float64
like the reference, shuffling off) and through a bare forward/backward/step loop. When
PyTorch is installed, the same network in PyTorch (CPU, same thread count) is timed too.
All timings come from this one process; the ratios are what to read.

    python benchmarks/mlp.py [--epochs 2000] [--repeat 5]
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    nn.use("numpy", "fp64", seed=0)
    x, t = data()
    runs = {
        "plain NumPy (reference)": lambda: plain_numpy(x, t, args.epochs),
        "nn Network.fit": lambda: nn_fit(x, t, args.epochs),
        "nn forward/backward/step loop": lambda: nn_loop(x, t, args.epochs),
    }
    try:
        import torch
        torch.set_num_threads(max(1, torch.get_num_threads()))
        runs["PyTorch CPU"] = lambda: torch_mlp(x, t, args.epochs)
    except ImportError:
        print("(PyTorch not installed: its line is skipped)")
    print(f"4-{HIDDEN}-3 sigmoid MLP, Iris (150 examples), full batch, float64, "
          f"{args.epochs} epochs, best of {args.repeat}")
    reference = None
    for name, fn in runs.items():
        fn()  # warm-up
        seconds = best_time(fn, args.repeat)
        per_epoch = seconds / args.epochs * 1e6
        reference = reference or per_epoch
        print(f"  {name:32s} {per_epoch:8.1f} µs/epoch   {per_epoch / reference:5.2f}x the reference")


if __name__ == "__main__":
    main()
