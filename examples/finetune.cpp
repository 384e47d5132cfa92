// Fine-tuning with OneFlow variable directories (specs/oneflow-vardir.md §7, §9):
//   1. trains the MLP 784-512-10 (layers dense1, dense2; OneFlow names dense1-weight, ...) on
//      Fashion-MNIST and saves it to OUT/base (a variable directory);
//   2. reloads it into a fresh, un-extended network and checks the bytes and the accuracy are identical;
//   3. builds the same network extended with dense3 (10->10), loads OUT/base (dense3 is initialized, with
//      OneFlow's warning line for its weight and bias), checks dense1/dense2 equal the saved bytes,
//      trains on and saves to OUT/finetuned.
//
//   finetune [--out DIR] [--epochs 1] [--limit N] [--test-limit N] [--hidden 512] [--lr 0.1] [--seed S] [--data-dir DIR]
//
// Variables live in a VariableStore (get_variable with OneFlow initializers); each Dense parameter is
// made to view its variable's storage, so the optimizer trains the variables in place.
// Exit status: 0 success, 1 a check failed or an error occurred.
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "examples/Flags.h"
#include "framework/data/DataLoader.h"
#include "framework/data/MnistDataset.h"
#include "framework/metrics/Accuracy.h"
#include "framework/nn/VariableStore.h"
#include "framework/nn/layers/Dense.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/ops/Activation.h"
#include "framework/ops/ShapeOps.h"
#include "framework/optim/SGD.h"
#include "framework/train/Model.h"
#include "serialization/oneflow/CheckPoint.h"

namespace {

using namespace anvil;
namespace of = anvil::nn::oneflow;

struct Args {
  std::string out = "finetune_out";
  int epochs = 1;
  std::int64_t limit = 0, test_limit = 0, hidden = 512;
  double lr = 0.1;
  std::uint64_t seed = 1;
  std::string data_dir;
};

// dense1 -> relu -> dense2 [-> relu -> dense3], parameters bound to VariableStore variables.
class FinetuneNet : public nn::Cell {
 public:
  FinetuneNet(of::VariableStore& store, std::int64_t hidden, bool extended) {
    d1_ = bind(store, "dense1", 784, hidden);
    d2_ = bind(store, "dense2", hidden, 10);
    if (extended) d3_ = bind(store, "dense3", 10, 10);
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = ops::relu(d1_->forward(x.rank() == 2 ? x : ops::flatten(x)));
    h = d2_->forward(h);
    return d3_ ? d3_->forward(ops::relu(h)) : h;
  }
  std::string type_name() const override { return "FinetuneNet"; }

 private:
  std::shared_ptr<nn::Dense> bind(of::VariableStore& store, const std::string& name, std::int64_t in, std::int64_t out) {
    auto d = register_cell(name, std::make_shared<nn::Dense>(in, out));
    of::VariableArgs w;
    w.shape = Shape({out, in});
    w.initializer = of::kaiming_initializer("random_uniform", "fan_in", "relu");
    w.reuse = false;
    of::VariableArgs b;
    b.shape = Shape({out});
    b.initializer = of::zeros_initializer();
    b.reuse = false;
    d->weight().set_data(store.get_variable(name + "-weight", w));
    d->bias().set_data(store.get_variable(name + "-bias", b));
    return d;
  }
  std::shared_ptr<nn::Dense> d1_, d2_, d3_;
};

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  examples::Flags flags(argv[0]);
  flags.add("--out", a.out);
  flags.add("--epochs", a.epochs);
  flags.add("--limit", a.limit);
  flags.add("--test-limit", a.test_limit);
  flags.add("--hidden", a.hidden);
  flags.add("--lr", a.lr);
  flags.add("--seed", a.seed);
  flags.add("--data-dir", a.data_dir);
  flags.parse(argc, argv);
  try {
    auto train_set = load_fashion_mnist(
        MnistOptions{.dir = a.data_dir, .split = "train", .mean = 0.0, .std = 1.0, .limit = a.limit});
    auto test_set = load_fashion_mnist(
        MnistOptions{.dir = a.data_dir, .split = "test", .mean = 0.0, .std = 1.0, .limit = a.test_limit});
    DataLoader train_loader(train_set, DataLoaderOptions{.batch_size = 100, .shuffle = true, .seed = a.seed});
    DataLoader test_loader(test_set, DataLoaderOptions{.batch_size = 1000, .shuffle = false});
    auto loss = std::make_shared<nn::SoftmaxCrossEntropyWithLogits>();
    std::filesystem::create_directories(a.out);
    const std::string base = a.out + "/base", tuned = a.out + "/finetuned";
    std::filesystem::remove_all(base);
    std::filesystem::remove_all(tuned);

    // 1. train and save
    of::VariableStore store1(a.seed);
    auto net1 = std::make_shared<FinetuneNet>(store1, a.hidden, false);
    Model m1(net1, loss, std::make_shared<SGD>(net1->trainable_params(), a.lr), {std::make_shared<Accuracy>()});
    m1.fit(a.epochs, train_loader, test_loader, {}, 1);
    const double acc1 = m1.eval(test_loader).at("accuracy");
    oneflow::CheckPoint(store1).save(base);
    std::cout << "trained dense1/dense2: accuracy " << acc1 << ", saved to " << base << "\n";

    // 2. reload into an un-extended network: identical bytes and accuracy
    of::VariableStore store2(a.seed + 100);
    auto net2 = std::make_shared<FinetuneNet>(store2, a.hidden, false);
    oneflow::CheckPoint(store2).load(base);
    for (auto* v : store1.variables())
      if (!same_bytes(v->tensor, store2.find(v->name)->tensor)) throw Error("reloaded bytes differ for " + v->name);
    Model m2(net2, loss, nullptr, {std::make_shared<Accuracy>()});
    const double acc2 = m2.eval(test_loader).at("accuracy");
    std::cout << "reloaded: accuracy " << acc2 << "\n";
    if (acc2 != acc1) throw Error("reloaded accuracy differs from the accuracy before saving");

    // 3. extended network: dense3 initialized with the warning lines, then fine-tuned
    of::VariableStore store3(a.seed + 200);
    auto net3 = std::make_shared<FinetuneNet>(store3, a.hidden, true);
    auto rep = oneflow::CheckPoint(store3).load(base);
    if (rep.initialized != std::vector<std::string>{"dense3-weight", "dense3-bias"})
      throw Error("expected dense3-weight and dense3-bias to be initialized");
    for (auto* v : store1.variables())
      if (!same_bytes(v->tensor, store3.find(v->name)->tensor)) throw Error("loaded bytes differ for " + v->name);
    Model m3(net3, loss, std::make_shared<SGD>(net3->trainable_params(), a.lr), {std::make_shared<Accuracy>()});
    const double acc3_before = m3.eval(test_loader).at("accuracy");
    m3.fit(a.epochs, train_loader, test_loader, {}, 1);
    const double acc3 = m3.eval(test_loader).at("accuracy");
    oneflow::CheckPoint(store3).save(tuned);
    std::cout << "extended with dense3: accuracy " << acc3_before << " after load, " << acc3
              << " after fine-tuning, saved to " << tuned << "\n";
  } catch (const std::exception& e) {
    std::cerr << "finetune: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
