"""Small linalg-on-tensors modules for the partitioner and composed-model tests.

``module(body, n)`` wraps op lines in a ``@main`` of two n x n f32 arguments with a
zero ``%cst``, a constant weight ``%w``, an empty ``%e`` and its zero fill ``%f``;
the body defines ``%out``. ``relu`` and ``matmul`` write one op's lines.
"""

HEAD = """#map = affine_map<(d0, d1) -> (d0, d1)>
#map1 = affine_map<(d0, d1) -> (d1, d0)>
"""


def relu(src: str, n: int, out: str) -> str:
    return f"""    {out} = linalg.generic {{indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]}} ins({src} : tensor<{n}x{n}xf32>) outs(%e : tensor<{n}x{n}xf32>) {{
    ^bb0(%in: f32, %o: f32):
      %r = arith.maximumf %in, %cst : f32
      linalg.yield %r : f32
    }} -> tensor<{n}x{n}xf32>
"""


def matmul(a: str, b: str, n: int, out: str) -> str:
    return (
        f"    {out} = linalg.matmul ins({a}, {b} : tensor<{n}x{n}xf32>, tensor<{n}x{n}xf32>) "
        f"outs(%f : tensor<{n}x{n}xf32>) -> tensor<{n}x{n}xf32>\n"
    )


def module(body: str, n: int = 16) -> str:
    return (
        HEAD
        + f"""func.func @main(%arg0: tensor<{n}x{n}xf32>, %arg1: tensor<{n}x{n}xf32>) -> tensor<{n}x{n}xf32> {{
    %cst = arith.constant 0.000000e+00 : f32
    %w = arith.constant dense_resource<w> : tensor<{n}x{n}xf32>
    %e = tensor.empty() : tensor<{n}x{n}xf32>
    %f = linalg.fill ins(%cst : f32) outs(%e : tensor<{n}x{n}xf32>) -> tensor<{n}x{n}xf32>
"""
        + body
        + f"    return %out : tensor<{n}x{n}xf32>\n}}\n"
    )
