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
from nn.backends.cupy_backend import _SOURCES, geometry_3d

CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="needs a C++ compiler (g++) on the host")

CTYPES = {np.dtype(np.float64): "double", np.dtype(np.int32): "int"}


def run_kernel(tmp_path, name, inputs, scalars, out_shape):
    """Run kernel ``name`` on the host: ``inputs`` fill its ``raw`` arrays, ``scalars`` the rest."""
    params, outputs, body = _SOURCES[name]
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
            lines.append(f"long long {param[1]} = {next(values)};")
    outs = [(("double" if kind == "T" else "int"), name_) for kind, name_ in
            (o.split() for o in outputs.split(","))]
    size = int(np.prod(out_shape))
    lines += [f"{ctype}* out_{o} = ({ctype}*) malloc({size} * sizeof({ctype}));" for ctype, o in outs]
    lines.append(f"for (long long i = 0; i < {size}; ++i) {{")
    lines += [f"{ctype} {o};" for ctype, o in outs]
    lines.append(body.replace("ACC", "double"))
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
def test_im2col_and_col2im_kernels_match_numpy(tmp_path, shape, kernel, stride, padding, dilation):
    B = backends.use("numpy", "fp64")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    out = geometry.output_shape(shape[2:], kernel, stride, padding, dilation)
    k, s, p, d, o = geometry_3d(kernel, stride, padding, dilation, out)
    scalars = [*shape[:2], *geometry.shape_3d(shape)[2:], *k, *o, *s, *p, *d]
    cols = B.im2col(x, kernel, stride, padding, dilation)
    got, = run_kernel(tmp_path, "im2col", [x], scalars, cols.shape)
    np.testing.assert_array_equal(got, cols)
    c = rng.standard_normal(cols.shape)
    got, = run_kernel(tmp_path, "col2im", [c], scalars, shape)
    np.testing.assert_allclose(got, B.col2im(c, shape, kernel, stride, padding, dilation),
                               rtol=1e-12, atol=1e-12)


POOL_CASES = {
    "1d-overlapping": ((2, 3, 11), (3,), (2,)),
    "2d-nonsquare-overlapping": ((2, 2, 7, 6), (3, 2), (2, 1)),
    "3d": ((1, 2, 5, 6, 7), (2, 3, 2), (1, 2, 2)),
    "2d-side-by-side": ((2, 2, 8, 8), (2, 2), (2, 2)),
}


@pytest.mark.parametrize("shape, kernel, stride", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_maxpool_kernels_match_numpy(tmp_path, shape, kernel, stride):
    B = backends.use("numpy", "fp64")
    rng = np.random.default_rng(1)
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)   # no ties
    y, argmax = B.maxpool(x, kernel, stride)
    scalars = [*shape[:2], *geometry.shape_3d(shape)[2:], *geometry.as_3d(kernel),
               *geometry.as_3d(y.shape[2:]), *geometry.as_3d(stride)]
    got_y, got_argmax = run_kernel(tmp_path, "maxpool", [x], scalars, y.shape)
    np.testing.assert_array_equal(got_y, y)
    np.testing.assert_array_equal(got_argmax, argmax)
    dy = rng.standard_normal(y.shape)
    got, = run_kernel(tmp_path, "maxpool_backward", [dy, argmax.astype(np.int32)], scalars, shape)
    np.testing.assert_allclose(got, B.maxpool_backward(dy, argmax, shape, kernel, stride),
                               rtol=1e-12, atol=1e-12)
