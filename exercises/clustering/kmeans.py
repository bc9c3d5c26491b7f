# %% [markdown]
# # k-means: finding groups in 2-D and 3-D point clouds
#
# **What you will learn.** What unsupervised learning is (no labels: the algorithm makes the
# groups); the two phases of k-means, association and update, and why each can only lower
# the sum of squared distances; how to start, when to stop, what to do with a centre that
# loses all its points; how the result depends on the start and on the number of groups
# ``k``, and how to choose ``k`` from the "elbow" of the inertia.
#
# **Estimated time:** 1 h 30 to 2 h (★ a few minutes, ★★ up to half an hour).
#
# Slides (course's master lectures, `004_3d9df880d40eb3ff.txt`): "Types of Machine
# Learning" (un-supervised: *try to find similarities in the input in order to create
# groups*) and "Use cases: Simple example of clustering" (*find groups in data based on a
# predefined strategy, e.g. geometric distance*). The slides name clustering only; the
# algorithm is the course's k-means practical, and where this practical departs from it, it
# says so: the point clouds are generated here (Gaussian blobs with a seed, placed as in the
# course's files) instead of read from files, and the initial centres are ``k`` *distinct*
# points of the data (the course's starter may draw the same point twice, which leaves two
# identical centres).
#
# **k-means** looks for ``k`` centres ``c_1 .. c_k`` and gives each point ``x_n`` to one of
# them, so that the **inertia**, the sum over the points of the squared distance to their
# centre, is small. It alternates two phases, each of which can only lower the inertia:
#
# - *association*: each point goes to its nearest centre (squared Euclidean distance);
# - *update*: each centre moves to the mean position (centroid) of the points it holds.
#
# It starts from ``k`` points of the data drawn at random, and stops when the centres no
# longer move (then the associations no longer change either). It finds *a* local minimum of
# the inertia, not always the best one: it depends on the start.
#
# You write the association, the update, the inertia, the random start, the loop, and a
# small study of the inertia against ``k``. Generating the data and the figures is given.

# %%
import numpy as np

# the course's 2-D cloud: four blobs, their centres (x, y) and widths (sigma_x, sigma_y)
BLOBS_2D = {"centres": [[0.0, 0.7], [0.4, 0.1], [1.2, 0.4], [0.4, 1.2]],
            "widths": [[0.1, 0.2], [0.1, 0.1], [0.05, 0.1], [0.1, 0.07]]}
# the course's 3-D cloud: the same four, flat in z, and a fifth above the fourth
BLOBS_3D = {"centres": [[0.0, 0.7, 0.1], [0.4, 0.1, 0.1], [1.2, 0.4, 0.1], [0.4, 1.2, 0.1],
                        [0.4, 1.2, 0.8]],
            "widths": [[0.1, 0.2, 0.04], [0.1, 0.1, 0.02], [0.05, 0.1, 0.1],
                       [0.1, 0.07, 0.08], [0.1, 0.1, 0.1]]}


def make_blobs(centres, widths, n_per_blob=50, seed=0):
    """Gaussian blobs: ``n_per_blob`` points around each centre, in a random order.

    Parameters
    ----------
    centres : (B, D) the centre of each blob
    widths : (B, D) the standard deviation of each blob along each axis
    n_per_blob : int
    seed : int

    Returns
    -------
    x : (B * n_per_blob, D) float64 points, shuffled
    blob : (B * n_per_blob,) int64, the blob each point was drawn from (k-means never sees it)
    """
    centres, widths = np.asarray(centres, dtype=np.float64), np.asarray(widths, dtype=np.float64)
    rng = np.random.default_rng(seed)
    blob = np.repeat(np.arange(len(centres)), n_per_blob)
    x = centres[blob] + widths[blob] * rng.standard_normal((len(blob), centres.shape[1]))
    order = rng.permutation(len(blob))
    return x[order], blob[order]


def assign(x, centres):
    """The association phase: the index of the nearest centre of every point. ★★

    Parameters
    ----------
    x : (N, D) points
    centres : (k, D) centres

    Returns
    -------
    labels : (N,) int, ``labels[n]`` the centre closest to ``x[n]`` in squared Euclidean
        distance; on a tie, the centre with the **lowest** index
    """
    raise NotImplementedError("★★ the squared distance of every point to every centre at once (an N x k table, by broadcasting the two arrays against each other), then, for each point, the position of the smallest")
    return labels


def update_centres(x, labels, centres):
    """The update phase: each centre moved to the centroid of the points it holds. ★★

    Parameters
    ----------
    x : (N, D) points
    labels : (N,) int, the centre of each point (from :func:`assign`)
    centres : (k, D) the current centres (not modified)

    Returns
    -------
    new_centres : (k, D) float, the mean of the points of each centre; a centre that holds
        no point keeps its current position (the course's rule: it may catch points later)
    """
    raise NotImplementedError("★★ start from a copy of the current centres; for each centre that holds points, replace it by the mean of those points")
    return new_centres


def inertia(x, labels, centres):
    """The sum over the points of the squared distance to their own centre (a float). ★

    The course's starter prints it divided by the number of points, as its "error".
    """
    raise NotImplementedError("★ the difference between each point and the centre of its label, squared, summed over the axes and over the points")
    return total


def init_centres(x, k, rng):
    """The random start: ``k`` distinct points of ``x``, drawn with ``rng``. ★

    Returns
    -------
    (k, D) float array, a copy (changing it must not change ``x``). Distinct *indices*: no
    point is drawn twice (``k`` must not exceed ``N``).
    """
    raise NotImplementedError("★ draw k different indices among the N points with the generator, and take a copy of those points")
    return centres


def kmeans(x, k, init=None, seed=0, max_iter=100, tol=0.0):
    """The k-means loop. ★★

    - start from ``init`` (a ``(k, D)`` array, not modified) when given, else from
      :func:`init_centres` with the generator ``np.random.default_rng(seed)``;
    - one iteration: :func:`assign`, then :func:`update_centres`, then the inertia of the
      points with these labels and the **new** centres, appended to ``history``;
    - stop after the first iteration where no centre moved by more than ``tol`` (the largest
      distance between a centre and its new position; with ``tol = 0``, when the centres no
      longer change, so the labels no longer change either), or after ``max_iter``
      iterations.

    Returns
    -------
    centres : (k, D) the final centres
    labels : (N,) int, the labels of the last association phase
    history : list of floats, the inertia after each iteration (it never increases)
    """
    raise NotImplementedError("★★ the start, then the iterations described above, each recording its inertia, until the centres stop moving or max_iter is reached")
    return centres, labels, history


# %% [markdown]
# ## Explore: how many groups?
#
# k-means needs ``k``, and the slide's definition of clustering says *without prior
# knowledge on the number of groups*. The inertia always falls when ``k`` grows (with
# ``k = N`` it is 0), so its smallest value says nothing; but it falls fast while each new
# centre splits a real group in two, and slowly afterwards: the "elbow" of the curve.
# Because one run may end in a poor local minimum, ``inertia_vs_k`` keeps, for each ``k``,
# the best of ``n_init`` runs from different random starts. Graded by its outcome: every
# ``k`` present, the curve never rising, and a clear elbow at the true number of blobs.

# %%
def inertia_vs_k(x, ks, n_init=5, seed=0):
    """The lowest final inertia of ``n_init`` k-means runs, for every ``k`` of ``ks``. ★★

    The runs of one ``k`` start from different random starts (e.g. the seeds ``seed``,
    ``seed + 1``, ...), so that the study can be repeated.

    Returns
    -------
    dict ``{k: inertia}``, one float per ``k`` of ``ks``
    """
    raise NotImplementedError("★★ for each k, several runs of your kmeans from different seeds; keep the lowest final inertia")
    return table


def plot_clusters(ax, x, labels, centres, title):
    """A 2-D scatter coloured by cluster (or a 3-D one on a 3-D axis), centres as crosses."""
    colours = np.array(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                        "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan"])
    points = [x[:, i] for i in range(x.shape[1])]
    ax.scatter(*points, c=colours[np.asarray(labels) % 10], s=10)
    ax.scatter(*[centres[:, i] for i in range(x.shape[1])], c="k", marker="x", s=120,
               linewidths=3)
    ax.set_title(title)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def matched_error(found, true):
    """The largest distance between a true centre and the closest found centre."""
    found, true = np.asarray(found), np.asarray(true)
    return float(np.sqrt(((true[:, None] - found[None]) ** 2).sum(axis=2)).min(axis=1).max())


# %% [markdown]
# ## The 2-D cloud
#
# 200 points in four blobs. The left panel shows the blobs they were drawn from (which
# k-means never sees), the right one the four clusters it found and their centres.

# %%
if __name__ == "__main__":
    import time

    import matplotlib.pyplot as plt

    from nn.course import show

    SEED = 0
    x2, blob2 = make_blobs(**BLOBS_2D, n_per_blob=50, seed=SEED)
    start = time.perf_counter()
    centres2, labels2, history2 = kmeans(x2, 4, seed=SEED)
    print(f"2-D, k = 4: {len(history2)} iterations, {1e3 * (time.perf_counter() - start):.1f} ms, "
          f"inertia {history2[-1]:.3f} ({history2[-1] / len(x2):.4f} per point)")
    print(f"largest distance from a true centre to the nearest found centre: "
          f"{matched_error(centres2, BLOBS_2D['centres']):.3f}")

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    plot_clusters(axes[0], x2, blob2, np.asarray(BLOBS_2D["centres"]), "the true blobs")
    plot_clusters(axes[1], x2, labels2, centres2, "k-means, k = 4")
    axes[2].plot(np.arange(1, len(history2) + 1), history2, "o-")
    axes[2].set(xlabel="iteration", ylabel="inertia", title="the inertia never increases")
    show(fig, "clusters_2d")

# %% [markdown]
# ## The start matters, and so does k
#
# The same data from other random starts: some runs end with two centres in one blob and
# one centre between two blobs, a local minimum of higher inertia. With ``k = 3`` two blobs
# must share a centre; with ``k = 6`` real blobs are cut in pieces.

# %%
if __name__ == "__main__":
    finals = {seed: kmeans(x2, 4, seed=seed)[2][-1] for seed in range(20)}
    worst = max(finals, key=finals.get)
    print(f"final inertia of 20 random starts: {min(finals.values()):.3f} to "
          f"{max(finals.values()):.3f}")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for ax, (k, seed) in zip(axes, ((4, worst), (3, SEED), (6, SEED))):
        centres, labels, history = kmeans(x2, k, seed=seed)
        plot_clusters(ax, x2, labels, centres, f"k = {k}, seed {seed}: inertia {history[-1]:.2f}")
    show(fig, "starts_and_k")

# %% [markdown]
# ## The 3-D cloud, and the elbow
#
# 250 points in five blobs; seen from above (x, y) two of them overlap and the cloud looks
# like four groups, but in 3-D k-means separates five. The elbow of the inertia says it too.

# %%
if __name__ == "__main__":
    x3, blob3 = make_blobs(**BLOBS_3D, n_per_blob=50, seed=SEED)
    table3 = inertia_vs_k(x3, range(1, 9), n_init=5, seed=SEED)
    k3 = 5
    best_seed = min(range(5), key=lambda s: kmeans(x3, k3, seed=s)[2][-1])
    centres3, labels3, history3 = kmeans(x3, k3, seed=best_seed)
    print(f"3-D, k = 5: {len(history3)} iterations, inertia {history3[-1]:.3f}; largest "
          f"distance to a true centre {matched_error(centres3, BLOBS_3D['centres']):.3f}")

    fig = plt.figure(figsize=(12, 5.5))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    plot_clusters(ax, x3, labels3, centres3, "k-means in 3-D, k = 5")
    ax.set_zlabel("z")
    ax = fig.add_subplot(1, 2, 2)
    plot_clusters(ax, x3[:, :2], labels3, centres3[:, :2], "the same, seen from above")
    fig.subplots_adjust(wspace=0.4)
    show(fig, "clusters_3d")

    table2 = inertia_vs_k(x2, range(1, 9), n_init=5, seed=SEED)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, table in (("2-D (4 blobs)", table2), ("3-D (5 blobs)", table3)):
        ks = sorted(table)
        ax.plot(ks, [table[k] for k in ks], "o-", label=name)
    ax.set(xlabel="k", ylabel="lowest inertia of 5 runs", yscale="log",
           title="the elbow at the true number of groups")
    ax.legend()
    show(fig, "elbow")
    for name, table in (("2-D", table2), ("3-D", table3)):
        print(f"{name} inertia by k:", {k: round(v, 3) for k, v in table.items()})
