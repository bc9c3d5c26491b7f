# %% [markdown]
# # Optimisers on an error surface: SGD, momentum, RMSprop, Adagrad and Adam
#
# **What you will learn.** What the error of a neuron looks like as a function of its
# weights; how plain gradient descent walks on that surface with a small and a large
# learning rate; how momentum, RMSprop, Adagrad and Adam change each step; that the update
# rules of ``nn.optim`` are exactly the few lines you write; and how the choice shows on a
# real training (Pima), learning curves side by side.
#
# **Estimated time:** 2 h (★ a few minutes, ★★ up to half an hour).
#
# Slides (`004_3d9df880d40eb3ff.txt`): "Learning rate" (*small η: stable but slow; large η:
# fast but unstable*; *Adam, RMSprop, Adagrad … automatically adapt the learning rate*) and
# the figure "Logarithm of the error term in the weight space of a simple binary neuron with
# a two dimensional input parameter", which this practical redraws with the trajectories of
# six optimisers. The slides name the adaptive optimisers without their rules: the rules
# here are PyTorch's, as in ``nn.optim`` (their docstrings give the papers).
#
# The neuron: two inputs ``x_1, x_2``, two weights ``w = (w_1, w_2)`` and no bias (the two
# classes are placed symmetrically about the origin, so it needs none), the sigmoid output
# ``y = g(x_1 w_1 + x_2 w_2)`` and the slides' quadratic error averaged over the ``N``
# examples, ``E(w) = 1/(2N) sum_n (y_n - t_n)^2``. The first input is spread ten times more
# than the second: the valley of ``E`` is then long and narrow, which is where optimisers
# differ.
#
# You write the error and its gradient, the error on a grid of weights, the four update
# rules (one step each, for a vector of weights), the walk of an optimiser on the surface,
# and the comparison on Pima.

# %%
import numpy as np

from nn.functional import sigmoid


def make_neuron_data(n=200, seed=0):
    """Two classes of ``n // 2`` points in 2-D, symmetric about the origin, the first input
    spread ten times more than the second: ``x (n, 2)``, ``t (n,)`` in {0, 1}."""
    rng = np.random.default_rng(seed)
    half = n // 2
    scale = np.array([2.0, 0.4])
    pos = rng.normal(1.0, 1.0, (half, 2)) * scale
    neg = -rng.normal(1.0, 1.0, (n - half, 2)) * scale
    x = np.concatenate([pos, neg])
    t = np.concatenate([np.ones(half), np.zeros(n - half)])
    return x, t


def error_and_gradient(w, x, t):
    """The neuron's error ``E(w)`` and its gradient ``dE/dw``. ★★

    Parameters
    ----------
    w : (2,) the two weights
    x : (N, 2) inputs;  t : (N,) targets in [0, 1]

    Returns
    -------
    E : float, ``1/(2N) sum_n (y_n - t_n)^2`` with ``y_n = g(x_n . w)`` (slope beta = 1)
    grad : (2,) its derivative with respect to each weight (derive it with the chain rule,
        as for the output layer of the MLP: slide "Error gradient backpropagation").

    Use ``nn.functional.sigmoid`` for ``g`` (imported above).
    """
    raise NotImplementedError("★★ the outputs of the neuron for all examples; the error averaged over them; then, by the chain rule, the error's derivative for each output times the sigmoid's slope, weighed by each input and averaged")
    return E, grad


def error_surface(x, t, w1, w2):
    """``E`` at every point of a grid of weights, for a contour plot. ★★

    Parameters
    ----------
    w1 : (A,) values of the first weight;  w2 : (B,) values of the second

    Returns
    -------
    (B, A) array: element ``[j, i]`` is ``E((w1[i], w2[j]))`` (rows follow ``w2``, the layout
    ``matplotlib.pyplot.contour(w1, w2, E)`` expects). Compute it without a Python loop over
    the grid: one weighted sum per example and grid point, as an array.
    """
    raise NotImplementedError("★★ the weighted sum of every example for every pair of weights, as one array with a grid axis and an example axis (broadcasting); the sigmoid and the averaged error along the example axis")
    return E


# %% [markdown]
# ## Four update rules
#
# Each function makes **one** step for a vector of weights ``w`` from its gradient ``g``,
# and returns the new weights without changing ``w`` in place. What an optimiser remembers
# from one step to the next (its *state*) lives in the dictionary ``state``: it is empty
# before the first step, and your function stores in it what the next step needs (choose
# the keys). The rules are those of ``nn.optim`` (read the docstrings of ``SGD``,
# ``RMSprop``, ``Adagrad`` and ``Adam`` in ``nn/optim.py``); the tests compare your steps
# with theirs.

# %%
def sgd_step(w, g, state, lr, momentum=0.0):
    """Gradient descent, with momentum when ``momentum > 0``. ★

    Without momentum, the slides' rule: a step against the gradient, of length ``lr`` times
    the gradient. With momentum, the step follows a *velocity* that accumulates the past
    gradients (each step keeps ``momentum`` times the previous velocity and adds the new
    gradient; before the first step the velocity is zero).
    """
    raise NotImplementedError("★ the velocity from the previous one (zero at first) and the new gradient, kept in state; the step against it")
    return w


def rmsprop_step(w, g, state, lr, alpha=0.99, eps=1e-8):
    """RMSprop: each weight's step divided by a running root-mean-square of its gradients. ★

    The running mean of the squared gradient forgets the past with the factor ``alpha``
    (it starts at zero); ``eps`` is added to its square root before dividing.
    """
    raise NotImplementedError("★ the running mean of the squared gradient, updated and kept; the gradient over its square root (plus eps) times the learning rate, against the gradient")
    return w


def adagrad_step(w, g, state, lr, eps=1e-10):
    """Adagrad: each weight's step divided by the root of the *sum* of all its past squared
    gradients (so the steps can only shrink). ★"""
    raise NotImplementedError("★ as RMSprop, with a sum that never forgets instead of a running mean")
    return w


def adam_step(w, g, state, lr, betas=(0.9, 0.999), eps=1e-8):
    """Adam: momentum on the gradient and RMSprop's scale, both with a bias correction. ★★

    Two running means, of the gradient (factor ``betas[0]``) and of its square (factor
    ``betas[1]``), both starting at zero. Because they start at zero, after ``t`` steps they
    are too small by the factor ``1 - beta**t``: divide each by it before use. The step is
    the corrected mean gradient over (the root of the corrected mean square plus ``eps``),
    times the learning rate. Count the steps in ``state`` too.
    """
    raise NotImplementedError("★★ the step count, the two running means, their corrections for the step count, and the step against the corrected gradient mean scaled by the corrected root mean square")
    return w


def walk(step, w0, x, t, n_steps, **settings):
    """The path of an optimiser on the neuron's error surface, full batch. ★

    Parameters
    ----------
    step : one of the four functions above; ``settings`` are its keyword arguments
        (``lr=...``, ``momentum=...``)
    w0 : (2,) the start;  n_steps : int >= 0

    Returns
    -------
    path : (n_steps + 1, 2) the weights before the first step and after each step
    errors : (n_steps + 1,) ``E`` at each of those points
    """
    raise NotImplementedError("★ a fresh state; from the start, one step per iteration from the gradient at the current point, recording every point and its error")
    return path, errors


# the optimisers compared on the surface: (label, step function, settings)
SURFACE_RUNS = (
    ("SGD, lr 2", sgd_step, dict(lr=2.0)),
    ("SGD, lr 20", sgd_step, dict(lr=20.0)),
    ("momentum 0.9", sgd_step, dict(lr=2.0, momentum=0.9)),
    ("RMSprop", rmsprop_step, dict(lr=0.3)),
    ("Adagrad", adagrad_step, dict(lr=2.0)),
    ("Adam", adam_step, dict(lr=0.5)),
)
START = np.array([-1.0, -10.0])


# %% [markdown]
# ## The error surface
#
# Plot ``log E`` (as the slide does: the logarithm shows the floor of the valley, which is
# otherwise flat) over the weights, and every optimiser's path from the same start. The
# inputs differ in scale, so ``E`` changes ten times faster along ``w_1`` than along
# ``w_2``: the gradient points mostly across the valley, not along it.

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt

    from nn.course import show

    x, t = make_neuron_data()
    w1 = np.linspace(-4, 14, 181)
    w2 = np.linspace(-14, 14, 141)
    surface = error_surface(x, t, w1, w2)
    N_STEPS = 100
    paths = {label: walk(step, START, x, t, N_STEPS, **settings)
             for label, step, settings in SURFACE_RUNS}

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    axes[0].contourf(w1, w2, np.log(surface), levels=30, cmap="viridis")
    for label, (path, errors) in paths.items():
        axes[0].plot(path[:, 0], path[:, 1], ".-", ms=3, lw=1, label=label)
        axes[1].plot(errors, label=label)
        print(f"{label:>14}: E = {errors[0]:.4f} -> {errors[-1]:.4f} after {N_STEPS} steps")
    axes[0].plot(*START, "k*", ms=12)
    axes[0].set(xlabel="$w_1$", ylabel="$w_2$", title="log of the error, and the paths",
                xlim=(w1[0], w1[-1]), ylim=(w2[0], w2[-1]))
    axes[1].set(xlabel="step", ylabel="E", yscale="log", title="error along each path")
    axes[1].legend()
    show(fig, "surface")

# %% [markdown]
# Read the figure. The start has the second weight of the wrong sign. The gradient points
# mostly along ``w_1``, the weight of the large input: plain gradient descent first makes
# the neuron steeper along ``x_1`` and only slowly corrects ``w_2`` (with the small learning
# rate it has barely moved after 100 steps; the large one is faster but follows the same
# bent path). Momentum accumulates the small, consistent pull on ``w_2`` and gets further.
# RMSprop, Adagrad and Adam divide each weight's step by the size of its own gradients, so
# they move ``w_2`` as fast as ``w_1`` and head straight for the valley floor near
# ``(1, 5.6)``; Adagrad's steps shrink as its sums grow, Adam's momentum overshoots along
# the flat floor.
#
# Try it: change ``START`` (start on the flat plateau, where the sigmoid saturates and every
# gradient is tiny: which optimisers still move?), the learning rates, or ``betas``.
#
# ## The same optimisers on Pima
#
# The surface had two weights; a network has thousands, and its gradients are noisy
# (mini-batches). Train the same small network on Pima with each optimiser, **from the
# same initial weights** (draw them from the same seed each time: the backend's generator,
# ``nn.backends.current().seed(seed)``, draws the weights of every layer built after it),
# and compare the learning curves.


# %%
def compare_optimizers(x_train, y_train, valid, optimizers, epochs=30, batch_size=32, seed=0):
    """One training of the same network per optimiser, all from the same initial weights. ★★

    An exploration: the network is yours (an MLP for the 8 Pima features and the two
    classes, trained with ``nn``'s layers and ``Network.fit``), but it must be the same
    network, with the same initial weights, for every optimiser, and ``fit`` must shuffle the
    batches with ``seed`` so that only the optimiser changes. The test trains your network
    with Adam and asks for at least 72 % validation accuracy after 30 epochs (76.0 %
    measured with the solution).

    Parameters
    ----------
    x_train (N, 8) standardised features, y_train (N,) class ids; valid : (x_valid, y_valid)
    optimizers : dict name -> an ``nn.optim`` optimizer (a fresh one each)

    Returns
    -------
    dict name -> the history ``fit`` returns (with ``valid_accuracy``)
    """
    raise NotImplementedError("★★ for every optimiser: seed the weight generator, build the network (its ReLU layers want He initialisation), train it with that optimiser; keep the histories by name")
    return histories


def pima_optimizers():
    """The optimisers compared on Pima (fresh instances)."""
    from nn.optim import SGD, Adagrad, Adam, RMSprop

    return {"SGD lr 0.01": SGD(lr=0.01), "SGD lr 0.1": SGD(lr=0.1),
            "momentum 0.9": SGD(lr=0.01, momentum=0.9), "RMSprop": RMSprop(lr=1e-3),
            "Adagrad": Adagrad(lr=0.05), "Adam": Adam(lr=1e-3)}


def pima_split(seed=0):
    """Pima standardised with the training statistics: ``x_train, y_train, (x_valid, y_valid)``."""
    from nn.data import Standardize, load_pima, train_valid_test_split

    x, y = load_pima()
    parts = train_valid_test_split(x, y, valid=0.25, test=0.0, seed=seed, stratify=True)
    (x_train, y_train), (x_valid, y_valid) = parts["train"], parts["valid"]
    norm = Standardize().fit(x_train)
    return norm.transform(x_train), y_train, (norm.transform(x_valid), y_valid)


# %%
if __name__ == "__main__":
    x_train, y_train, valid = pima_split()
    start = time.perf_counter()
    histories = compare_optimizers(x_train, y_train, valid, pima_optimizers(), epochs=60)
    print(f"\n{len(histories)} trainings in {time.perf_counter() - start:.1f} s")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, h in histories.items():
        line, = axes[0].plot(h["train_loss"], label=name)
        axes[1].plot(h["valid_accuracy"], color=line.get_color(), label=name)
        print(f"{name:>13}: training loss {h['train_loss'][-1]:.3f}, validation accuracy "
              f"{100 * h['valid_accuracy'][-1]:.1f} % (best {100 * max(h['valid_accuracy']):.1f} %)")
    axes[0].set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="Pima: training")
    axes[1].set(xlabel="epoch", ylabel="validation accuracy", title="Pima: validation")
    axes[1].legend()
    show(fig, "pima")

# %% [markdown]
# On Pima the differences are smaller than on the surface: the inputs are standardised, so
# no weight lives in a much steeper direction than another, and every reasonable optimiser
# ends near the same accuracy (about 75 %, the MLP practical's figure). What changes is how
# fast, and how sensitive each is to its learning rate. Try ten times larger and smaller
# learning rates for each, and note which optimiser forgives a bad choice.
