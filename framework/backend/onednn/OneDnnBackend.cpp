#include "framework/backend/onednn/OneDnnBackend.h"

#include "framework/backend/ComputePrecision.h"
#include "framework/backend/onednn/BatchNormKernels.h"
#include "framework/backend/onednn/BufferCache.h"
#include "framework/backend/onednn/Parallel.h"
#include "framework/backend/onednn/Pool2x2Kernels.h"
#include "framework/backend/onednn/SingleChannelConv.h"
#include "framework/core/Log.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

namespace anvil {
namespace {

using dims = dnnl::memory::dims;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using md = dnnl::memory::desc;

// ---------------------------------------------------------------------------------------------
// Cache key: the op and every integer that determines its primitives, stored inline so that a
// lookup on the hot path allocates nothing.
// ---------------------------------------------------------------------------------------------
enum class Op : std::int64_t {
  kMatmul = 1,
  kConvFwd,
  kConvBwdData,
  kConvBwdWeights,
  kPoolFwd,
  kPoolBwd,
  kEltwiseFwd,
  kEltwiseBwd,
  kBinary,
  kReduce,
  kSoftmaxFwd,
  kSoftmaxBwd,
  kLayerNormFwd,
  kLayerNormBwd,
};

class Key {
 public:
  explicit Key(Op op) { push(static_cast<std::int64_t>(op)); }
  Key& push(std::int64_t x) {
    ANVIL_CHECK(n_ < kCapacity, "oneDNN cache key longer than {} values", kCapacity);
    v_[n_++] = x;
    return *this;
  }
  Key& push(const dims& d) {
    push(static_cast<std::int64_t>(d.size()));
    for (auto x : d) push(x);
    return *this;
  }
  Key& push_float(double x) {
    const float f = static_cast<float>(x);
    std::uint32_t u = 0;
    std::memcpy(&u, &f, sizeof u);
    return push(static_cast<std::int64_t>(u));
  }
  bool operator==(const Key& o) const {
    return n_ == o.n_ && std::equal(v_.begin(), v_.begin() + n_, o.v_.begin());
  }
  std::size_t hash() const {
    std::uint64_t h = 0x9e3779b97f4a7c15ull ^ n_;
    for (std::size_t i = 0; i < n_; ++i) {
      h ^= static_cast<std::uint64_t>(v_[i]) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    }
    return static_cast<std::size_t>(h);
  }

 private:
  static constexpr std::size_t kCapacity = 48;
  std::array<std::int64_t, kCapacity> v_{};
  std::size_t n_ = 0;
};

struct KeyHash {
  std::size_t operator()(const Key& k) const { return k.hash(); }
};

// A cached op: its primitives, memory objects and reorder buffers. Executes under `mu`: the memory
// objects get new data handles on every call and the reorder buffers are reused.
struct Entry {
  virtual ~Entry() = default;
  std::mutex mu;
};

// ---------------------------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------------------------
dims to_dims(const Shape& s) { return dims(s.dims().begin(), s.dims().end()); }

tag plain_tag(std::size_t rank) {
  switch (rank) {
    case 1: return tag::a;
    case 2: return tag::ab;
    case 3: return tag::abc;
    case 4: return tag::abcd;
    case 5: return tag::abcde;
    case 6: return tag::abcdef;
    default: break;
  }
  ANVIL_THROW("no plain oneDNN layout for rank {}", rank);
}

md plain_md(const dims& d) { return md(d, dt::f32, plain_tag(d.size())); }

// True when every defined tensor is a non-empty float32 host tensor (the oneDNN path); anything else
// goes to the reference backend, which also gives the errors for tensors in GPU memory.
bool all_f32(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t->defined() && (t->dtype() != DType::kF32 || t->numel() == 0 || !t->device().is_cpu())) return false;
  return true;
}

void* ptr(const Tensor& t) {
  ANVIL_CHECK(t.device().is_cpu(), "tensor {} is on {}; the oneDNN backend computes on host memory only", t.desc(),
              t.device().str());
  return t.data_ptr();
}

// Mixed precision (ComputePrecision.h): conv / matmul / linear use bf16 operands, f32 accumulation
// and f32 outputs when this thread asks for bf16.
bool use_bf16() { return current_compute_precision() == ComputePrecision::kBF16; }

// Whether oneDNN builds bf16 convolutions and matmuls on this CPU (AVX-512 BF16 / AMX, or oneDNN's
// avx512_core emulation); probed once with tiny primitive descriptors.
bool onednn_has_bf16() {
  static const bool ok = [] {
    try {
      const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
      using CF = dnnl::convolution_forward;
      const md src({1, 1, 4, 4}, dt::bf16, tag::any), wei({1, 1, 3, 3}, dt::bf16, tag::any),
          dst({1, 1, 2, 2}, dt::f32, tag::any);
      CF::primitive_desc conv(CF::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src,
                                       wei, dst, {1, 1}, {0, 0}, {0, 0}),
                              eng);
      const md a({2, 2}, dt::bf16, tag::ab), b({2, 2}, dt::bf16, tag::ab), c({2, 2}, dt::f32, tag::ab);
      dnnl::matmul::primitive_desc mm(dnnl::matmul::desc(a, b, c), eng);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return ok;
}

// True when this thread asks for bf16 but oneDNN cannot provide it here: the compute-heavy ops then run
// the reference backend's bf16 emulation (same rounding, slower), with one warning per process.
bool bf16_fallback() {
  if (!use_bf16() || onednn_has_bf16()) return false;
  static std::once_flag warned;
  std::call_once(warned, [] {
    log(LogLevel::kWarning,
        "oneDNN has no bfloat16 convolution/matmul on this CPU; mixed precision (O2/O3) runs the reference "
        "backend's bfloat16 emulation for them (correct, slower)");
  });
  return true;
}

// A float32 copy of `t` rounded to bf16 (for the hand-written float kernels under bf16).
Tensor bf16_rounded(const Tensor& t) {
  Tensor r = t.clone();
  round_to_bf16_inplace(r.data<float>(), r.numel());
  return r;
}

std::string shapes(std::initializer_list<std::pair<const char*, const Tensor*>> ts) {
  std::string s;
  for (const auto& [name, t] : ts) {
    if (!s.empty()) s += ", ";
    s += fmt::format("{} {}", name, t->desc());
  }
  return s;
}

// The single boundary where oneDNN errors become anvil::Error: `describe` formats the operands only
// when something failed.
template <typename F, typename D>
decltype(auto) guarded(const char* op, F&& f, D&& describe) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    throw Error(fmt::format("OneDnnBackend::{}: oneDNN failed ({}, status {}) for {}", op, e.what(),
                            static_cast<int>(e.status), describe()));
  }
}

void check_status(dnnl_status_t st, const char* what) {
  if (st != dnnl_success) throw dnnl::error(st, what);
}

}  // namespace

namespace onednn_detail {

// What one calling thread owns: a stream (streams are not thread-safe) and the scratchpad its
// primitives run with. Primitives use user-managed scratchpads: oneDNN's default keeps a
// thread-local scratchpad sized when a primitive is *created*, so executing a primitive on another
// thread than the one that built it reads past that thread's buffer (it crashed; see the
// concurrency test). Only its own thread touches a ThreadState after creation.
struct ThreadState {
  dnnl::stream stream;
  std::unique_ptr<char, void (*)(void*)> scratch{nullptr, std::free};
  std::size_t capacity = 0;

  void* scratchpad(std::size_t bytes) {
    if (bytes > capacity) {
      const std::size_t rounded = (bytes + 4095) / 4096 * 4096;
      scratch.reset(static_cast<char*>(std::aligned_alloc(64, rounded)));
      ANVIL_CHECK(scratch != nullptr, "out of host memory allocating a {}-byte oneDNN scratchpad", rounded);
      capacity = rounded;
    }
    return scratch.get();
  }
};

// A built primitive and, when it needs one, a memory object for its scratchpad (bound per call to
// the calling thread's buffer).
struct Prim {
  dnnl::primitive p;
  dnnl::memory scratch;
  std::size_t scratch_bytes = 0;
};

}  // namespace onednn_detail

namespace {

using onednn_detail::Prim;
using onednn_detail::ThreadState;

void execute(ThreadState* ts, const Prim& p, std::initializer_list<dnnl_exec_arg_t> args) {
  dnnl_exec_arg_t all[16];
  int n = 0;
  for (const dnnl_exec_arg_t& a : args) all[n++] = a;
  if (p.scratch_bytes) {
    p.scratch.set_data_handle(ts->scratchpad(p.scratch_bytes));
    all[n++] = {DNNL_ARG_SCRATCHPAD, p.scratch.get()};
  }
  check_status(dnnl_primitive_execute(p.p.get(), ts->stream.get(), n, all), "could not execute a primitive");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Impl: engine, per-thread streams, the primitive cache.
// ---------------------------------------------------------------------------------------------
namespace onednn_detail {

// Activation layout a convolution primitive computes in (user tensors are always NCHW; anything
// else is reached through cached reorders). kAuto picks per primitive, see choose_layout().
enum class ConvLayout { kAuto, kPlain, kBlocked, kNhwc };

struct Context {
  dnnl::engine eng;
  std::mutex mu;  // guards cache and streams
  std::unordered_map<Key, std::unique_ptr<Entry>, KeyHash> cache;
  std::atomic<std::size_t> created{0};
  dnnl::primitive_attr attr;  // every primitive: user-managed scratchpad (see ThreadState)
  // Per calling thread; the first (usually only) thread on a fast path.
  std::thread::id main_tid;
  std::unique_ptr<ThreadState> main_thread;
  std::unordered_map<std::thread::id, std::unique_ptr<ThreadState>> other_threads;
  ConvLayout conv_layout = ConvLayout::kAuto;
  // Recycled output buffers (see BufferCache.h); 1 GiB bounds what idle free lists may hold.
  std::shared_ptr<BufferCache> buffers = std::make_shared<BufferCache>(std::size_t{1} << 30);

  Context() : eng(dnnl::engine::kind::cpu, 0) {
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    // Benchmarking knob: ANVIL_ONEDNN_CONV_LAYOUT=plain|blocked|nhwc forces one layout for every
    // convolution (default: auto).
    if (const char* env = std::getenv("ANVIL_ONEDNN_CONV_LAYOUT")) {
      if (std::strcmp(env, "plain") == 0) conv_layout = ConvLayout::kPlain;
      if (std::strcmp(env, "blocked") == 0) conv_layout = ConvLayout::kBlocked;
      if (std::strcmp(env, "nhwc") == 0) conv_layout = ConvLayout::kNhwc;
    }
  }

  ThreadState* thread_locked() {
    const auto tid = std::this_thread::get_id();
    if (main_thread && tid == main_tid) return main_thread.get();
    auto fresh = [&] {
      auto ts = std::make_unique<ThreadState>();
      ts->stream = dnnl::stream(eng);
      return ts;
    };
    if (!main_thread) {
      main_tid = tid;
      main_thread = fresh();
      return main_thread.get();
    }
    auto it = other_threads.find(tid);
    if (it == other_threads.end()) it = other_threads.emplace(tid, fresh()).first;
    return it->second.get();
  }

  // Returns the entry for `key` (building it with `build()` on a miss) and this thread's state.
  template <typename E, typename Build>
  std::pair<E*, ThreadState*> acquire(const Key& key, Build&& build) {
    std::lock_guard<std::mutex> lock(mu);
    ThreadState* s = thread_locked();
    auto it = cache.find(key);
    if (it == cache.end()) {
      std::unique_ptr<E> e = build();
      it = cache.emplace(key, std::move(e)).first;
    }
    return {static_cast<E*>(it->second.get()), s};
  }

  template <typename P, typename PD>
  Prim make(const PD& pd) {
    Prim p{P(pd), {}, 0};
    created.fetch_add(1, std::memory_order_relaxed);
    const md scratch = pd.scratchpad_desc();
    p.scratch_bytes = scratch.get_size();
    if (p.scratch_bytes) p.scratch = unbound(scratch);
    return p;
  }

  // A memory object without a buffer; the op sets the data handle on every call.
  dnnl::memory unbound(const md& d) { return dnnl::memory(d, eng, nullptr); }
};

}  // namespace onednn_detail

struct OneDnnBackend::Impl : onednn_detail::Context {};

namespace {

using Impl = onednn_detail::Context;
using onednn_detail::ConvLayout;

// An operand of a primitive whose user layout (plain) may differ from the layout the primitive
// chose; then a cached reorder converts between `user` and the owned buffer `prim`.
struct Port {
  dnnl::memory user;
  dnnl::memory prim;
  Prim reorder;
  bool reordered = false;
  bool input = true;

  void init(Impl& im, const md& user_md, const md& prim_md, bool is_input) {
    input = is_input;
    user = im.unbound(user_md);
    if (user_md == prim_md) {
      prim = user;
      return;
    }
    reordered = true;
    prim = dnnl::memory(prim_md, im.eng);
    reorder = is_input ? im.make<dnnl::reorder>(dnnl::reorder::primitive_desc(user, prim, im.attr))
                       : im.make<dnnl::reorder>(dnnl::reorder::primitive_desc(prim, user, im.attr));
  }
  // Binds the user buffer, runs the input reorder, and returns what the primitive reads/writes.
  dnnl_memory_t bind(ThreadState* s, const void* p) {
    user.set_data_handle(const_cast<void*>(p));
    if (reordered && input) execute(s, reorder, {{DNNL_ARG_FROM, user.get()}, {DNNL_ARG_TO, prim.get()}});
    return prim.get();
  }
  void finish(ThreadState* s) {
    if (reordered && !input) execute(s, reorder, {{DNNL_ARG_FROM, prim.get()}, {DNNL_ARG_TO, user.get()}});
  }
};

void wait(ThreadState* s) { check_status(dnnl_stream_wait(s->stream.get()), "could not wait on a stream"); }

// ---------------------------------------------------------------------------------------------
// Matmul: c [B, M, N] = op(a) [B, M, K] · op(b) [B, K, N] (+ bias [N]); B == 1 uses 2-D descriptors.
// ---------------------------------------------------------------------------------------------
struct MatmulEntry : Entry {
  Prim prim;
  dnnl::memory a, b, bias, c;
  bool bf16 = false;
  Port pa, pb;  // bf16: f32 user operands reordered into bf16 buffers
};

void run_matmul(Impl& im, std::int64_t batch, std::int64_t m, std::int64_t k, std::int64_t n, bool ta, bool tb,
                const void* a, const void* b, const void* bias, void* c) {
  const bool bf16 = use_bf16();
  Key key(Op::kMatmul);
  key.push(batch).push(m).push(k).push(n).push(ta).push(tb).push(bias != nullptr).push(bf16);
  auto [e, s] = im.acquire<MatmulEntry>(key, [&] {
    auto en = std::make_unique<MatmulEntry>();
    md a_md, b_md, c_md, bias_md;
    dims ad, as, bd, bs;  // dims and strides of a and b
    if (batch == 1) {
      ad = {m, k};
      as = ta ? dims{1, m} : dims{k, 1};
      bd = {k, n};
      bs = tb ? dims{1, k} : dims{n, 1};
      c_md = md({m, n}, dt::f32, dims{n, 1});
      bias_md = md({1, n}, dt::f32, dims{n, 1});
    } else {
      ad = {batch, m, k};
      as = ta ? dims{m * k, 1, m} : dims{m * k, k, 1};
      bd = {batch, k, n};
      bs = tb ? dims{k * n, 1, k} : dims{k * n, n, 1};
      c_md = md({batch, m, n}, dt::f32, dims{m * n, n, 1});
      bias_md = md({1, 1, n}, dt::f32, dims{n, n, 1});
    }
    a_md = md(ad, dt::f32, as);
    b_md = md(bd, dt::f32, bs);
    en->bf16 = bf16;
    if (bf16) {
      // Same strides, bf16 elements: the ports reorder (convert) the f32 operands on every call.
      const md a16(ad, dt::bf16, as), b16(bd, dt::bf16, bs);
      en->pa.init(im, a_md, a16, true);
      en->pb.init(im, b_md, b16, true);
      a_md = a16;
      b_md = b16;
    }
    const auto d = bias ? dnnl::matmul::desc(a_md, b_md, bias_md, c_md) : dnnl::matmul::desc(a_md, b_md, c_md);
    en->prim = im.make<dnnl::matmul>(dnnl::matmul::primitive_desc(d, im.attr, im.eng));
    en->a = im.unbound(a_md);
    en->b = im.unbound(b_md);
    en->c = im.unbound(c_md);
    if (bias) en->bias = im.unbound(bias_md);
    return en;
  });
  std::lock_guard<std::mutex> lock(e->mu);
  dnnl_memory_t am, bm;
  if (e->bf16) {
    am = e->pa.bind(s, a);
    bm = e->pb.bind(s, b);
  } else {
    e->a.set_data_handle(const_cast<void*>(a));
    e->b.set_data_handle(const_cast<void*>(b));
    am = e->a.get();
    bm = e->b.get();
  }
  e->c.set_data_handle(c);
  if (bias) {
    e->bias.set_data_handle(const_cast<void*>(bias));
    execute(s, e->prim,
            {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_BIAS, e->bias.get()}, {DNNL_ARG_DST, e->c.get()}});
  } else {
    execute(s, e->prim, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, e->c.get()}});
  }
  wait(s);
}

// ---------------------------------------------------------------------------------------------
// Convolution.
// ---------------------------------------------------------------------------------------------
struct ConvGeometry {
  dims src, wei, bias, dst, strides, dilates, pad_l, pad_r;
  tag wei_tag;
};

ConvGeometry conv_geometry(const Shape& x, const Shape& w, const Conv2dParams& p) {
  ANVIL_CHECK(x.rank() == 4 && w.rank() == 4, "conv2d needs x [N,C,H,W] and w [K,C/groups,R,S], got {} and {}",
              x.str(), w.str());
  const std::int64_t g = p.groups;
  ANVIL_CHECK(g >= 1 && x[1] == w[1] * g && w[0] % g == 0,
              "conv2d: input {} and weight {} do not match groups {}", x.str(), w.str(), g);
  ConvGeometry c;
  const std::int64_t oh = conv_out_size(x[2], w[2], p.stride_h, p.pad_top, p.pad_bottom, p.dilation_h);
  const std::int64_t ow = conv_out_size(x[3], w[3], p.stride_w, p.pad_left, p.pad_right, p.dilation_w);
  c.src = to_dims(x);
  c.dst = {x[0], w[0], oh, ow};
  c.bias = {w[0]};
  if (g == 1) {
    c.wei = to_dims(w);
    c.wei_tag = tag::oihw;
  } else {
    c.wei = {g, w[0] / g, w[1], w[2], w[3]};
    c.wei_tag = tag::goihw;
  }
  c.strides = {p.stride_h, p.stride_w};
  c.dilates = {p.dilation_h - 1, p.dilation_w - 1};  // oneDNN counts the gaps
  c.pad_l = {p.pad_top, p.pad_left};
  c.pad_r = {p.pad_bottom, p.pad_right};
  return c;
}

void push_conv(Key& k, const Shape& x, const Shape& w, const Conv2dParams& p) {
  k.push(to_dims(x)).push(to_dims(w));
  k.push(p.stride_h).push(p.stride_w).push(p.pad_top).push(p.pad_bottom).push(p.pad_left).push(p.pad_right);
  k.push(p.dilation_h).push(p.dilation_w).push(p.groups);
}

struct ConvMds {
  md src, wei, dst, bias;
};

// Which operands are bf16 under mixed precision: the pass's inputs (forward: src, wei; backward-data:
// diff_dst, wei; backward-weights: src, diff_dst); its output and the bias stay f32.
enum class ConvPass { kF32, kFwdBf16, kBwdDataBf16, kBwdWeightsBf16 };

ConvMds conv_mds(const ConvGeometry& g, ConvLayout layout, ConvPass pass = ConvPass::kF32) {
  const tag act = layout == ConvLayout::kBlocked ? tag::any : layout == ConvLayout::kNhwc ? tag::nhwc : tag::nchw;
  const tag wt = layout == ConvLayout::kPlain ? g.wei_tag : tag::any;
  const dt src = pass == ConvPass::kFwdBf16 || pass == ConvPass::kBwdWeightsBf16 ? dt::bf16 : dt::f32;
  const dt wei = pass == ConvPass::kFwdBf16 || pass == ConvPass::kBwdDataBf16 ? dt::bf16 : dt::f32;
  const dt dst = pass == ConvPass::kBwdDataBf16 || pass == ConvPass::kBwdWeightsBf16 ? dt::bf16 : dt::f32;
  return {md(g.src, src, act), md(g.wei, wei, wt), md(g.dst, dst, act), md(g.bias, dt::f32, tag::x)};
}

dnnl::convolution_forward::primitive_desc conv_fwd_pd(Impl& im, const ConvGeometry& g, const ConvMds& m,
                                                       bool with_bias) {
  using CF = dnnl::convolution_forward;
  const auto d = with_bias ? CF::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, m.src,
                                      m.wei, m.bias, m.dst, g.strides, g.dilates, g.pad_l, g.pad_r)
                           : CF::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, m.src,
                                      m.wei, m.dst, g.strides, g.dilates, g.pad_l, g.pad_r);
  return CF::primitive_desc(d, im.attr, im.eng);
}

// How good an implementation oneDNN picked, from its name: the ISA its kernel is written for.
int isa_rank(const dnnl::primitive_desc_base& pd) {
  const char* impl = pd.impl_info_str();
  if (std::strstr(impl, "ref") || std::strstr(impl, "gemm")) return 0;
  if (std::strstr(impl, "avx512")) return 4;
  if (std::strstr(impl, "avx2")) return 3;
  if (std::strstr(impl, "avx")) return 2;
  return 1;
}

// Picks the activation layout of one convolution primitive; `build(layout)` returns its primitive
// descriptor. Auto prefers oneDNN's blocked layout (nChw16c on AVX-512) and switches to NHWC when
// that gets a kernel for a wider ISA: with few channels (LeNet's 1 and 6) the blocked backward-
// weights kernel drops to AVX2 while the NHWC one stays AVX-512 (2x faster there, measured), and
// plain NCHW only reaches GEMM-based kernels (2-5x slower). The choice depends on the shapes and
// the CPU only, never on timings, so runs stay bit-reproducible.
template <typename Build>
auto choose_layout(ConvLayout policy, Build&& build) {
  if (policy != ConvLayout::kAuto) return build(policy);
  auto best = build(ConvLayout::kBlocked);
  if (isa_rank(best) < 4) {
    auto nhwc = build(ConvLayout::kNhwc);
    if (isa_rank(nhwc) > isa_rank(best)) best = nhwc;
  }
  return best;
}

struct ConvFwdEntry : Entry {
  Prim prim;
  Port src, wei, dst;
  dnnl::memory bias;
};

struct ConvBwdDataEntry : Entry {
  Prim prim;
  Port diff_dst, wei, diff_src;
};

struct ConvBwdWeightsEntry : Entry {
  Prim prim;
  Port src, diff_dst, diff_wei;
  dnnl::memory diff_bias;
};

// ---------------------------------------------------------------------------------------------
// Pooling.
// ---------------------------------------------------------------------------------------------
dnnl::algorithm pool_alg(const Pool2dParams& p) {
  if (p.kind == PoolKind::kMax) return dnnl::algorithm::pooling_max;
  return p.count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                             : dnnl::algorithm::pooling_avg_exclude_padding;
}

// 2x2 / stride 2 / unpadded pooling runs on the hand-vectorized NCHW kernels (see Pool2x2Kernels.h);
// forward and backward decide alike from the parameters, so each sees its own workspace format.
bool is_pool2x2(const Pool2dParams& p) {
  return p.kernel_h == 2 && p.kernel_w == 2 && p.stride_h == 2 && p.stride_w == 2 && p.pad_top == 0 &&
         p.pad_bottom == 0 && p.pad_left == 0 && p.pad_right == 0;
}

struct PoolGeometry {
  dims src, dst, strides, kernel, pad_l, pad_r;
};

PoolGeometry pool_geometry(const Shape& x, const Pool2dParams& p) {
  ANVIL_CHECK(x.rank() == 4, "pool2d needs x [N,C,H,W], got {}", x.str());
  const std::int64_t oh = conv_out_size(x[2], p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom, 1);
  const std::int64_t ow = conv_out_size(x[3], p.kernel_w, p.stride_w, p.pad_left, p.pad_right, 1);
  return {to_dims(x),
          {x[0], x[1], oh, ow},
          {p.stride_h, p.stride_w},
          {p.kernel_h, p.kernel_w},
          {p.pad_top, p.pad_left},
          {p.pad_bottom, p.pad_right}};
}

void push_pool(Key& k, const Shape& x, const Pool2dParams& p) {
  k.push(to_dims(x)).push(static_cast<std::int64_t>(pool_alg(p)));
  k.push(p.kernel_h).push(p.kernel_w).push(p.stride_h).push(p.stride_w);
  k.push(p.pad_top).push(p.pad_bottom).push(p.pad_left).push(p.pad_right);
}

dnnl::pooling_forward::primitive_desc pool_fwd_pd(Impl& im, const PoolGeometry& g, dnnl::algorithm alg) {
  using PF = dnnl::pooling_forward;
  const PF::desc d(dnnl::prop_kind::forward_training, alg, md(g.src, dt::f32, tag::nchw),
                   md(g.dst, dt::f32, tag::nchw), g.strides, g.kernel, g.pad_l, g.pad_r);
  return PF::primitive_desc(d, im.attr, im.eng);
}

struct PoolFwdEntry : Entry {
  Prim prim;
  dnnl::memory src, dst, ws;
  std::size_t ws_bytes = 0;
};

struct PoolBwdEntry : Entry {
  Prim prim;
  dnnl::memory diff_dst, diff_src, ws;
  std::size_t ws_bytes = 0;
};

// ---------------------------------------------------------------------------------------------
// Eltwise (on the flattened tensor: the op does not depend on the shape).
// ---------------------------------------------------------------------------------------------
dnnl::algorithm eltwise_alg(EltwiseKind k, bool use_dst) {
  using A = dnnl::algorithm;
  switch (k) {
    case EltwiseKind::kRelu: return use_dst ? A::eltwise_relu_use_dst_for_bwd : A::eltwise_relu;
    case EltwiseKind::kSigmoid: return use_dst ? A::eltwise_logistic_use_dst_for_bwd : A::eltwise_logistic;
    case EltwiseKind::kTanh: return use_dst ? A::eltwise_tanh_use_dst_for_bwd : A::eltwise_tanh;
    case EltwiseKind::kGelu: return A::eltwise_gelu_erf;
    case EltwiseKind::kExp: return use_dst ? A::eltwise_exp_use_dst_for_bwd : A::eltwise_exp;
    case EltwiseKind::kLog: return A::eltwise_log;
    case EltwiseKind::kSqrt: return use_dst ? A::eltwise_sqrt_use_dst_for_bwd : A::eltwise_sqrt;
    case EltwiseKind::kSquare: return A::eltwise_square;
    case EltwiseKind::kAbs: return A::eltwise_abs;
    case EltwiseKind::kLinear: return A::eltwise_linear;
  }
  ANVIL_THROW("unknown eltwise kind {}", static_cast<int>(k));
}

// Whether the backward of `k` can be computed from the forward output alone.
bool has_dst_variant(EltwiseKind k, double alpha) {
  switch (k) {
    case EltwiseKind::kRelu: return alpha >= 0;
    case EltwiseKind::kSigmoid:
    case EltwiseKind::kTanh:
    case EltwiseKind::kExp:
    case EltwiseKind::kSqrt: return true;
    default: return false;
  }
}

struct EltwiseFwdEntry : Entry {
  Prim prim;
  dnnl::memory src, dst;
};

struct EltwiseBwdEntry : Entry {
  Prim prim;
  dnnl::memory diff_dst, data, diff_src;
  bool use_dst = false;
};

// ---------------------------------------------------------------------------------------------
// Broadcast helpers for binary and reduce: align ranks and merge neighbouring dims that are treated
// alike (both full or both broadcast), so that e.g. [64,6,28,28] (op) [1,6,1,1] becomes
// [64,6,784] (op) [1,6,1].
// ---------------------------------------------------------------------------------------------
void collapse(const dims& full, const dims& part, dims& out_full, dims& out_part) {
  out_full.clear();
  out_part.clear();
  int prev = -1;  // 1: full, 0: broadcast
  for (std::size_t i = 0; i < full.size(); ++i) {
    if (full[i] == 1) continue;  // a size-1 dim of the result fits either pattern
    const int kind = part[i] == full[i] ? 1 : 0;
    if (kind == prev) {
      out_full.back() *= full[i];
      out_part.back() *= part[i];
    } else {
      out_full.push_back(full[i]);
      out_part.push_back(part[i]);
      prev = kind;
    }
  }
  if (out_full.empty()) {
    out_full.push_back(1);
    out_part.push_back(1);
  }
}

dims padded(const Shape& s, std::size_t rank) {
  dims d(rank, 1);
  const std::size_t off = rank - s.rank();
  for (std::size_t i = 0; i < s.rank(); ++i) d[off + i] = s.dims()[i];
  return d;
}

struct BinaryEntry : Entry {
  Prim prim;
  dnnl::memory src0, src1, dst;
};

struct ReduceEntry : Entry {
  Prim prim;
  dnnl::memory src, dst;
};

// ---------------------------------------------------------------------------------------------
// Softmax on [outer, axis, inner] (inner == 1 collapses to 2-D).
// ---------------------------------------------------------------------------------------------
struct SoftmaxEntry : Entry {
  Prim prim;
  dnnl::memory a, b, c;  // fwd: src, dst; bwd: dst, diff_dst, diff_src
};

dims softmax_dims(const Shape& s, std::int64_t axis, int& dnnl_axis) {
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t i = 0; i < axis; ++i) outer *= s.dims()[i];
  for (std::size_t i = static_cast<std::size_t>(axis) + 1; i < s.rank(); ++i) inner *= s.dims()[i];
  const std::int64_t n = s.dims()[axis];
  dnnl_axis = 1;
  if (inner == 1) return {outer, n};
  return {outer, n, inner};
}

// ---------------------------------------------------------------------------------------------
// Normalization entries (layer norm; batch norm runs BatchNormKernels.h's loops instead).
// ---------------------------------------------------------------------------------------------
struct BnEntry : Entry {
  Prim prim;
  dnnl::memory src, dst, mean, var, scale, shift, diff_dst, diff_src, diff_scale, diff_shift;
};

const dnnl::normalization_flags kScaleShift =
    dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;

// Batch norm and layer norm share their entries: the forward binds src, dst, mean, var, scale, shift;
// the backward src, mean, var, diff_dst, diff_src, scale, shift (never read, but oneDNN 2.6 checks
// for it), diff_scale, diff_shift. `cm` is the per-channel (batch norm) / per-feature (layer norm) md.
template <class P, class PD>
std::unique_ptr<BnEntry> norm_forward_entry(Impl& im, const PD& pd, const md& cm) {
  auto en = std::make_unique<BnEntry>();
  en->src = im.unbound(pd.src_desc());
  en->dst = im.unbound(pd.dst_desc());
  en->mean = im.unbound(pd.mean_desc());
  en->var = im.unbound(pd.variance_desc());
  en->scale = im.unbound(cm);
  en->shift = im.unbound(cm);
  en->prim = im.make<P>(pd);
  return en;
}

void run_norm_forward(ThreadState* s, BnEntry& e, const Tensor& x, const Tensor& y, const Tensor& mean,
                      const Tensor& var, const Tensor& gamma, const Tensor& beta) {
  std::lock_guard<std::mutex> lock(e.mu);
  e.src.set_data_handle(ptr(x));
  e.dst.set_data_handle(ptr(y));
  e.mean.set_data_handle(ptr(mean));
  e.var.set_data_handle(ptr(var));
  e.scale.set_data_handle(ptr(gamma));
  e.shift.set_data_handle(ptr(beta));
  execute(s, e.prim,
          {{DNNL_ARG_SRC, e.src.get()},
           {DNNL_ARG_DST, e.dst.get()},
           {DNNL_ARG_MEAN, e.mean.get()},
           {DNNL_ARG_VARIANCE, e.var.get()},
           {DNNL_ARG_SCALE, e.scale.get()},
           {DNNL_ARG_SHIFT, e.shift.get()}});
  wait(s);
}

template <class P, class PD>
std::unique_ptr<BnEntry> norm_backward_entry(Impl& im, const PD& pd, const md& cm) {
  auto en = std::make_unique<BnEntry>();
  en->src = im.unbound(pd.src_desc());
  en->mean = im.unbound(pd.mean_desc());
  en->var = im.unbound(pd.variance_desc());
  en->diff_dst = im.unbound(pd.diff_dst_desc());
  en->diff_src = im.unbound(pd.diff_src_desc());
  en->scale = im.unbound(cm);
  en->shift = dnnl::memory(cm, im.eng);
  en->diff_scale = im.unbound(cm);
  en->diff_shift = im.unbound(cm);
  en->prim = im.make<P>(pd);
  return en;
}

void run_norm_backward(ThreadState* s, BnEntry& e, const Tensor& dy, const Tensor& x, const Tensor& mean,
                       const Tensor& var, const Tensor& gamma, const Tensor& dx, const Tensor& dgamma,
                       const Tensor& dbeta) {
  std::lock_guard<std::mutex> lock(e.mu);
  e.src.set_data_handle(ptr(x));
  e.mean.set_data_handle(ptr(mean));
  e.var.set_data_handle(ptr(var));
  e.diff_dst.set_data_handle(ptr(dy));
  e.diff_src.set_data_handle(ptr(dx));
  e.scale.set_data_handle(ptr(gamma));
  e.diff_scale.set_data_handle(ptr(dgamma));
  e.diff_shift.set_data_handle(ptr(dbeta));
  execute(s, e.prim,
          {{DNNL_ARG_SRC, e.src.get()},
           {DNNL_ARG_MEAN, e.mean.get()},
           {DNNL_ARG_VARIANCE, e.var.get()},
           {DNNL_ARG_DIFF_DST, e.diff_dst.get()},
           {DNNL_ARG_SCALE, e.scale.get()},
           {DNNL_ARG_SHIFT, e.shift.get()},
           {DNNL_ARG_DIFF_SRC, e.diff_src.get()},
           {DNNL_ARG_DIFF_SCALE, e.diff_scale.get()},
           {DNNL_ARG_DIFF_SHIFT, e.diff_shift.get()}});
  wait(s);
}

}  // namespace

// =============================================================================================
// OneDnnBackend
// =============================================================================================
OneDnnBackend::OneDnnBackend()
    : impl_(guarded(
          "OneDnnBackend", [] { return std::make_unique<OneDnnBackend::Impl>(); },
          [] { return std::string("cpu engine 0"); })) {}
OneDnnBackend::~OneDnnBackend() = default;

std::size_t OneDnnBackend::primitives_created() const { return impl_->created.load(std::memory_order_relaxed); }

Tensor OneDnnBackend::output(const Shape& shape, DType dtype) const { return impl_->buffers->empty(shape, dtype); }

std::size_t OneDnnBackend::cache_size() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->cache.size();
}

// ---- dense algebra ----
Tensor OneDnnBackend::matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  if (!all_f32({&a, &b}) || a.rank() < 2 || a.rank() != b.rank() || a.rank() > 8 || bf16_fallback())
    return ReferenceBackend::matmul(a, b, trans_a, trans_b);
  const std::size_t r = a.rank();
  std::int64_t batch = 1;
  for (std::size_t i = 0; i + 2 < r; ++i) {
    ANVIL_CHECK(a.shape().dims()[i] == b.shape().dims()[i], "matmul: leading dims of {} and {} differ",
                a.shape().str(), b.shape().str());
    batch *= a.shape().dims()[i];
  }
  const std::int64_t m = trans_a ? a.dim(-1) : a.dim(-2);
  const std::int64_t k = trans_a ? a.dim(-2) : a.dim(-1);
  const std::int64_t kb = trans_b ? b.dim(-1) : b.dim(-2);
  const std::int64_t n = trans_b ? b.dim(-2) : b.dim(-1);
  ANVIL_CHECK(k == kb, "matmul: inner dims differ: {}{} x {}{}", a.shape().str(), trans_a ? "ᵀ" : "",
              b.shape().str(), trans_b ? "ᵀ" : "");
  std::vector<std::int64_t> out(a.shape().dims().begin(), a.shape().dims().end() - 2);
  out.push_back(m);
  out.push_back(n);
  Tensor c = output(Shape(std::move(out)));
  return guarded(
      "matmul",
      [&] {
        run_matmul(*impl_, batch, m, k, n, trans_a, trans_b, ptr(a), ptr(b), nullptr, ptr(c));
        return c;
      },
      [&] { return shapes({{"a", &a}, {"b", &b}}); });
}

Tensor OneDnnBackend::linear_forward(const Tensor& x, const Tensor& w, const Tensor& b) {
  if (!all_f32({&x, &w, &b}) || x.rank() != 2 || w.rank() != 2 || bf16_fallback())
    return ReferenceBackend::linear_forward(x, w, b);
  // x [N, I], w [O, I] -> y [N, O]
  const std::int64_t n = x.dim(0), in = x.dim(1), o = w.dim(0);
  ANVIL_CHECK(w.dim(1) == in && (!b.defined() || b.numel() == o), "linear: x {} does not match w {} / b {}",
              x.shape().str(), w.shape().str(), b.defined() ? b.shape().str() : "none");
  Tensor y = output(Shape{n, o});
  return guarded(
      "linear_forward",
      [&] {
        run_matmul(*impl_, 1, n, in, o, false, true, ptr(x), ptr(w), b.defined() ? ptr(b) : nullptr, ptr(y));
        return y;
      },
      [&] { return shapes({{"x", &x}, {"w", &w}, {"b", &b}}); });
}

Tensor OneDnnBackend::linear_backward_data(const Tensor& dy, const Tensor& w) {
  if (!all_f32({&dy, &w}) || dy.rank() != 2 || w.rank() != 2 || bf16_fallback())
    return ReferenceBackend::linear_backward_data(dy, w);
  // dx [N, I] = dy [N, O] · w [O, I]
  const std::int64_t n = dy.dim(0), o = dy.dim(1), in = w.dim(1);
  ANVIL_CHECK(w.dim(0) == o, "linear_backward_data: dy {} does not match w {}", dy.shape().str(), w.shape().str());
  Tensor dx = output(Shape{n, in});
  return guarded(
      "linear_backward_data",
      [&] {
        run_matmul(*impl_, 1, n, o, in, false, false, ptr(dy), ptr(w), nullptr, ptr(dx));
        return dx;
      },
      [&] { return shapes({{"dy", &dy}, {"w", &w}}); });
}

WeightGrads OneDnnBackend::linear_backward_weights(const Tensor& dy, const Tensor& x, bool with_bias) {
  if (!all_f32({&dy, &x}) || dy.rank() != 2 || x.rank() != 2 || bf16_fallback())
    return ReferenceBackend::linear_backward_weights(dy, x, with_bias);
  // dw [O, I] = dyᵀ [O, N] · x [N, I]; db [O] = Σ_N dy
  const std::int64_t n = dy.dim(0), o = dy.dim(1), in = x.dim(1);
  ANVIL_CHECK(x.dim(0) == n, "linear_backward_weights: dy {} does not match x {}", dy.shape().str(),
              x.shape().str());
  WeightGrads g;
  g.dw = output(Shape{o, in});
  guarded(
      "linear_backward_weights",
      [&] { run_matmul(*impl_, 1, o, n, in, true, false, ptr(dy), ptr(x), nullptr, ptr(g.dw)); },
      [&] { return shapes({{"dy", &dy}, {"x", &x}}); });
  if (with_bias) {
    g.db = Tensor::zeros(Shape{o});
    float* db = g.db.data<float>();
    const float* d = dy.data<float>();
    for (std::int64_t i = 0; i < n; ++i) {
      const float* row = d + i * o;
      for (std::int64_t j = 0; j < o; ++j) db[j] += row[j];
    }
  }
  return g;
}

// ---- convolution ----
Tensor OneDnnBackend::conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) {
  if (!all_f32({&x, &w, &b}) || bf16_fallback()) return ReferenceBackend::conv2d_forward(x, w, b, p);
  const ConvGeometry g = conv_geometry(x.shape(), w.shape(), p);
  ANVIL_CHECK(!b.defined() || b.numel() == w.dim(0), "conv2d_forward: bias {} does not match weight {}", b.desc(),
              w.desc());
  const bool with_bias = b.defined();
  const bool bf16 = use_bf16();
  Tensor y = output(Shape(g.dst));
  if (onednn_detail::single_channel_conv_applies(x.shape(), w.shape(), p)) {
    const onednn_detail::SingleChannelConvShape s{x.dim(0), w.dim(0), x.dim(2), x.dim(3), w.dim(2), w.dim(3)};
    const Tensor xs = bf16 ? bf16_rounded(x) : x, ws = bf16 ? bf16_rounded(w) : w;
    onednn_detail::single_channel_conv_forward(s, xs.data<float>(), ws.data<float>(),
                                               with_bias ? b.data<float>() : nullptr, y.data<float>());
    return y;
  }
  return guarded(
      "conv2d_forward",
      [&] {
        Impl& im = *impl_;
        Key key(Op::kConvFwd);
        push_conv(key, x.shape(), w.shape(), p);
        key.push(with_bias).push(bf16);
        auto [e, s] = im.acquire<ConvFwdEntry>(key, [&] {
          auto en = std::make_unique<ConvFwdEntry>();
          const auto pd = choose_layout(im.conv_layout, [&](ConvLayout layout) {
            return conv_fwd_pd(im, g, conv_mds(g, layout, bf16 ? ConvPass::kFwdBf16 : ConvPass::kF32), with_bias);
          });
          const ConvMds user = conv_mds(g, ConvLayout::kPlain);
          en->src.init(im, user.src, pd.src_desc(), true);
          en->wei.init(im, user.wei, pd.weights_desc(), true);
          en->dst.init(im, user.dst, pd.dst_desc(), false);
          if (with_bias) en->bias = im.unbound(user.bias);
          en->prim = im.make<dnnl::convolution_forward>(pd);
          return en;
        });
        std::lock_guard<std::mutex> lock(e->mu);
        dnnl_memory_t src = e->src.bind(s, ptr(x));
        dnnl_memory_t wei = e->wei.bind(s, ptr(w));
        dnnl_memory_t dst = e->dst.bind(s, ptr(y));
        if (with_bias) {
          e->bias.set_data_handle(ptr(b));
          execute(s, e->prim,
                  {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_BIAS, e->bias.get()}, {DNNL_ARG_DST, dst}});
        } else {
          execute(s, e->prim, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
        }
        e->dst.finish(s);
        wait(s);
        return y;
      },
      [&] { return shapes({{"x", &x}, {"w", &w}, {"b", &b}}); });
}

Tensor OneDnnBackend::conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape,
                                           const Conv2dParams& p) {
  if (!all_f32({&dy, &w}) || x_shape.numel() == 0 || bf16_fallback())
    return ReferenceBackend::conv2d_backward_data(dy, w, x_shape, p);
  const ConvGeometry g = conv_geometry(x_shape, w.shape(), p);
  ANVIL_CHECK(to_dims(dy.shape()) == g.dst, "conv2d_backward_data: dy {} does not match output [{}] of x {}",
              dy.desc(), fmt::join(g.dst, ","), x_shape.str());
  Tensor dx = output(x_shape);
  return guarded(
      "conv2d_backward_data",
      [&] {
        Impl& im = *impl_;
        const bool bf16 = use_bf16();
        Key key(Op::kConvBwdData);
        push_conv(key, x_shape, w.shape(), p);
        key.push(bf16);
        auto [e, s] = im.acquire<ConvBwdDataEntry>(key, [&] {
          using CB = dnnl::convolution_backward_data;
          auto en = std::make_unique<ConvBwdDataEntry>();
          const auto pd = choose_layout(im.conv_layout, [&](ConvLayout layout) {
            const ConvMds m = conv_mds(g, layout, bf16 ? ConvPass::kBwdDataBf16 : ConvPass::kF32);
            const auto hint = conv_fwd_pd(im, g, conv_mds(g, layout, bf16 ? ConvPass::kFwdBf16 : ConvPass::kF32), false);
            return CB::primitive_desc(CB::desc(dnnl::algorithm::convolution_direct, m.src, m.wei, m.dst, g.strides,
                                               g.dilates, g.pad_l, g.pad_r),
                                      im.attr, im.eng, hint);
          });
          const ConvMds user = conv_mds(g, ConvLayout::kPlain);
          en->diff_dst.init(im, user.dst, pd.diff_dst_desc(), true);
          en->wei.init(im, user.wei, pd.weights_desc(), true);
          en->diff_src.init(im, user.src, pd.diff_src_desc(), false);
          en->prim = im.make<CB>(pd);
          return en;
        });
        std::lock_guard<std::mutex> lock(e->mu);
        dnnl_memory_t ddst = e->diff_dst.bind(s, ptr(dy));
        dnnl_memory_t wei = e->wei.bind(s, ptr(w));
        dnnl_memory_t dsrc = e->diff_src.bind(s, ptr(dx));
        execute(s, e->prim, {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DIFF_SRC, dsrc}});
        e->diff_src.finish(s);
        wait(s);
        return dx;
      },
      [&] { return shapes({{"dy", &dy}, {"w", &w}}) + ", x_shape " + x_shape.str(); });
}

WeightGrads OneDnnBackend::conv2d_backward_weights(const Tensor& dy, const Tensor& x, const Shape& w_shape,
                                                   bool with_bias, const Conv2dParams& p) {
  if (!all_f32({&dy, &x}) || w_shape.numel() == 0 || bf16_fallback())
    return ReferenceBackend::conv2d_backward_weights(dy, x, w_shape, with_bias, p);
  const ConvGeometry g = conv_geometry(x.shape(), w_shape, p);
  ANVIL_CHECK(to_dims(dy.shape()) == g.dst, "conv2d_backward_weights: dy {} does not match output [{}] of x {}",
              dy.desc(), fmt::join(g.dst, ","), x.desc());
  WeightGrads grads;
  grads.dw = output(w_shape);
  if (with_bias) grads.db = output(Shape{w_shape[0]});
  const bool bf16 = use_bf16();
  if (onednn_detail::single_channel_conv_applies(x.shape(), w_shape, p)) {
    const onednn_detail::SingleChannelConvShape s{x.dim(0), w_shape[0], x.dim(2), x.dim(3), w_shape[2], w_shape[3]};
    const Tensor xs = bf16 ? bf16_rounded(x) : x, dys = bf16 ? bf16_rounded(dy) : dy;
    onednn_detail::single_channel_conv_backward_weights(s, xs.data<float>(), dys.data<float>(),
                                                        grads.dw.data<float>(),
                                                        with_bias ? grads.db.data<float>() : nullptr);
    return grads;
  }
  return guarded(
      "conv2d_backward_weights",
      [&] {
        Impl& im = *impl_;
        Key key(Op::kConvBwdWeights);
        push_conv(key, x.shape(), w_shape, p);
        key.push(with_bias).push(bf16);
        auto [e, s] = im.acquire<ConvBwdWeightsEntry>(key, [&] {
          using CB = dnnl::convolution_backward_weights;
          auto en = std::make_unique<ConvBwdWeightsEntry>();
          const auto pd = choose_layout(im.conv_layout, [&](ConvLayout layout) {
            const ConvMds m = conv_mds(g, layout, bf16 ? ConvPass::kBwdWeightsBf16 : ConvPass::kF32);
            const auto hint =
                conv_fwd_pd(im, g, conv_mds(g, layout, bf16 ? ConvPass::kFwdBf16 : ConvPass::kF32), with_bias);
            const auto d = with_bias ? CB::desc(dnnl::algorithm::convolution_direct, m.src, m.wei, m.bias, m.dst,
                                                g.strides, g.dilates, g.pad_l, g.pad_r)
                                     : CB::desc(dnnl::algorithm::convolution_direct, m.src, m.wei, m.dst, g.strides,
                                                g.dilates, g.pad_l, g.pad_r);
            return CB::primitive_desc(d, im.attr, im.eng, hint);
          });
          const ConvMds user = conv_mds(g, ConvLayout::kPlain);
          en->src.init(im, user.src, pd.src_desc(), true);
          en->diff_dst.init(im, user.dst, pd.diff_dst_desc(), true);
          en->diff_wei.init(im, user.wei, pd.diff_weights_desc(), false);
          if (with_bias) en->diff_bias = im.unbound(user.bias);
          en->prim = im.make<CB>(pd);
          return en;
        });
        std::lock_guard<std::mutex> lock(e->mu);
        dnnl_memory_t src = e->src.bind(s, ptr(x));
        dnnl_memory_t ddst = e->diff_dst.bind(s, ptr(dy));
        dnnl_memory_t dwei = e->diff_wei.bind(s, ptr(grads.dw));
        if (with_bias) {
          e->diff_bias.set_data_handle(ptr(grads.db));
          execute(s, e->prim,
                  {{DNNL_ARG_SRC, src},
                   {DNNL_ARG_DIFF_DST, ddst},
                   {DNNL_ARG_DIFF_WEIGHTS, dwei},
                   {DNNL_ARG_DIFF_BIAS, e->diff_bias.get()}});
        } else {
          execute(s, e->prim, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_WEIGHTS, dwei}});
        }
        e->diff_wei.finish(s);
        wait(s);
        return grads;
      },
      [&] { return shapes({{"dy", &dy}, {"x", &x}}) + ", w_shape " + w_shape.str(); });
}

// ---- pooling ----
PoolResult OneDnnBackend::pool2d_forward(const Tensor& x, const Pool2dParams& p) {
  if (!all_f32({&x})) return ReferenceBackend::pool2d_forward(x, p);
  const PoolGeometry g = pool_geometry(x.shape(), p);
  PoolResult r;
  r.y = output(Shape(g.dst));
  if (is_pool2x2(p)) {
    const onednn_detail::Pool2x2Shape s{x.dim(0) * x.dim(1), x.dim(2), x.dim(3)};
    if (p.kind == PoolKind::kMax) {
      r.workspace = output(r.y.shape(), DType::kU8);
      onednn_detail::max_pool2x2_forward(s, x.data<float>(), r.y.data<float>(), r.workspace.data<std::uint8_t>());
    } else {
      onednn_detail::avg_pool2x2_forward(s, x.data<float>(), r.y.data<float>());
    }
    return r;
  }
  return guarded(
      "pool2d_forward",
      [&] {
        Impl& im = *impl_;
        Key key(Op::kPoolFwd);
        push_pool(key, x.shape(), p);
        auto [e, s] = im.acquire<PoolFwdEntry>(key, [&] {
          auto en = std::make_unique<PoolFwdEntry>();
          const auto pd = pool_fwd_pd(im, g, pool_alg(p));
          en->src = im.unbound(pd.src_desc());
          en->dst = im.unbound(pd.dst_desc());
          const md ws = pd.workspace_desc();
          en->ws_bytes = ws.get_size();
          if (en->ws_bytes) en->ws = im.unbound(ws);
          en->prim = im.make<dnnl::pooling_forward>(pd);
          return en;
        });
        if (e->ws_bytes) r.workspace = output(Shape{static_cast<std::int64_t>(e->ws_bytes)}, DType::kU8);
        std::lock_guard<std::mutex> lock(e->mu);
        e->src.set_data_handle(ptr(x));
        e->dst.set_data_handle(ptr(r.y));
        if (e->ws_bytes) {
          e->ws.set_data_handle(ptr(r.workspace));
          execute(s, e->prim, {{DNNL_ARG_SRC, e->src.get()}, {DNNL_ARG_DST, e->dst.get()},
                               {DNNL_ARG_WORKSPACE, e->ws.get()}});
        } else {
          execute(s, e->prim, {{DNNL_ARG_SRC, e->src.get()}, {DNNL_ARG_DST, e->dst.get()}});
        }
        wait(s);
        return r;
      },
      [&] { return shapes({{"x", &x}}); });
}

Tensor OneDnnBackend::pool2d_backward(const Tensor& dy, const Tensor& x, const PoolResult& fwd,
                                      const Pool2dParams& p) {
  if (!all_f32({&dy, &x})) return ReferenceBackend::pool2d_backward(dy, x, fwd, p);
  const PoolGeometry g = pool_geometry(x.shape(), p);
  ANVIL_CHECK(to_dims(dy.shape()) == g.dst, "pool2d_backward: dy {} does not match output [{}] of x {}", dy.desc(),
              fmt::join(g.dst, ","), x.desc());
  const bool is_max = p.kind == PoolKind::kMax;
  // Max pooling needs this backend's workspace; anything else (e.g. a forward that ran elsewhere)
  // goes to the reference loops, which recompute the argmax from x.
  if (is_max && (!fwd.workspace.defined() || fwd.workspace.dtype() != DType::kU8))
    return ReferenceBackend::pool2d_backward(dy, x, fwd, p);
  Tensor dx = output(x.shape());
  if (is_pool2x2(p)) {
    const onednn_detail::Pool2x2Shape s{x.dim(0) * x.dim(1), x.dim(2), x.dim(3)};
    if (is_max) {
      if (fwd.workspace.numel() != dy.numel()) return ReferenceBackend::pool2d_backward(dy, x, fwd, p);
      onednn_detail::max_pool2x2_backward(s, dy.data<float>(), fwd.workspace.data<std::uint8_t>(), dx.data<float>());
    } else {
      onednn_detail::avg_pool2x2_backward(s, dy.data<float>(), dx.data<float>());
    }
    return dx;
  }
  bool fallback = false;
  guarded(
      "pool2d_backward",
      [&] {
        Impl& im = *impl_;
        Key key(Op::kPoolBwd);
        push_pool(key, x.shape(), p);
        auto [e, s] = im.acquire<PoolBwdEntry>(key, [&] {
          using PB = dnnl::pooling_backward;
          auto en = std::make_unique<PoolBwdEntry>();
          const auto alg = pool_alg(p);
          const auto hint = pool_fwd_pd(im, g, alg);
          const PB::primitive_desc pd(PB::desc(alg, md(g.src, dt::f32, tag::nchw), md(g.dst, dt::f32, tag::nchw),
                                               g.strides, g.kernel, g.pad_l, g.pad_r),
                                      im.attr, im.eng, hint);
          en->diff_dst = im.unbound(pd.diff_dst_desc());
          en->diff_src = im.unbound(pd.diff_src_desc());
          const md ws = hint.workspace_desc();
          en->ws_bytes = ws.get_size();
          if (en->ws_bytes) en->ws = im.unbound(ws);
          en->prim = im.make<PB>(pd);
          return en;
        });
        if (e->ws_bytes && fwd.workspace.nbytes() != e->ws_bytes) {
          fallback = true;
          return;
        }
        std::lock_guard<std::mutex> lock(e->mu);
        e->diff_dst.set_data_handle(ptr(dy));
        e->diff_src.set_data_handle(ptr(dx));
        if (e->ws_bytes) {
          e->ws.set_data_handle(ptr(fwd.workspace));
          execute(s, e->prim, {{DNNL_ARG_DIFF_DST, e->diff_dst.get()}, {DNNL_ARG_DIFF_SRC, e->diff_src.get()},
                               {DNNL_ARG_WORKSPACE, e->ws.get()}});
        } else {
          execute(s, e->prim, {{DNNL_ARG_DIFF_DST, e->diff_dst.get()}, {DNNL_ARG_DIFF_SRC, e->diff_src.get()}});
        }
        wait(s);
      },
      [&] { return shapes({{"dy", &dy}, {"x", &x}, {"workspace", &fwd.workspace}}); });
  if (fallback) return ReferenceBackend::pool2d_backward(dy, x, fwd, p);
  return dx;
}

// ---- elementwise ----
Tensor OneDnnBackend::eltwise_forward(EltwiseKind kind, const Tensor& x, double alpha, double beta) {
  if (!all_f32({&x})) return ReferenceBackend::eltwise_forward(kind, x, alpha, beta);
  Tensor y = output(x.shape());
  return guarded(
      "eltwise_forward",
      [&] {
        Impl& im = *impl_;
        Key key(Op::kEltwiseFwd);
        key.push(static_cast<std::int64_t>(kind)).push(x.numel()).push_float(alpha).push_float(beta);
        auto [e, s] = im.acquire<EltwiseFwdEntry>(key, [&] {
          using EF = dnnl::eltwise_forward;
          auto en = std::make_unique<EltwiseFwdEntry>();
          const md data = plain_md({x.numel()});
          const EF::primitive_desc pd(EF::desc(dnnl::prop_kind::forward_training, eltwise_alg(kind, false), data,
                                               static_cast<float>(alpha), static_cast<float>(beta)),
                                      im.attr, im.eng);
          en->src = im.unbound(data);
          en->dst = im.unbound(data);
          en->prim = im.make<EF>(pd);
          return en;
        });
        std::lock_guard<std::mutex> lock(e->mu);
        e->src.set_data_handle(ptr(x));
        e->dst.set_data_handle(ptr(y));
        execute(s, e->prim, {{DNNL_ARG_SRC, e->src.get()}, {DNNL_ARG_DST, e->dst.get()}});
        wait(s);
        return y;
      },
      [&] { return shapes({{"x", &x}}) + fmt::format(", kind {}", static_cast<int>(kind)); });
}

Tensor OneDnnBackend::eltwise_backward(EltwiseKind kind, const Tensor& dy, const Tensor& x, const Tensor& y,
                                       double alpha, double beta) {
  // Prefer the forward output where oneDNN can use it (cheaper), else the input.
  const bool use_dst = y.defined() && has_dst_variant(kind, alpha);
  const Tensor& data = use_dst ? y : x;
  if (!all_f32({&dy, &x, &y}) || !data.defined() || data.numel() != dy.numel())
    return ReferenceBackend::eltwise_backward(kind, dy, x, y, alpha, beta);
  Tensor dx = output(dy.shape());
  return guarded(
      "eltwise_backward",
      [&] {
        Impl& im = *impl_;
        Key key(Op::kEltwiseBwd);
        key.push(static_cast<std::int64_t>(kind)).push(use_dst).push(dy.numel()).push_float(alpha).push_float(beta);
        auto [e, s] = im.acquire<EltwiseBwdEntry>(key, [&] {
          using EF = dnnl::eltwise_forward;
          using EB = dnnl::eltwise_backward;
          auto en = std::make_unique<EltwiseBwdEntry>();
          const md d = plain_md({dy.numel()});
          const auto alg = eltwise_alg(kind, use_dst);
          const auto a = static_cast<float>(alpha), b = static_cast<float>(beta);
          const EF::primitive_desc hint(EF::desc(dnnl::prop_kind::forward_training, alg, d, a, b), im.eng);
          const EB::primitive_desc pd(EB::desc(alg, d, d, a, b), im.attr, im.eng, hint);
          en->diff_dst = im.unbound(d);
          en->data = im.unbound(d);
          en->diff_src = im.unbound(d);
          en->use_dst = use_dst;
          en->prim = im.make<EB>(pd);
          return en;
        });
        std::lock_guard<std::mutex> lock(e->mu);
        e->diff_dst.set_data_handle(ptr(dy));
        e->data.set_data_handle(ptr(data));
        e->diff_src.set_data_handle(ptr(dx));
        execute(s, e->prim,
                {{DNNL_ARG_DIFF_DST, e->diff_dst.get()},
                 {use_dst ? DNNL_ARG_DST : DNNL_ARG_SRC, e->data.get()},
                 {DNNL_ARG_DIFF_SRC, e->diff_src.get()}});
        wait(s);
        return dx;
      },
      [&] { return shapes({{"dy", &dy}, {"x", &x}, {"y", &y}}) + fmt::format(", kind {}", static_cast<int>(kind)); });
}

Tensor OneDnnBackend::binary(BinaryKind kind, const Tensor& a, const Tensor& b) {
  if (!all_f32({&a, &b})) return ReferenceBackend::binary(kind, a, b);
  const Shape out = broadcast_shapes(a.shape(), b.shape());
  const std::size_t rank = std::max<std::size_t>(out.rank(), 1);
  const dims od = padded(out, rank), ad = padded(a.shape(), rank), bd = padded(b.shape(), rank);
  // oneDNN broadcasts only src1: the full-size operand goes first; swapping needs a commutative op.
  const bool commutative = kind != BinaryKind::kSub && kind != BinaryKind::kDiv;
  bool swap = false;
  if (ad != od) {
    if (bd != od || !commutative) return ReferenceBackend::binary(kind, a, b);
    swap = true;
  }
  const Tensor& s0 = swap ? b : a;
  const Tensor& s1 = swap ? a : b;
  dims d0, d1;
  collapse(od, swap ? ad : bd, d0, d1);
  if (d0.size() > 6) return ReferenceBackend::binary(kind, a, b);
  Tensor c = output(out);
  return guarded(
      "binary",
      [&] {
        Impl& im = *impl_;
        Key key(Op::kBinary);
        key.push(static_cast<std::int64_t>(kind)).push(d0).push(d1);
        auto [e, s] = im.acquire<BinaryEntry>(key, [&] {
          using A = dnnl::algorithm;
          A alg = A::binary_add;
          switch (kind) {
            case BinaryKind::kAdd: alg = A::binary_add; break;
            case BinaryKind::kSub: alg = A::binary_sub; break;
            case BinaryKind::kMul: alg = A::binary_mul; break;
            case BinaryKind::kDiv: alg = A::binary_div; break;
            case BinaryKind::kMax: alg = A::binary_max; break;
            case BinaryKind::kMin: alg = A::binary_min; break;
          }
          auto en = std::make_unique<BinaryEntry>();
          const md m0 = plain_md(d0), m1 = plain_md(d1);
          const dnnl::binary::primitive_desc pd(dnnl::binary::desc(alg, m0, m1, m0), im.attr, im.eng);
          en->src0 = im.unbound(m0);
          en->src1 = im.unbound(m1);
          en->dst = im.unbound(m0);
          en->prim = im.make<dnnl::binary>(pd);
          return en;
        });
        std::lock_guard<std::mutex> lock(e->mu);
        e->src0.set_data_handle(ptr(s0));
        e->src1.set_data_handle(ptr(s1));
        e->dst.set_data_handle(ptr(c));
        execute(s, e->prim,
                {{DNNL_ARG_SRC_0, e->src0.get()}, {DNNL_ARG_SRC_1, e->src1.get()}, {DNNL_ARG_DST, e->dst.get()}});
        wait(s);
        return c;
      },
      [&] { return shapes({{"a", &a}, {"b", &b}}) + fmt::format(", kind {}", static_cast<int>(kind)); });
}

Tensor OneDnnBackend::reduce(ReduceKind kind, const Tensor& x, const Shape& out_shape) {
  if (!all_f32({&x}) || out_shape.rank() != x.rank()) return ReferenceBackend::reduce(kind, x, out_shape);
  for (std::size_t i = 0; i < x.rank(); ++i) {
    const std::int64_t o = out_shape.dims()[i];
    ANVIL_CHECK(o == 1 || o == x.shape().dims()[i], "reduce: cannot reduce {} to {}", x.shape().str(),
                out_shape.str());
  }
  if (out_shape == x.shape()) return x.clone();
  dims sd, dd;
  collapse(to_dims(x.shape()), to_dims(out_shape), sd, dd);
  if (sd.size() > 6) return ReferenceBackend::reduce(kind, x, out_shape);
  Tensor y = output(out_shape);
  return guarded(
      "reduce",
      [&] {
        Impl& im = *impl_;
        Key key(Op::kReduce);
        key.push(static_cast<std::int64_t>(kind)).push(sd).push(dd);
        auto [e, s] = im.acquire<ReduceEntry>(key, [&] {
          using A = dnnl::algorithm;
          A alg = A::reduction_sum;
          switch (kind) {
            case ReduceKind::kSum: alg = A::reduction_sum; break;
            case ReduceKind::kMean: alg = A::reduction_mean; break;
            case ReduceKind::kMax: alg = A::reduction_max; break;
            case ReduceKind::kMin: alg = A::reduction_min; break;
          }
          auto en = std::make_unique<ReduceEntry>();
          const md ms = plain_md(sd), mdst = plain_md(dd);
          const dnnl::reduction::primitive_desc pd(dnnl::reduction::desc(alg, ms, mdst, 0.f, 0.f), im.attr,
                                                   im.eng);
          en->src = im.unbound(ms);
          en->dst = im.unbound(mdst);
          en->prim = im.make<dnnl::reduction>(pd);
          return en;
        });
        std::lock_guard<std::mutex> lock(e->mu);
        e->src.set_data_handle(ptr(x));
        e->dst.set_data_handle(ptr(y));
        execute(s, e->prim, {{DNNL_ARG_SRC, e->src.get()}, {DNNL_ARG_DST, e->dst.get()}});
        wait(s);
        return y;
      },
      [&] { return shapes({{"x", &x}}) + ", out_shape " + out_shape.str(); });
}

// ---- softmax ----
Tensor OneDnnBackend::softmax_forward(const Tensor& x, std::int64_t axis, bool log) {
  if (!all_f32({&x}) || axis < 0 || axis >= static_cast<std::int64_t>(x.rank()))
    return ReferenceBackend::softmax_forward(x, axis, log);
  int dax = 1;
  const dims d = softmax_dims(x.shape(), axis, dax);
  Tensor y = output(x.shape());
  return guarded(
      "softmax_forward",
      [&] {
        Impl& im = *impl_;
        Key key(Op::kSoftmaxFwd);
        key.push(log).push(d);
        auto [e, s] = im.acquire<SoftmaxEntry>(key, [&] {
          using SF = dnnl::softmax_v2_forward;
          auto en = std::make_unique<SoftmaxEntry>();
          const md m = plain_md(d);
          const SF::primitive_desc pd(
              SF::desc(dnnl::prop_kind::forward_training,
                       log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate, m, m, dax),
              im.attr, im.eng);
          en->a = im.unbound(m);
          en->b = im.unbound(m);
          en->prim = im.make<SF>(pd);
          return en;
        });
        std::lock_guard<std::mutex> lock(e->mu);
        e->a.set_data_handle(ptr(x));
        e->b.set_data_handle(ptr(y));
        execute(s, e->prim, {{DNNL_ARG_SRC, e->a.get()}, {DNNL_ARG_DST, e->b.get()}});
        wait(s);
        return y;
      },
      [&] { return shapes({{"x", &x}}) + fmt::format(", axis {}", axis); });
}

Tensor OneDnnBackend::softmax_backward(const Tensor& dy, const Tensor& y, std::int64_t axis, bool log) {
  if (!all_f32({&dy, &y}) || axis < 0 || axis >= static_cast<std::int64_t>(y.rank()) || dy.shape() != y.shape())
    return ReferenceBackend::softmax_backward(dy, y, axis, log);
  int dax = 1;
  const dims d = softmax_dims(y.shape(), axis, dax);
  Tensor dx = output(y.shape());
  return guarded(
      "softmax_backward",
      [&] {
        Impl& im = *impl_;
        Key key(Op::kSoftmaxBwd);
        key.push(log).push(d);
        auto [e, s] = im.acquire<SoftmaxEntry>(key, [&] {
          using SF = dnnl::softmax_v2_forward;
          using SB = dnnl::softmax_v2_backward;
          auto en = std::make_unique<SoftmaxEntry>();
          const md m = plain_md(d);
          const auto alg = log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate;
          const SF::primitive_desc hint(SF::desc(dnnl::prop_kind::forward_training, alg, m, m, dax), im.eng);
          const SB::primitive_desc pd(SB::desc(alg, m, m, m, dax), im.attr, im.eng, hint);
          en->a = im.unbound(m);
          en->b = im.unbound(m);
          en->c = im.unbound(m);
          en->prim = im.make<SB>(pd);
          return en;
        });
        std::lock_guard<std::mutex> lock(e->mu);
        e->a.set_data_handle(ptr(y));
        e->b.set_data_handle(ptr(dy));
        e->c.set_data_handle(ptr(dx));
        execute(s, e->prim,
                {{DNNL_ARG_DST, e->a.get()}, {DNNL_ARG_DIFF_DST, e->b.get()}, {DNNL_ARG_DIFF_SRC, e->c.get()}});
        wait(s);
        return dx;
      },
      [&] { return shapes({{"dy", &dy}, {"y", &y}}) + fmt::format(", axis {}", axis); });
}

// ---- batch norm ----
namespace {
bool bn_supported(const Tensor& x, std::initializer_list<const Tensor*> per_channel) {
  if (x.rank() != 4 && x.rank() != 2) return false;
  for (const Tensor* t : per_channel)
    if (!t->defined() || t->numel() != x.dim(1)) return false;
  return true;
}

// x [N, C, H, W] or [N, C] viewed as [N, C, H*W].
onednn_detail::BnShape bn_shape(const Tensor& x) {
  return {x.dim(0), x.dim(1), x.rank() == 4 ? x.dim(2) * x.dim(3) : 1};
}
}  // namespace

// Our own loops (BatchNormKernels.h): oneDNN 2.6 has no JIT batch norm for the plain layouts.
BatchNormTrainResult OneDnnBackend::batch_norm_forward_training(const Tensor& x, const Tensor& gamma,
                                                                const Tensor& beta, double eps) {
  if (!all_f32({&x, &gamma, &beta}) || !bn_supported(x, {&gamma, &beta}))
    return ReferenceBackend::batch_norm_forward_training(x, gamma, beta, eps);
  const std::int64_t c = x.dim(1);
  BatchNormTrainResult r{output(x.shape()), output(Shape{c}), output(Shape{c})};
  onednn_detail::bn_forward_training(bn_shape(x), x.data<float>(), gamma.data<float>(), beta.data<float>(), eps,
                                     r.y.data<float>(), r.mean.data<float>(), r.var.data<float>());
  return r;
}

Tensor OneDnnBackend::batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                                   const Tensor& mean, const Tensor& var, double eps) {
  if (!all_f32({&x, &gamma, &beta, &mean, &var}) || !bn_supported(x, {&gamma, &beta, &mean, &var}))
    return ReferenceBackend::batch_norm_forward_inference(x, gamma, beta, mean, var, eps);
  Tensor y = output(x.shape());
  onednn_detail::bn_forward_inference(bn_shape(x), x.data<float>(), gamma.data<float>(), beta.data<float>(),
                                      mean.data<float>(), var.data<float>(), eps, y.data<float>());
  return y;
}

BatchNormGrads OneDnnBackend::batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                                  const Tensor& mean, const Tensor& var, double eps) {
  if (!all_f32({&dy, &x, &gamma, &mean, &var}) || !bn_supported(x, {&gamma, &mean, &var}) ||
      dy.shape() != x.shape())
    return ReferenceBackend::batch_norm_backward(dy, x, gamma, mean, var, eps);
  const std::int64_t c = x.dim(1);
  BatchNormGrads g{output(x.shape()), output(Shape{c}), output(Shape{c})};
  onednn_detail::bn_backward(bn_shape(x), dy.data<float>(), x.data<float>(), gamma.data<float>(),
                             mean.data<float>(), var.data<float>(), eps, g.dx.data<float>(), g.dgamma.data<float>(),
                             g.dbeta.data<float>());
  return g;
}

// ---- layer norm (oneDNN layer_normalization on x viewed as [M, D]) and embedding (parallel loops) ----
namespace {

dnnl::layer_normalization_forward::primitive_desc ln_fwd_pd(Impl& im, std::int64_t m, std::int64_t d, float eps) {
  using LF = dnnl::layer_normalization_forward;
  const md data({m, d}, dt::f32, tag::ab);
  const md stat({m}, dt::f32, tag::a);
  return LF::primitive_desc(LF::desc(dnnl::prop_kind::forward_training, data, stat, eps, kScaleShift), im.attr,
                            im.eng);
}

// x viewed as [M, D] rows of gamma's D elements; false when the shapes do not fit (the reference
// then reports the error).
bool ln_rows(const Tensor& x, const Tensor& gamma, std::int64_t& m, std::int64_t& d) {
  d = gamma.numel();
  if (d <= 0 || x.numel() % d != 0) return false;
  m = x.numel() / d;
  return m > 0;
}

// Raw read access to int32/int64 indices for the parallel loops (no per-element dtype check).
struct IndexView {
  explicit IndexView(const Tensor& t)
      : i32(t.dtype() == DType::kI32 ? t.data<std::int32_t>() : nullptr),
        i64(t.dtype() == DType::kI64 ? t.data<std::int64_t>() : nullptr) {}
  std::int64_t operator[](std::int64_t i) const { return i32 ? static_cast<std::int64_t>(i32[i]) : i64[i]; }
  const std::int32_t* i32;
  const std::int64_t* i64;
};

// True when every index lies in [0, v); the reference path then produces the error message.
bool indices_in_range(const Tensor& indices, std::int64_t v) {
  if (indices.dtype() != DType::kI32 && indices.dtype() != DType::kI64) return false;
  const IndexView view(indices);
  for (std::int64_t i = 0; i < indices.numel(); ++i) {
    const std::int64_t idx = view[i];
    if (idx < 0 || idx >= v) return false;
  }
  return true;
}

}  // namespace

LayerNormResult OneDnnBackend::layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                                  double eps) {
  std::int64_t m = 0, d = 0;
  if (!all_f32({&x, &gamma, &beta}) || !ln_rows(x, gamma, m, d) || beta.numel() != d)
    return ReferenceBackend::layer_norm_forward(x, gamma, beta, eps);
  LayerNormResult r{output(x.shape()), output(Shape{m}), output(Shape{m})};
  return guarded(
      "layer_norm_forward",
      [&] {
        Impl& im = *impl_;
        Key key(Op::kLayerNormFwd);
        key.push(m).push(d).push_float(eps);
        auto [e, s] = im.acquire<BnEntry>(key, [&] {
          const auto pd = ln_fwd_pd(im, m, d, static_cast<float>(eps));
          return norm_forward_entry<dnnl::layer_normalization_forward>(im, pd, md({d}, dt::f32, tag::x));
        });
        run_norm_forward(s, *e, x, r.y, r.mean, r.var, gamma, beta);
        return r;
      },
      [&] { return shapes({{"x", &x}, {"gamma", &gamma}, {"beta", &beta}}); });
}

LayerNormGrads OneDnnBackend::layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                                  const Tensor& mean, const Tensor& var, double eps) {
  std::int64_t m = 0, d = 0;
  if (!all_f32({&dy, &x, &gamma, &mean, &var}) || !ln_rows(x, gamma, m, d) || dy.shape() != x.shape() ||
      mean.numel() != m || var.numel() != m)
    return ReferenceBackend::layer_norm_backward(dy, x, gamma, mean, var, eps);
  LayerNormGrads g{output(x.shape()), output(gamma.shape()), output(gamma.shape())};
  return guarded(
      "layer_norm_backward",
      [&] {
        Impl& im = *impl_;
        Key key(Op::kLayerNormBwd);
        key.push(m).push(d).push_float(eps);
        auto [e, s] = im.acquire<BnEntry>(key, [&] {
          using LB = dnnl::layer_normalization_backward;
          const auto feps = static_cast<float>(eps);
          const md data({m, d}, dt::f32, tag::ab);
          const md stat({m}, dt::f32, tag::a);
          const auto hint = ln_fwd_pd(im, m, d, feps);
          const LB::primitive_desc pd(LB::desc(dnnl::prop_kind::backward, data, data, stat, feps, kScaleShift),
                                      im.attr, im.eng, hint);
          return norm_backward_entry<LB>(im, pd, md({d}, dt::f32, tag::x));
        });
        run_norm_backward(s, *e, dy, x, mean, var, gamma, g.dx, g.dgamma, g.dbeta);
        return g;
      },
      [&] { return shapes({{"dy", &dy}, {"x", &x}, {"gamma", &gamma}, {"mean", &mean}, {"var", &var}}); });
}

Tensor OneDnnBackend::embedding_forward(const Tensor& table, const Tensor& indices) {
  if (!all_f32({&table}) || table.rank() != 2 || table.dim(1) <= 0 || !indices.defined() ||
      !indices_in_range(indices, table.dim(0)))
    return ReferenceBackend::embedding_forward(table, indices);
  const std::int64_t e = table.dim(1);
  std::vector<std::int64_t> out_dims = indices.shape().dims();
  out_dims.push_back(e);
  Tensor y = output(Shape(out_dims));  // [S..., E]
  const float* src = table.data<float>();
  float* dst = y.data<float>();
  const IndexView idx(indices);
  onednn_detail::parallel_for(indices.numel(), std::max<std::int64_t>(1, 4096 / e),
                              [src, dst, e, idx](std::int64_t begin, std::int64_t end) {
                                for (std::int64_t i = begin; i < end; ++i)
                                  std::memcpy(dst + i * e, src + idx[i] * e, static_cast<std::size_t>(e) * sizeof(float));
                              });
  return y;
}

Tensor OneDnnBackend::embedding_backward(const Tensor& dy, const Tensor& indices, const Shape& table_shape,
                                         std::int64_t padding_idx) {
  if (!all_f32({&dy}) || table_shape.rank() != 2 || table_shape.numel() == 0 || !indices.defined() ||
      dy.rank() == 0 || dy.numel() != indices.numel() * table_shape[1] ||
      dy.dim(static_cast<std::int64_t>(dy.rank()) - 1) != table_shape[1] || !indices_in_range(indices, table_shape[0]))
    return ReferenceBackend::embedding_backward(dy, indices, table_shape, padding_idx);
  const std::int64_t v = table_shape[0], e = table_shape[1], n = indices.numel();
  Tensor dt = output(table_shape);
  float* out = dt.data<float>();
  const float* g = dy.data<float>();
  const IndexView idx(indices);
  // Each thread owns a range of table rows and scans every index, so no two threads add into the
  // same row and the summation order (by position) is the same for any thread count.
  onednn_detail::parallel_for(v, std::max<std::int64_t>(1, 4096 / e),
                              [out, g, e, n, padding_idx, idx](std::int64_t begin, std::int64_t end) {
                                std::memset(out + begin * e, 0,
                                            static_cast<std::size_t>((end - begin) * e) * sizeof(float));
                                for (std::int64_t i = 0; i < n; ++i) {
                                  const std::int64_t row = idx[i];
                                  if (row < begin || row >= end || row == padding_idx) continue;
                                  float* __restrict o = out + row * e;
                                  const float* __restrict s = g + i * e;
                                  for (std::int64_t j = 0; j < e; ++j) o[j] += s[j];
                                }
                              });
  return dt;
}

// ---- in-place helpers: plain loops the compiler vectorizes, split over oneDNN's threads ----
namespace {
constexpr std::int64_t kMinChunk = std::int64_t{1} << 15;  // elements per thread worth a fork
}  // namespace

void OneDnnBackend::axpy_(Tensor& dst, const Tensor& src, double alpha) {
  if (!all_f32({&dst, &src}) || dst.shape() != src.shape() || dst.shares_storage(src))
    return ReferenceBackend::axpy_(dst, src, alpha);
  float* d = dst.data<float>();
  const float* s = src.data<float>();
  const float a = static_cast<float>(alpha);
  onednn_detail::parallel_for(dst.numel(), kMinChunk, [=](std::int64_t begin, std::int64_t end) {
    float* __restrict dd = d;
    const float* __restrict ss = s;
    for (std::int64_t i = begin; i < end; ++i) dd[i] += a * ss[i];
  });
}

void OneDnnBackend::sgd_update(Tensor& param, const Tensor& grad, double lr, double weight_decay) {
  if (!all_f32({&param, &grad}) || param.shape() != grad.shape() || param.shares_storage(grad))
    return ReferenceBackend::sgd_update(param, grad, lr, weight_decay);
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  const float flr = static_cast<float>(lr), wd = static_cast<float>(weight_decay);
  onednn_detail::parallel_for(param.numel(), kMinChunk, [=](std::int64_t begin, std::int64_t end) {
    float* __restrict pp = p;
    const float* __restrict gg = g;
    for (std::int64_t i = begin; i < end; ++i) pp[i] -= flr * (gg[i] + wd * pp[i]);
  });
}

void OneDnnBackend::momentum_update(Tensor& param, const Tensor& grad, Tensor& moments, double lr, double momentum,
                                    double weight_decay, bool nesterov) {
  if (!all_f32({&param, &grad, &moments}) || param.shape() != grad.shape() || param.shape() != moments.shape() ||
      param.shares_storage(grad) || param.shares_storage(moments) || grad.shares_storage(moments))
    return ReferenceBackend::momentum_update(param, grad, moments, lr, momentum, weight_decay, nesterov);
  float* p = param.data<float>();
  float* m = moments.data<float>();
  const float* g = grad.data<float>();
  const float flr = static_cast<float>(lr), mu = static_cast<float>(momentum), wd = static_cast<float>(weight_decay);
  onednn_detail::parallel_for(param.numel(), kMinChunk, [=](std::int64_t begin, std::int64_t end) {
    float* __restrict pp = p;
    float* __restrict mm = m;
    const float* __restrict gg = g;
    if (nesterov) {
      for (std::int64_t i = begin; i < end; ++i) {
        const float gi = gg[i] + wd * pp[i];
        const float mi = mu * mm[i] + gi;
        mm[i] = mi;
        pp[i] -= flr * (gi + mu * mi);
      }
    } else {
      for (std::int64_t i = begin; i < end; ++i) {
        const float gi = gg[i] + wd * pp[i];
        const float mi = mu * mm[i] + gi;
        mm[i] = mi;
        pp[i] -= flr * mi;
      }
    }
  });
}

}  // namespace anvil
