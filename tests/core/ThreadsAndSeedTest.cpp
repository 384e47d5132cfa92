// set_num_threads / get_num_threads, and set_seed reaching every generator that was not given its own.
#include <gtest/gtest.h>

#include <omp.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "framework/core/Error.h"
#include "framework/core/Random.h"
#include "framework/core/Threads.h"
#include "framework/data/DataLoader.h"
#include "framework/data/InMemoryDataset.h"
#include "framework/data/Transforms.h"
#include "framework/nn/Cell.h"
#include "framework/nn/layers/Dropout.h"
#include "models/LeNet5.h"

using namespace anvil;

TEST(Threads, SetNumThreadsChangesOmpMaxThreads) {
  const int before = get_num_threads();
  EXPECT_EQ(before, omp_get_max_threads());
  set_num_threads(3);
  EXPECT_EQ(omp_get_max_threads(), 3);
  EXPECT_EQ(get_num_threads(), 3);
  set_num_threads(1);
  EXPECT_EQ(omp_get_max_threads(), 1);
  try {
    set_num_threads(0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("got 0"), std::string::npos) << e.what();
  }
  EXPECT_EQ(get_num_threads(), 1);  // unchanged by the failed call
  set_num_threads(before);
  EXPECT_EQ(get_num_threads(), before);
}

namespace {

// Everything random that set_seed reaches: LeNet-5 initialization, a Dropout mask and the first batch
// of a shuffled, augmented DataLoader, all built without explicit seeds or generators.
std::vector<float> random_things(std::uint64_t seed) {
  set_seed(seed);
  models::LeNet5 net;
  nn::Dropout dropout(0.5);
  std::vector<float> out;
  for (const auto& [name, t] : net.parameters_and_names()) {
    const auto v = t.to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  const auto mask = dropout.forward(Tensor::ones(Shape{64})).to_vector<float>();
  out.insert(out.end(), mask.begin(), mask.end());
  std::vector<float> data(32 * 16);
  std::vector<std::int32_t> labels(32);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i);
  auto ds = std::make_shared<InMemoryDataset>(Tensor::from_vector(data, Shape{32, 1, 4, 4}),
                                              Tensor::from_vector(labels, Shape{32}));
  DataLoader loader(ds, {.batch_size = 8, .transform = std::make_shared<RandomHorizontalFlip>(0.5)});
  const auto b = loader.next();
  const auto d = b->data.to_vector<float>();
  out.insert(out.end(), d.begin(), d.end());
  return out;
}

}  // namespace

TEST(SetSeed, SameSeedIdenticalDifferentSeedDiffers) {
  const auto a = random_things(5);
  const auto b = random_things(5);
  const auto c = random_things(6);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), c.size());
  EXPECT_NE(a, c);
  EXPECT_EQ(global_seed(), 6u);
  set_seed(0);
  EXPECT_EQ(global_seed(), 0u);
}
