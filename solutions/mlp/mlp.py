# %% [markdown]
# # The multi-layer perceptron: backpropagation by hand on Iris and Pima
#
# One hidden layer of sigmoid neurons between the inputs and a layer of sigmoid outputs.
# Every layer gets the bias input **-1**, as in the perceptron. With ``beta`` the slope of
# the sigmoid,
#
#     hidden:  a_j = g(h_j),  h_j = sum_i x_i v_ij         g(h) = 1 / (1 + exp(-beta h))
#     output:  y_k = g(h_k),  h_k = sum_j a_j w_jk         g'(h) = beta g(h) (1 - g(h))
#
# The network learns by gradient descent on the quadratic error of each example,
# ``E = 1/2 sum_k (y_k - t_k)^2``. Backpropagation computes the error signal ``delta`` of
# every neuron, ``dE/dh``, from the outputs back to the inputs:
#
#     output:  delta_k = (y_k - t_k) beta y_k (1 - y_k)
#     hidden:  delta_j = beta a_j (1 - a_j) sum_k w_jk delta_k
#
# and the gradient of a weight is the delta of the neuron it feeds times the activation it
# carries: ``dE/dw_jk = a_j delta_k``, ``dE/dv_ij = x_i delta_j``. Over a batch of examples
# we average these gradients, so that the learning rate does not depend on the batch size.
#
# Inputs are normalised feature by feature, as in the course: subtract the mean, divide by
# the largest absolute value, both computed on the **training** data only.
#
# You write the sigmoid and its derivative, the normalisation, the forward pass, the deltas,
# the gradients and the training loop. The experiments are given; at the end the same
# network is built from the library's layers and gives the same gradients.

# %%
import numpy as np

from nn.metrics import confusion_matrix, format_confusion


def add_bias(x):
    """``(N, F)`` -> ``(N, F + 1)``: the constant bias input -1 appended to every example."""
    return np.concatenate([x, -np.ones((x.shape[0], 1), dtype=x.dtype)], axis=1)


def sigmoid(h, beta=1.0):
    """The logistic function with slope ``beta``: ``1 / (1 + exp(-beta h))``, element-wise."""
    # BEGIN SOLUTION apply 1 / (1 + exp(-beta * h)) element-wise with np.exp
    a = 1.0 / (1.0 + np.exp(-beta * h))
    # END SOLUTION
    return a


def sigmoid_derivative(a, beta=1.0):
    """``dg/dh`` written with the sigmoid's own output ``a = g(h)``: ``beta a (1 - a)``."""
    # BEGIN SOLUTION return beta * a * (1 - a)
    da = beta * a * (1.0 - a)
    # END SOLUTION
    return da


def fit_normalisation(x_train):
    """The course's normalisation statistics, from the training inputs ``(N, F)``.

    Returns
    -------
    mean : (F,) the mean of each feature
    scale : (F,) the largest ``|x - mean|`` of each feature (1 for a constant feature,
        which has nothing to divide)

    Apply them with :func:`normalise`, to the training data and, unchanged, to the test
    data: ``nn.data.CenterMaxAbs`` is the packaged version.
    """
    # BEGIN SOLUTION per-feature mean (axis 0) and max |x_train - mean|, set to 1 where 0
    mean = x_train.mean(axis=0)
    scale = np.abs(x_train - mean).max(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    # END SOLUTION
    return mean, scale


def normalise(x, mean, scale):
    """``(x - mean) / scale``, each feature to [-1, 1] on the training data."""
    return (x - mean) / scale


def init_weights(n_inputs, n_hidden, n_outputs, rng):
    """Small random weights ``w1 (n_inputs + 1, n_hidden)`` and ``w2 (n_hidden + 1, n_outputs)``.

    Uniform in ``[-1/sqrt(n), 1/sqrt(n)]`` for a layer of ``n`` inputs, so that each weighted
    sum starts of order 1, in the sigmoid's steep part. The last row of each matrix is the
    weight of the bias input -1.
    """
    a1, a2 = 1 / np.sqrt(n_inputs), 1 / np.sqrt(n_hidden)
    return (rng.uniform(-a1, a1, size=(n_inputs + 1, n_hidden)),
            rng.uniform(-a2, a2, size=(n_hidden + 1, n_outputs)))


def forward(w1, w2, x, beta=1.0):
    """Activations of the hidden and output layers.

    Parameters
    ----------
    w1 : (F + 1, H) weights of the hidden layer (last row: the bias input)
    w2 : (H + 1, K) weights of the output layer (last row: the bias input)
    x : (N, F) normalised inputs, without the bias column
    beta : float, slope of the sigmoids

    Returns
    -------
    hidden : (N, H) ``g(add_bias(x) @ w1)``
    output : (N, K) ``g(add_bias(hidden) @ w2)``
    """
    # BEGIN SOLUTION sigmoid of add_bias(x) @ w1, then of add_bias(hidden) @ w2
    hidden = sigmoid(add_bias(x) @ w1, beta)
    output = sigmoid(add_bias(hidden) @ w2, beta)
    # END SOLUTION
    return hidden, output


def error(output, t):
    """The quadratic error ``1/2 sum_k (y_k - t_k)^2`` of each example, averaged over the batch."""
    return 0.5 * np.sum((output - t) ** 2) / len(t)


def deltas(w2, hidden, output, t, beta=1.0):
    """The course's error signals ``delta = dE/dh`` of each example, for one batch.

    Parameters
    ----------
    w2 : (H + 1, K) output weights
    hidden : (N, H), output : (N, K) the activations from :func:`forward`
    t : (N, K) targets
    beta : float

    Returns
    -------
    delta_h : (N, H) ``beta a_j (1 - a_j) sum_k w_jk delta_k`` (the bias row of ``w2`` feeds
        no hidden neuron, so it takes no part)
    delta_o : (N, K) ``(y_k - t_k) beta y_k (1 - y_k)``
    """
    # BEGIN SOLUTION delta_o from the output error, then back through w2 without its bias row
    delta_o = (output - t) * sigmoid_derivative(output, beta)
    delta_h = sigmoid_derivative(hidden, beta) * (delta_o @ w2[:-1].T)
    # END SOLUTION
    return delta_h, delta_o


def gradients(w1, w2, x, t, beta=1.0):
    """Gradients of :func:`error` (the batch mean) with respect to both weight matrices.

    Parameters
    ----------
    w1, w2, x, beta : as in :func:`forward`
    t : (N, K) targets

    Returns
    -------
    dw1 : (F + 1, H) ``add_bias(x).T @ delta_h / N``
    dw2 : (H + 1, K) ``add_bias(hidden).T @ delta_o / N``
    """
    # BEGIN SOLUTION forward, deltas, then each layer's input (with bias).T @ its delta / N
    hidden, output = forward(w1, w2, x, beta)
    delta_h, delta_o = deltas(w2, hidden, output, t, beta)
    n = len(x)
    dw1 = add_bias(x).T @ delta_h / n
    dw2 = add_bias(hidden).T @ delta_o / n
    # END SOLUTION
    return dw1, dw2


def predict(w1, w2, x, beta=1.0):
    """Class ids ``(N,)``: the output neuron with the largest activation (or, for a single
    output neuron, 1 where it is above 0.5)."""
    return output_classes(forward(w1, w2, x, beta)[1])


def output_classes(output):
    """Class ids from the output activations ``(N, K)``: argmax, or ``> 0.5`` for K = 1."""
    if output.shape[1] == 1:
        return (output[:, 0] > 0.5).astype(np.int64)
    return output.argmax(axis=1)


def train(x, t, n_hidden=5, lr=0.5, epochs=100, batch_size=1, beta=1.0, seed=0,
          test=None, sampler=None, print_every=0, class_names=None):
    """Train the network by gradient descent on the quadratic error.

    Parameters
    ----------
    x : (N, F) normalised training inputs
    t : (N, K) training targets (one-hot rows, or one 0/1 column)
    n_hidden : int, hidden neurons
    lr : float, learning rate
    epochs : int, passes over the training set
    batch_size : int
        Examples per weight update: 1 is the online rule (one update per example),
        ``N`` or more full-batch gradient descent, anything between stochastic (mini-batch)
        gradient descent.
    beta : float, slope of the sigmoids
    seed : int, seeds the initial weights and the order of the examples
    test : (x_test, t_test), optional
        A held-out set, only measured (never trained on).
    sampler : callable, optional
        ``sampler(rng) -> indices``: the examples of one epoch, in order. Default
        ``rng.permutation(N)``, every example once in a new random order.
    print_every : int
        Print the course's confusion matrix (of the test set if given, else the training
        set) every ``print_every`` epochs; 0 never.
    class_names : sequence of str, optional, for the confusion matrix

    Returns
    -------
    w1, w2 : the trained weights
    history : dict of lists, one value per epoch: ``train_error``, ``train_accuracy`` and,
        with a test set, ``test_error``, ``test_accuracy``
    """
    rng = np.random.default_rng(seed)
    w1, w2 = init_weights(x.shape[1], n_hidden, t.shape[1], rng)
    sets = {"train": (x, t)} if test is None else {"train": (x, t), "test": test}
    history = {f"{name}_{what}": [] for name in sets for what in ("error", "accuracy")}
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x)) if sampler is None else sampler(rng)
        # BEGIN SOLUTION for each batch_size slice of order: gradients, then w -= lr * dw
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            dw1, dw2 = gradients(w1, w2, x[batch], t[batch], beta)
            w1 = w1 - lr * dw1
            w2 = w2 - lr * dw2
        # END SOLUTION
        for name, (xs, ts) in sets.items():
            output = forward(w1, w2, xs, beta)[1]
            history[f"{name}_error"].append(error(output, ts))
            history[f"{name}_accuracy"].append(float(np.mean(output_classes(output)
                                                             == class_ids(ts))))
        if print_every and (epoch % print_every == 0 or epoch == epochs):
            name = "test" if test is not None else "train"
            xs, ts = sets[name]
            cm = confusion_matrix(class_ids(ts), predict(w1, w2, xs, beta),
                                  max(ts.shape[1], 2))
            print(format_confusion(cm, class_names, title=(
                f"epoch {epoch}: training error {history['train_error'][-1]:.4f}, "
                f"{name} set:")))
    return w1, w2, history


def class_ids(t):
    """Class ids ``(N,)`` from targets: argmax of one-hot rows, the value of a 0/1 column."""
    return t[:, 0].astype(np.int64) if t.shape[1] == 1 else t.argmax(axis=1)


def targets(y, n_classes):
    """Network targets from class ids: one 0/1 column for two classes, one-hot rows for more."""
    y = np.asarray(y)
    return y[:, None].astype(np.float64) if n_classes == 2 else np.eye(n_classes)[y]


def accuracy(w1, w2, x, y, beta=1.0):
    """Fraction of the examples whose predicted class is ``y``."""
    return float(np.mean(predict(w1, w2, x, beta) == y))


def plot_errors(history, title):
    """The error curves of :func:`train`: training (and test) error per epoch."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = np.arange(1, len(history["train_error"]) + 1)
    ax.plot(epochs, history["train_error"], label="training")
    if "test_error" in history:
        ax.plot(epochs, history["test_error"], label="test")
    ax.set(xlabel="epoch", ylabel="quadratic error per example", title=title, yscale="log")
    ax.legend()
    return fig


# %% [markdown]
# ## Iris
#
# 4 inputs, 5 hidden neurons, 3 outputs (one per species, one-hot targets), trained online:
# one weight update per flower, in a new random order every epoch. 30 % of each species is
# held out as the test set. The confusion matrix of the test set is printed every 25 epochs.

# %%
if __name__ == "__main__":
    from nn.course import show
    from nn.data import (IRIS_CLASSES, PIMA_CLASSES, load_iris, load_pima,
                         train_valid_test_split)

    SEED = 0

    def prepare(x, y, seed, test=0.3):
        """Stratified train/test split, normalised with the training statistics."""
        parts = train_valid_test_split(x, y, valid=0.0, test=test, seed=seed, stratify=True)
        (x_train, y_train), (x_test, y_test) = parts["train"], parts["test"]
        mean, scale = fit_normalisation(x_train)
        return normalise(x_train, mean, scale), y_train, normalise(x_test, mean, scale), y_test

    xi_train, yi_train, xi_test, yi_test = prepare(*load_iris(), seed=SEED)
    w1_iris, w2_iris, iris_history = train(
        xi_train, targets(yi_train, 3), n_hidden=5, lr=0.5, epochs=100, batch_size=1,
        seed=SEED, test=(xi_test, targets(yi_test, 3)), print_every=25,
        class_names=IRIS_CLASSES)
    iris_accuracy = accuracy(w1_iris, w2_iris, xi_test, yi_test)
    show(plot_errors(iris_history, "Iris, online"), "iris_errors")

# %% [markdown]
# ## Pima Indians diabetes
#
# 8 inputs, 5 hidden neurons, one output neuron (1 = diabetes), online, 30 epochs. Watch the
# two error curves: when the test error stops falling while the training error still
# falls, the network starts learning the training women by heart (over-fitting), and more
# epochs would not help. (A 0 in glucose, blood pressure, skin-fold, insulin or body-mass
# index means "not measured"; replacing those zeros by the median of the measured training
# values is worth a try.)

# %%
if __name__ == "__main__":
    xp_train, yp_train, xp_test, yp_test = prepare(*load_pima(), seed=SEED)
    w1_pima, w2_pima, pima_history = train(
        xp_train, targets(yp_train, 2), n_hidden=5, lr=0.1, epochs=30, batch_size=1,
        seed=SEED, test=(xp_test, targets(yp_test, 2)), print_every=10,
        class_names=PIMA_CLASSES)
    pima_accuracy = accuracy(w1_pima, w2_pima, xp_test, yp_test)
    show(plot_errors(pima_history, "Pima, online"), "pima_errors")

# %% [markdown]
# ## The same network, packaged
#
# ``nn`` builds this network from layers: ``Dense`` (``y = x @ W + b``), ``Sigmoid(beta)``,
# and the loss ``MSE`` (the same quadratic error, averaged over the batch). ``Dense`` keeps
# the bias apart: the course's weight on the input -1 is ``b`` with its sign flipped. With
# our weights loaded, one forward and backward pass gives the same gradients as
# :func:`gradients`, to rounding.

# %%
if __name__ == "__main__":
    import nn
    from nn.gradcheck import rel_error
    from nn.layers import Dense, Sigmoid
    from nn.losses import MSE

    beta = 1.0
    ti_train = targets(yi_train, 3)
    with nn.backends.using("numpy", "fp64"):
        net = nn.Network([Dense(4, 5), Sigmoid(beta), Dense(5, 3), Sigmoid(beta)], MSE())
        for dense, w in ((net.layers[0], w1_iris), (net.layers[2], w2_iris)):
            dense.params["W"][...] = w[:-1]
            dense.params["b"][...] = -w[-1]
        net.loss.forward(net.forward(xi_train), ti_train)
        net.backward(net.loss.backward())
        print(net.summary())
    dw1, dw2 = gradients(w1_iris, w2_iris, xi_train, ti_train, beta)
    for name, dense, dw in (("hidden", net.layers[0], dw1), ("output", net.layers[2], dw2)):
        print(f"{name} layer: relative difference of the gradients, weights "
              f"{rel_error(dense.grads['W'], dw[:-1]):.1e}, bias "
              f"{rel_error(dense.grads['b'], -dw[-1]):.1e}")

# %%
if __name__ == "__main__":
    print(f"Iris test accuracy: {100 * iris_accuracy:5.1f} %  (at least 95 % expected)")
    print(f"Pima test accuracy: {100 * pima_accuracy:5.1f} %  (at least 75 % expected)")
