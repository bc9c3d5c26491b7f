"""The CuPy backend's CUDA kernels, checked without a GPU.

Each ``ElementwiseKernel`` body in :mod:`nn.backends.cupy_backend` is plain C++ over an
index ``i``. Here it is compiled with the host C++ compiler (``T = double``), run over every
``i`` and compared with the NumPy backend's result, so that CI (which never has a GPU) still
catches a wrong index in the GPU code. On a GPU machine the backend tests run the real thing.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from nn import backends
from nn.backends import im2col as geometry
from nn.backends.cupy_backend import geometry_3d
from nn.backends.cupy_backend import source as kernel_source

CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="needs a C++ compiler (g++) on the host")

CTYPES = {np.dtype(np.float64): "double", np.dtype(np.int32): "int"}


#: C types of the kernels' scalar parameters
SCALARS = {"int64": "long long", "int32": "int", "float64": "double", "bool": "bool"}
INDEX = pytest.mark.parametrize("index", ["long long", "int"], ids=["int64-index", "int32-index"])


def run_kernel(tmp_path, name, inputs, scalars, out_shape, index="long long"):
    """Run kernel ``name`` on the host: ``inputs`` fill its ``raw`` arrays, ``scalars`` the rest;
    index arithmetic in ``index`` (the GPU backend picks ``int`` when every index fits)."""
    params, outputs, body = kernel_source(name, "double", index)
    lines = ["#include <cstdio>", "#include <cstdlib>", "typedef double T; typedef int I;",
             "int main() {"]
    arrays, values = iter(inputs), iter(scalars)
    for param in (p.split() for p in params.split(",")):
        if param[0] == "raw":
            a = np.ascontiguousarray(next(arrays))
            path = tmp_path / f"{param[2]}.bin"
            a.tofile(path)
            ctype = CTYPES[a.dtype]
            lines.append(f'{ctype}* {param[2]} = ({ctype}*) malloc({a.nbytes}); '
                         f'{{ FILE* f = fopen("{path}", "rb"); fread({param[2]}, 1, {a.nbytes}, f); '
                         'fclose(f); }')
        else:
            lines.append(f"{SCALARS[param[0]]} {param[1]} = {next(values)};")
    outs = [(("double" if kind == "T" else "int"), name_) for kind, name_ in
            (o.split() for o in outputs.split(","))]
    size = int(np.prod(out_shape))
    lines += [f"{ctype}* out_{o} = ({ctype}*) malloc({size} * sizeof({ctype}));" for ctype, o in outs]
    lines.append(f"for (long long i = 0; i < {size}; ++i) {{")
    lines += [f"{ctype} {o};" for ctype, o in outs]
    lines.append(body)
    lines += [f"out_{o}[i] = {o};" for _, o in outs]
    lines.append("}")
    for ctype, o in outs:
        lines.append(f'{{ FILE* f = fopen("{tmp_path / o}.out", "wb"); '
                     f'fwrite(out_{o}, sizeof({ctype}), {size}, f); fclose(f); }}')
    lines.append("return 0; }")
    source, exe = tmp_path / f"{name}.cpp", tmp_path / name
    source.write_text("\n".join(lines))
    subprocess.run([CXX, "-O1", "-o", str(exe), str(source)], check=True, capture_output=True)
    subprocess.run([str(exe)], check=True)
    return [np.fromfile(f"{tmp_path / o}.out", dtype=np.float64 if ctype == "double" else np.int32)
            .reshape(out_shape) for ctype, o in outs]


CONV_CASES = {
    "1d-stride-pad-dilation": ((2, 3, 11), (3,), (2,), (1,), (2,)),
    "2d-nonsquare": ((2, 2, 7, 6), (3, 2), (2, 1), (1, 0), (1, 2)),
    "3d-mixed": ((1, 2, 5, 6, 7), (2, 3, 2), (1, 2, 2), (0, 1, 1), (2, 1, 1)),
}


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation", CONV_CASES.values(),
                         ids=CONV_CASES.keys())
@INDEX
def test_im2col_and_col2im_kernels_match_numpy(tmp_path, shape, kernel, stride, padding, dilation,
                                               index):
    B = backends.use("numpy", "fp64")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    out = geometry.output_shape(shape[2:], kernel, stride, padding, dilation)
    k, s, p, d, o = geometry_3d(kernel, stride, padding, dilation, out)
    scalars = [*shape[:2], *geometry.shape_3d(shape)[2:], *k, *o, *s, *p, *d]
    cols = B.im2col(x, kernel, stride, padding, dilation)
    got, = run_kernel(tmp_path, "im2col", [x], scalars, cols.shape, index)
    np.testing.assert_array_equal(got, cols)
    c = rng.standard_normal(cols.shape)
    got, = run_kernel(tmp_path, "col2im", [c], scalars, shape, index)
    np.testing.assert_allclose(got, B.col2im(c, shape, kernel, stride, padding, dilation),
                               rtol=1e-12, atol=1e-12)


POOL_CASES = {
    "1d-overlapping": ((2, 3, 11), (3,), (2,)),
    "2d-nonsquare-overlapping": ((2, 2, 7, 6), (3, 2), (2, 1)),
    "3d": ((1, 2, 5, 6, 7), (2, 3, 2), (1, 2, 2)),
    "2d-side-by-side": ((2, 2, 8, 8), (2, 2), (2, 2)),
}


@pytest.mark.parametrize("shape, kernel, stride", POOL_CASES.values(), ids=POOL_CASES.keys())
@INDEX
def test_maxpool_kernels_match_numpy(tmp_path, shape, kernel, stride, index):
    B = backends.use("numpy", "fp64")
    rng = np.random.default_rng(1)
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)   # no ties
    y, argmax = B.maxpool(x, kernel, stride)
    scalars = [*shape[:2], *geometry.shape_3d(shape)[2:], *geometry.as_3d(kernel),
               *geometry.as_3d(y.shape[2:]), *geometry.as_3d(stride)]
    got_y, got_argmax = run_kernel(tmp_path, "maxpool", [x], scalars, y.shape, index)
    np.testing.assert_array_equal(got_y, y)
    np.testing.assert_array_equal(got_argmax, argmax)
    dy = rng.standard_normal(y.shape)
    got, = run_kernel(tmp_path, "maxpool_backward", [dy, argmax.astype(np.int32)], scalars, shape,
                      index)
    np.testing.assert_allclose(got, B.maxpool_backward(dy, argmax, shape, kernel, stride),
                               rtol=1e-12, atol=1e-12)


# -- the elementwise kernels that replace a formula on the GPU (Backend.elementwise) -----------
def run_elementwise(tmp_path, definition, *args):
    """Run an elementwise kernel ``(in_params, out_params, body)`` on the host, with ``T`` and
    ``P`` double: ``args`` as in a call of the CuPy kernel (arrays of one shape, or numbers;
    the outputs are arrays, updated in place as CuPy does). Returns the outputs."""
    in_params, out_params, body = definition
    params = [p.split() for p in in_params.split(",")] + [p.split() for p in out_params.split(",")]
    assert len(args) == len(params)
    size = next(a.size for a in args if isinstance(a, np.ndarray))
    lines = ["#include <cstdio>", "#include <cstdlib>", "#include <cmath>",
             "typedef double T; typedef double P;", "int main() {"]
    for (ctype, name), a in zip(params, args):
        if isinstance(a, np.ndarray):
            path = tmp_path / f"{name}.bin"
            np.ascontiguousarray(a, dtype=np.float64).tofile(path)
            lines.append(f'double* a_{name} = (double*) malloc({8 * size}); {{ FILE* f = '
                         f'fopen("{path}", "rb"); fread(a_{name}, 8, {size}, f); fclose(f); }}')
    lines.append(f"for (long long i = 0; i < {size}; ++i) {{")
    n_in = len(in_params.split(","))
    for k, ((ctype, name), a) in enumerate(zip(params, args)):
        ctype = SCALARS.get(ctype, "double")
        value = f"a_{name}[i]" if isinstance(a, np.ndarray) else repr(a).lower()
        lines.append(f"{ctype}{'&' if k >= n_in else ''} {name} = {value};")
    lines += [body, "}"]
    outputs = [name for _, name in params[n_in:]]
    for name in outputs:
        lines.append(f'{{ FILE* f = fopen("{tmp_path / name}.out", "wb"); '
                     f'fwrite(a_{name}, 8, {size}, f); fclose(f); }}')
    lines.append("return 0; }")
    src, exe = tmp_path / "kernel.cpp", tmp_path / "kernel"
    src.write_text("\n".join(lines))
    subprocess.run([CXX, "-O1", "-o", str(exe), str(src)], check=True, capture_output=True)
    subprocess.run([str(exe)], check=True)
    return [np.fromfile(f"{tmp_path / name}.out").reshape(args[0].shape) for name in outputs]


@pytest.mark.parametrize("momentum, weight_decay", [(0.9, 0.0), (0.5, 0.01), (0.0, 0.0),
                                                    (0.0, 0.1)])
@pytest.mark.parametrize("keep", [True, False])
def test_fused_sgd_kernel_matches_the_formula(tmp_path, momentum, weight_decay, keep):
    """Two steps of SGD (the second with state), the kernel against ``SGD._update``."""
    from nn.optim import SGD
    backends.use("numpy", "fp64")
    rng = np.random.default_rng(2)
    opt = SGD(0.05, momentum=momentum, weight_decay=weight_decay)
    p, factor = rng.standard_normal((3, 7)), 0.25
    state = opt._init_state(p)
    kernel_state = [a.copy() for a in state.values()]
    kernel_p = p.copy()
    for _ in range(2):
        g = rng.standard_normal(p.shape)
        new_p, new_state = opt._update(p, g * factor, state)
        if keep:
            p, state = new_p, new_state
        kernel_p, *kernel_state = run_elementwise(tmp_path, opt._fused_source(), g, factor, keep,
                                                  *opt._fused_numbers(), kernel_p, *kernel_state)
        np.testing.assert_allclose(kernel_p, p, rtol=1e-14, atol=1e-15)
        for got, want in zip(kernel_state, state.values()):
            np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("alpha", [0.1, 0.0, 0.3])
def test_fused_leaky_relu_kernels_match_the_formulas(tmp_path, alpha):
    from nn.layers import LeakyReLU
    B = backends.use("numpy", "fp64")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 9))
    x[0, :3] = [0.0, -0.0, 1e-300]                 # the kink and its neighbours
    dy = rng.standard_normal(x.shape)
    layer = LeakyReLU(alpha)
    assert B.elementwise(*layer._FORWARD, "f") is None          # NumPy: the formulas
    y = layer.forward(x)
    dx = layer.backward(dy)
    y_kernel, = run_elementwise(tmp_path, layer._FORWARD, x, alpha, np.zeros_like(x))
    dx_kernel, = run_elementwise(tmp_path, layer._BACKWARD, x, dy, alpha, np.zeros_like(x))
    np.testing.assert_array_equal(y_kernel, y)
    np.testing.assert_allclose(dx_kernel, dx, rtol=1e-15, atol=0)
