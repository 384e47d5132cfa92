// Uses an installed Anvil (find_package(Anvil) -> Anvil::anvil): builds a Dense layer and LeNet-5,
// runs one forward pass through each and prints the output shapes:
//   dense [2,3]
//   lenet5 [2,10]
// Exit code 0 on success, 1 (with the message on stderr) when Anvil throws.
// models/LeNet5.h comes first on purpose: it must compile with nothing included before it.
#include "models/LeNet5.h"

#include <cstdio>
#include <exception>

#include "framework/core/Random.h"
#include "framework/nn/layers/Dense.h"

int main() {
  try {
    anvil::Generator gen(42);
    anvil::nn::Dense dense(4, 3, anvil::nn::DenseOptions{.generator = &gen});
    anvil::Tensor x = anvil::Tensor::ones({2, 4});  // [N, I]
    anvil::Tensor y = dense(x);                      // [N, O]
    std::printf("dense %s\n", y.shape().str().c_str());

    anvil::models::LeNet5 lenet(10, 1, &gen);
    anvil::Tensor images = anvil::Tensor::full({2, 1, 32, 32}, 0.5);  // [N, C, H, W]
    anvil::Tensor logits = lenet(images);                             // [N, 10]
    std::printf("lenet5 %s\n", logits.shape().str().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "anvil_consumer: %s\n", e.what());
    return 1;
  }
}
