// A two-layer MLP (32x256 -> 512 -> 128, GELU, softmax) lowered to linalg by torch-mlir.
// Weights are stripped: dense_resource references without their blob section.
#map = affine_map<(d0, d1) -> (d0, d1)>
#map1 = affine_map<(d0, d1) -> (d1)>
#map2 = affine_map<(d0, d1) -> (d0)>
#map3 = affine_map<(d0, d1) -> (d0, 0)>
module {
  func.func @mlp(%arg0: tensor<32x256xf32>) -> tensor<32x128xf32> {
    %cst = arith.constant 0.000000e+00 : f32
    %cst_0 = arith.constant 1.000000e+00 : f32
    %cst_1 = arith.constant 5.000000e-01 : f32
    %c0_i64 = arith.constant 0 : i64
    %cst_2 = arith.constant 0xFF800000 : f32
    %cst_3 = arith.constant dense_resource<torch_tensor_128_torch.float32> : tensor<128xf32>
    %cst_4 = arith.constant dense_resource<torch_tensor_128_512_torch.float32> : tensor<128x512xf32>
    %cst_5 = arith.constant dense_resource<torch_tensor_512_torch.float32> : tensor<512xf32>
    %cst_6 = arith.constant dense_resource<torch_tensor_512_256_torch.float32> : tensor<512x256xf32>
    %cst_7 = arith.constant 1.41421354 : f32
    %0 = tensor.empty() : tensor<256x512xf32>
    %transposed = linalg.transpose ins(%cst_6 : tensor<512x256xf32>) outs(%0 : tensor<256x512xf32>) permutation = [1, 0] 
    %1 = tensor.empty() : tensor<32x512xf32>
    %2 = linalg.fill ins(%cst : f32) outs(%1 : tensor<32x512xf32>) -> tensor<32x512xf32>
    %3 = linalg.matmul ins(%arg0, %transposed : tensor<32x256xf32>, tensor<256x512xf32>) outs(%2 : tensor<32x512xf32>) -> tensor<32x512xf32>
    %4 = linalg.generic {indexing_maps = [#map, #map1, #map], iterator_types = ["parallel", "parallel"]} ins(%3, %cst_5 : tensor<32x512xf32>, tensor<512xf32>) outs(%1 : tensor<32x512xf32>) {
    ^bb0(%in: f32, %in_9: f32, %out: f32):
      %22 = arith.addf %in, %in_9 : f32
      linalg.yield %22 : f32
    } -> tensor<32x512xf32>
    %5 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%4 : tensor<32x512xf32>) outs(%1 : tensor<32x512xf32>) {
    ^bb0(%in: f32, %out: f32):
      %22 = arith.divf %in, %cst_7 : f32
      %23 = math.erf %22 : f32
      %24 = arith.addf %23, %cst_0 : f32
      %25 = arith.mulf %24, %cst_1 : f32
      %26 = arith.mulf %in, %25 : f32
      linalg.yield %26 : f32
    } -> tensor<32x512xf32>
    %6 = tensor.empty() : tensor<512x128xf32>
    %transposed_8 = linalg.transpose ins(%cst_4 : tensor<128x512xf32>) outs(%6 : tensor<512x128xf32>) permutation = [1, 0] 
    %7 = tensor.empty() : tensor<32x128xf32>
    %8 = linalg.fill ins(%cst : f32) outs(%7 : tensor<32x128xf32>) -> tensor<32x128xf32>
    %9 = linalg.matmul ins(%5, %transposed_8 : tensor<32x512xf32>, tensor<512x128xf32>) outs(%8 : tensor<32x128xf32>) -> tensor<32x128xf32>
    %10 = linalg.generic {indexing_maps = [#map, #map1, #map], iterator_types = ["parallel", "parallel"]} ins(%9, %cst_3 : tensor<32x128xf32>, tensor<128xf32>) outs(%7 : tensor<32x128xf32>) {
    ^bb0(%in: f32, %in_9: f32, %out: f32):
      %22 = arith.addf %in, %in_9 : f32
      linalg.yield %22 : f32
    } -> tensor<32x128xf32>
    %11 = tensor.empty() : tensor<32xi64>
    %12 = linalg.fill ins(%c0_i64 : i64) outs(%11 : tensor<32xi64>) -> tensor<32xi64>
    %13 = tensor.empty() : tensor<32xf32>
    %14 = linalg.fill ins(%cst_2 : f32) outs(%13 : tensor<32xf32>) -> tensor<32xf32>
    %15:2 = linalg.generic {indexing_maps = [#map, #map2, #map2], iterator_types = ["parallel", "reduction"]} ins(%10 : tensor<32x128xf32>) outs(%14, %12 : tensor<32xf32>, tensor<32xi64>) {
    ^bb0(%in: f32, %out: f32, %out_9: i64):
      %22 = linalg.index 1 : index
      %23 = arith.index_cast %22 : index to i64
      %24 = arith.maximumf %in, %out : f32
      %25 = arith.cmpf ogt, %in, %out : f32
      %26 = arith.select %25, %23, %out_9 : i64
      linalg.yield %24, %26 : f32, i64
    } -> (tensor<32xf32>, tensor<32xi64>)
    %expanded = tensor.expand_shape %15#0 [[0, 1]] output_shape [32, 1] : tensor<32xf32> into tensor<32x1xf32>
    %16 = linalg.generic {indexing_maps = [#map, #map3, #map], iterator_types = ["parallel", "parallel"]} ins(%10, %expanded : tensor<32x128xf32>, tensor<32x1xf32>) outs(%7 : tensor<32x128xf32>) {
    ^bb0(%in: f32, %in_9: f32, %out: f32):
      %22 = arith.subf %in, %in_9 : f32
      linalg.yield %22 : f32
    } -> tensor<32x128xf32>
    %17 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%16 : tensor<32x128xf32>) outs(%7 : tensor<32x128xf32>) {
    ^bb0(%in: f32, %out: f32):
      %22 = math.exp %in : f32
      linalg.yield %22 : f32
    } -> tensor<32x128xf32>
    %18 = tensor.empty() : tensor<32x1xf32>
    %19 = linalg.fill ins(%cst : f32) outs(%18 : tensor<32x1xf32>) -> tensor<32x1xf32>
    %20 = linalg.generic {indexing_maps = [#map, #map3], iterator_types = ["parallel", "reduction"]} ins(%17 : tensor<32x128xf32>) outs(%19 : tensor<32x1xf32>) {
    ^bb0(%in: f32, %out: f32):
      %22 = arith.addf %in, %out : f32
      linalg.yield %22 : f32
    } -> tensor<32x1xf32>
    %21 = linalg.generic {indexing_maps = [#map, #map3, #map], iterator_types = ["parallel", "parallel"]} ins(%17, %20 : tensor<32x128xf32>, tensor<32x1xf32>) outs(%7 : tensor<32x128xf32>) {
    ^bb0(%in: f32, %in_9: f32, %out: f32):
      %22 = arith.divf %in, %in_9 : f32
      linalg.yield %22 : f32
    } -> tensor<32x128xf32>
    return %21 : tensor<32x128xf32>
  }
}

