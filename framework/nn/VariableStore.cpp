// VariableStore: see VariableStore.h and specs/oneflow-vardir.md §9.
#include "framework/nn/VariableStore.h"

namespace anvil::nn::oneflow {

VariableStore::VariableStore(std::uint64_t seed) : seeds_(seed) {}

void VariableStore::set_default_initializer(const std::string& job, InitializerPtr init) {
  default_init_[job] = std::move(init);
}

void VariableStore::push_name_scope(const std::string& scope) {
  ANVIL_CHECK(!scope.empty(), "name scope must be non-empty");
  scopes_.push_back(scope);
}
void VariableStore::pop_name_scope() {
  ANVIL_CHECK(!scopes_.empty(), "no active name scope to pop");
  scopes_.pop_back();
}
std::string VariableStore::scope_prefix() const {
  std::string p;
  for (auto& s : scopes_) p += fmt::format("{}-", s);
  return p;
}

const Variable* VariableStore::find(const std::string& name, const std::string& job) const {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return nullptr;
  for (auto& v : it->second)
    if (v->name == name) return v.get();
  return nullptr;
}

std::vector<const Variable*> VariableStore::variables(const std::string& job) const {
  std::vector<const Variable*> out;
  auto it = jobs_.find(job);
  if (it != jobs_.end())
    for (auto& v : it->second) out.push_back(v.get());
  return out;
}

NamedTensors VariableStore::named_tensors(const std::string& job) const {
  NamedTensors out;
  for (auto* v : variables(job)) out.emplace_back(v->name, v->tensor);
  return out;
}

void VariableStore::initialize(const std::string& name, const std::string& job) {
  const Variable* v = find(name, job);
  ANVIL_CHECK(v, "no variable \"{}\" in job \"{}\"", name, job);
  ANVIL_CHECK(v->initializer, "ERROR! variable must has initializer when load failed. (variable \"{}\")", name);
  Generator g(v->seed);
  Tensor t = v->tensor;
  v->initializer->fill(t, g);
}

Tensor VariableStore::get_variable(const std::string& name, const VariableArgs& args, const std::string& job) {
  ANVIL_CHECK(!name.empty(), "get_variable: the name must be non-empty");
  const std::string full = scope_prefix() + name;
  if (const Variable* v = find(full, job)) {
    ANVIL_CHECK(args.reuse, "variable '{}' already exists, getting the same variable is not allowed when param reuse is False",
                full);
    ANVIL_CHECK(!args.shape || *args.shape == v->tensor.shape(), "get_variable \"{}\": shape {} conflicts with the existing {}",
                full, args.shape->str(), v->tensor.shape().str());
    ANVIL_CHECK(!args.dtype || *args.dtype == v->dtype, "get_variable \"{}\": dtype {} conflicts with the existing {}", full,
                dtype_name(*args.dtype), dtype_name(v->dtype));
    return v->tensor;
  }
  InitializerPtr init = args.initializer;
  if (!init) {
    auto d = default_init_.find(job);
    if (d != default_init_.end()) init = d->second;
  }
  ANVIL_CHECK(init, "get_variable \"{}\": no initializer given and job \"{}\" has no default initializer", full, job);
  ANVIL_CHECK(args.shape.has_value(), "get_variable \"{}\": a shape is required to create the variable", full);
  const DType dtype = args.dtype.value_or(DType::kF32);

  // Same name in another job: share storage after a configuration check.
  const Variable* shared = nullptr;
  for (auto& [other_job, vars] : jobs_) {
    if (other_job == job) continue;
    for (auto& v : vars)
      if (v->name == full) shared = v.get();
    if (shared) break;
  }
  auto var = std::make_unique<Variable>();
  var->name = full;
  var->job = job;
  var->dtype = dtype;
  var->initializer = init;
  var->trainable = args.trainable;
  var->model_name = args.model_name;
  if (shared) {
    auto differs = [&](bool bad, const char* what) {
      ANVIL_CHECK(!bad, "get_variable \"{}\" in job \"{}\": {} differs from the variable shared with job \"{}\"", full, job,
                  what, shared->job);
    };
    differs(*args.shape != shared->tensor.shape(), "shape");
    differs(dtype != shared->dtype, "dtype");
    differs(init->name() != shared->initializer->name(), "initializer");
    differs(args.trainable != shared->trainable, "trainable");
    differs(args.model_name != shared->model_name, "model_name");
    differs(args.random_seed && shared->seed_given && *args.random_seed != shared->seed, "random_seed");
    var->seed = shared->seed;
    var->seed_given = shared->seed_given;
    var->tensor = shared->tensor.detach();
    if (args.trainable) var->tensor.set_requires_grad(true);
  } else {
    var->seed_given = args.random_seed.has_value();
    var->seed = args.random_seed ? *args.random_seed : seeds_.next_u64();
    Tensor t = Tensor::empty(*args.shape, dtype);
    Generator g(var->seed);
    init->fill(t, g);
    if (args.trainable && is_floating(dtype)) t.set_requires_grad(true);
    var->tensor = t;
  }
  Tensor out = var->tensor;
  jobs_[job].push_back(std::move(var));
  return out;
}

}  // namespace anvil::nn::oneflow
