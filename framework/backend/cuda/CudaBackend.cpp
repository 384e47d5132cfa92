#include "framework/backend/cuda/CudaBackend.h"

#include "framework/backend/detail/ArgChecks.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "framework/backend/cuda/Cuda.h"
#include "framework/backend/cuda/CudaAllocator.h"
#include "framework/backend/cuda/CudaCheck.h"
#include "framework/backend/cuda/CudaContext.h"
#include "framework/backend/cuda/CudaKernels.h"
#include "framework/core/Error.h"

namespace anvil::cuda {

static_assert(static_cast<int>(EltwiseKind::kRelu) == 0 && static_cast<int>(EltwiseKind::kGelu) == 3 &&
                  static_cast<int>(EltwiseKind::kAbs) == 8 && static_cast<int>(EltwiseKind::kLinear) == 9,
              "CudaKernels.cu numbers EltwiseKind in declaration order");
static_assert(static_cast<int>(BinaryKind::kAdd) == 0 && static_cast<int>(BinaryKind::kMin) == 5,
              "CudaKernels.cu numbers BinaryKind in declaration order");
static_assert(static_cast<int>(ReduceKind::kSum) == 0 && static_cast<int>(ReduceKind::kMean) == 1 &&
                  static_cast<int>(ReduceKind::kMax) == 2 && static_cast<int>(ReduceKind::kMin) == 3,
              "CudaKernels.cu numbers ReduceKind in declaration order");

namespace {

using i64 = std::int64_t;
using backend_detail::AxisGeom;
using backend_detail::axis_geom;
using backend_detail::BnGeom;
using backend_detail::bn_geom;
using backend_detail::dispatch;
using backend_detail::require_indices;
using backend_detail::require_labels;
using backend_detail::require_same_shape;
using backend_detail::require_shape;
using backend_detail::require_table_shape;

// ---- options and profiling (process-wide) ----

std::mutex& options_mu() {
  static std::mutex m;
  return m;
}
CudaOptions& options_slot() {
  static CudaOptions o;
  return o;
}

std::atomic<bool> g_profiling{false};
struct PendingEvent {
  std::string op;
  int device = 0;
  cudaEvent_t start = nullptr, stop = nullptr;
};
std::mutex& profile_mu() {
  static std::mutex m;
  return m;
}
std::vector<PendingEvent>& pending() {
  static std::vector<PendingEvent> p;
  return p;
}
std::map<std::string, double>& totals() {
  static std::map<std::string, double> t;
  return t;
}

thread_local int t_op_depth = 0;

// Brackets one backend op with CUDA events on the calling thread's stream while profiling is on. Only
// the outermost op of a thread is timed (ops that call other ops, e.g. linear_backward_weights -> reduce,
// count once, under their own name).
class OpTimer {
 public:
  OpTimer(const char* op, int device) {
    if (t_op_depth++ > 0 || !g_profiling.load(std::memory_order_relaxed)) return;
    ev_.op = op;
    ev_.device = device;
    try {
      cudaStream_t s = handles(device).stream();
      ANVIL_CUDA_CHECK(cudaEventCreate(&ev_.start));
      ANVIL_CUDA_CHECK(cudaEventCreate(&ev_.stop));
      ANVIL_CUDA_CHECK(cudaEventRecord(ev_.start, s));
    } catch (...) {
      --t_op_depth;  // the destructor of a throwing constructor does not run
      if (ev_.start) cudaEventDestroy(ev_.start);
      if (ev_.stop) cudaEventDestroy(ev_.stop);
      throw;
    }
    active_ = true;
  }
  ~OpTimer() {
    --t_op_depth;
    if (!active_) return;
    try {  // destructors must not throw: a failed record drops this sample
      if (cudaEventRecord(ev_.stop, handles(ev_.device).stream()) == cudaSuccess) {
        std::lock_guard<std::mutex> lock(profile_mu());
        pending().push_back(ev_);
        return;
      }
      (void)cudaGetLastError();
    } catch (...) {
    }
    cudaEventDestroy(ev_.start);
    cudaEventDestroy(ev_.stop);
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  PendingEvent ev_;
  bool active_ = false;
};

// ---- RAII cuDNN descriptors ----

// Owns one cuDNN descriptor: created by Create (whose name `Name` a failure reports), destroyed by Destroy.
template <typename D, cudnnStatus_t (*Create)(D*), cudnnStatus_t (*Destroy)(D), const char* Name>
struct CudnnDesc {
  D d = nullptr;
  CudnnDesc() {
    const cudnnStatus_t st = Create(&d);
    if (st != CUDNN_STATUS_SUCCESS) throw_cudnn_error(Name, st, __FILE__, __LINE__);
  }
  ~CudnnDesc() { Destroy(d); }
  CudnnDesc(const CudnnDesc&) = delete;
  CudnnDesc& operator=(const CudnnDesc&) = delete;
};
constexpr char kCreateTensorDesc[] = "cudnnCreateTensorDescriptor(&d)";
constexpr char kCreateFilterDesc[] = "cudnnCreateFilterDescriptor(&d)";
constexpr char kCreateConvDesc[] = "cudnnCreateConvolutionDescriptor(&d)";
constexpr char kCreateActivationDesc[] = "cudnnCreateActivationDescriptor(&d)";
using TensorDesc =
    CudnnDesc<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor, kCreateTensorDesc>;
using FilterDesc =
    CudnnDesc<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor, kCreateFilterDesc>;
using ConvDesc = CudnnDesc<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                           cudnnDestroyConvolutionDescriptor, kCreateConvDesc>;
using ActivationDesc = CudnnDesc<cudnnActivationDescriptor_t, cudnnCreateActivationDescriptor,
                                 cudnnDestroyActivationDescriptor, kCreateActivationDesc>;

// The cuDNN activation mode for eltwise `kind`, when cuDNN has it with the reference's semantics:
// plain ReLU (alpha 0), sigmoid, tanh, on fewer than 2^31 elements. Others run as Anvil kernels.
bool cudnn_activation(EltwiseKind kind, double alpha, std::int64_t n, cudnnActivationMode_t& mode) {
  if (n <= 0 || n >= (std::int64_t{1} << 31)) return false;
  switch (kind) {
    case EltwiseKind::kRelu:
      mode = CUDNN_ACTIVATION_RELU;
      return alpha == 0.0;
    case EltwiseKind::kSigmoid: mode = CUDNN_ACTIVATION_SIGMOID; return true;
    case EltwiseKind::kTanh: mode = CUDNN_ACTIVATION_TANH; return true;
    default: return false;
  }
}

int to_int(const char* fn, i64 v) {
  if (v < 0 || v > std::numeric_limits<int>::max())
    detail::throw_error(fn, fmt::format("dimension {} does not fit cuDNN's int", v));
  return static_cast<int>(v);
}

cudnnDataType_t cudnn_type(DType t) { return t == DType::kF64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT; }

void set_4d(const char* fn, TensorDesc& td, DType dt, i64 n, i64 c, i64 h, i64 w) {
  ANVIL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(td.d, CUDNN_TENSOR_NCHW, cudnn_type(dt), to_int(fn, n), to_int(fn, c),
                                               to_int(fn, h), to_int(fn, w)));
}

// ---- argument checks ----

void require_float(const char* fn, const char* what, const Tensor& t) {
  if (!t.defined()) detail::throw_error(fn, fmt::format("{} is undefined", what));
  if (!is_compute_type(t.dtype()))
    detail::throw_error(fn, fmt::format("{} must be float32 or float64, got {}", what, t.desc()));
}
void require_same_dtype(const char* fn, const char* what, const Tensor& t, const char* ref_what, const Tensor& ref) {
  require_float(fn, what, t);
  if (t.dtype() != ref.dtype())
    detail::throw_error(fn, fmt::format("dtype mismatch: {} {} vs {} {}", what, t.desc(), ref_what, ref.desc()));
}
template <typename T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

struct ConvShape {
  i64 n, c, h, w, k, cg, r, s, oh, ow;
};

ConvShape conv_shape(const char* fn, const Shape& x, const Shape& w, const Conv2dParams& p) {
  if (x.rank() != 4) detail::throw_error(fn, fmt::format("input must be [N,C,H,W], got {}", x.str()));
  if (w.rank() != 4) detail::throw_error(fn, fmt::format("weight must be [K,C/groups,R,S], got {}", w.str()));
  if (p.groups < 1 || w[0] % p.groups != 0)
    detail::throw_error(fn, fmt::format("out channels {} not divisible by groups {}", w[0], p.groups));
  if (x[1] != w[1] * p.groups)
    detail::throw_error(fn, fmt::format("input {} has {} channels but weight {} with groups={} expects {}", x.str(),
                                        x[1], w.str(), p.groups, w[1] * p.groups));
  if (p.pad_top < 0 || p.pad_bottom < 0 || p.pad_left < 0 || p.pad_right < 0)
    detail::throw_error(fn, fmt::format("padding must be >= 0, got top {} bottom {} left {} right {}", p.pad_top,
                                        p.pad_bottom, p.pad_left, p.pad_right));
  return {x[0], x[1], x[2], x[3], w[0], w[1], w[2], w[3],
          conv_out_size(x[2], w[2], p.stride_h, p.pad_top, p.pad_bottom, p.dilation_h),
          conv_out_size(x[3], w[3], p.stride_w, p.pad_left, p.pad_right, p.dilation_w)};
}

bool symmetric(const Conv2dParams& p) { return p.pad_top == p.pad_bottom && p.pad_left == p.pad_right; }

// Descriptors of one convolution.
struct ConvDescs {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
};

void fill_conv_descs(const char* fn, ConvDescs& d, const ConvShape& g, const Conv2dParams& p, DType dt,
                     bool allow_tf32) {
  set_4d(fn, d.x, dt, g.n, g.c, g.h, g.w);
  set_4d(fn, d.y, dt, g.n, g.k, g.oh, g.ow);
  ANVIL_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d.w.d, cudnn_type(dt), CUDNN_TENSOR_NCHW, to_int(fn, g.k),
                                               to_int(fn, g.cg), to_int(fn, g.r), to_int(fn, g.s)));
  ANVIL_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d.conv.d, to_int(fn, p.pad_top), to_int(fn, p.pad_left),
                                                    to_int(fn, p.stride_h), to_int(fn, p.stride_w),
                                                    to_int(fn, p.dilation_h), to_int(fn, p.dilation_w),
                                                    CUDNN_CROSS_CORRELATION, cudnn_type(dt)));
  ANVIL_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d.conv.d, to_int(fn, p.groups)));
  ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(
      d.conv.d, (allow_tf32 && dt == DType::kF32) ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
}

std::string conv_key(const char* dir, const ConvShape& g, const Conv2dParams& p, DType dt, const CudaOptions& o) {
  return fmt::format("{} {} x{},{},{},{} w{},{},{},{} s{},{} p{},{} d{},{} g{} tf32={} det={} bench={}", dir,
                     dtype_name(dt), g.n, g.c, g.h, g.w, g.k, g.cg, g.r, g.s, p.stride_h, p.stride_w, p.pad_top,
                     p.pad_left, p.dilation_h, p.dilation_w, p.groups, o.allow_tf32, o.deterministic, o.benchmark);
}

// The cached algorithm choice for `key`, or find()'s, which is then cached (find runs outside the lock;
// two threads may both find, with the same result).
template <typename Find>
CudaBackend::AlgoChoice cached_algo(std::mutex& mu, std::map<std::string, CudaBackend::AlgoChoice>& cache,
                                    const std::string& key, Find&& find) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  const CudaBackend::AlgoChoice c = find();
  std::lock_guard<std::mutex> lock(mu);
  cache[key] = c;
  return c;
}

// Picks the first acceptable entry of cuDNN's ranked list: success, deterministic when asked, and with
// TF32 off (float32) an entry that runs in CUDNN_FMA_MATH. When no entry reports FMA math, the first
// successful one runs with CUDNN_FMA_MATH forced, so TF32 is never used unless allowed.
template <typename Perf>
CudaBackend::AlgoChoice pick(const char* fn, const Perf* perf, int count, const CudaOptions& o, DType dt) {
  const bool fma_only = !o.allow_tf32 && dt == DType::kF32;
  const Perf* first_ok = nullptr;
  for (int i = 0; i < count; ++i) {
    const Perf& q = perf[i];
    if (q.status != CUDNN_STATUS_SUCCESS) continue;
    if (o.deterministic && q.determinism != CUDNN_DETERMINISTIC) continue;
    if (!first_ok) first_ok = &q;
    if (fma_only && q.mathType != CUDNN_FMA_MATH) continue;
    return {static_cast<int>(q.algo), static_cast<int>(q.mathType), q.memory};
  }
  if (first_ok)
    return {static_cast<int>(first_ok->algo), static_cast<int>(fma_only ? CUDNN_FMA_MATH : first_ok->mathType),
            first_ok->memory};
  detail::throw_error(fn, fmt::format("cuDNN offers no {}convolution algorithm for this shape",
                                      o.deterministic ? "deterministic " : ""));
}

// Asymmetric padding (cuDNN pads symmetrically): the input is zero-padded explicitly and the convolution
// runs unpadded on it; backward-data crops the padded gradient back.
Conv2dParams unpadded(const Conv2dParams& p) {
  Conv2dParams q = p;
  q.pad_top = q.pad_bottom = q.pad_left = q.pad_right = 0;
  return q;
}
Shape padded_shape(const Shape& x, const Conv2dParams& p) {
  return Shape{x[0], x[1], x[2] + p.pad_top + p.pad_bottom, x[3] + p.pad_left + p.pad_right};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// public API (Cuda.h)
// ---------------------------------------------------------------------------------------------

int device_count_checked() {
  int n = 0;
  ANVIL_CUDA_CHECK(cudaGetDeviceCount(&n));
  return n;
}

void set_device_checked(int device) { ANVIL_CUDA_CHECK(cudaSetDevice(device)); }

void set_cuda_options(const CudaOptions& options) {
  {
    std::lock_guard<std::mutex> lock(options_mu());
    options_slot() = options;
  }
  std::string reason;
  // Algorithm caches are keyed by the options too; clearing keeps them small.
  for (int i = 0, n = device_count(&reason); i < n; ++i) static_cast<CudaBackend&>(cuda_backend(i)).clear_algorithm_cache();
}

CudaOptions cuda_options() {
  std::lock_guard<std::mutex> lock(options_mu());
  return options_slot();
}

Backend& cuda_backend(int index) {
  ANVIL_CHECK(index >= 0 && index < 64, "invalid CUDA device index {}", index);
  static std::mutex mu;
  static std::unique_ptr<CudaBackend> backends[64];
  std::lock_guard<std::mutex> lock(mu);
  if (!backends[index]) backends[index] = std::make_unique<CudaBackend>(index);
  return *backends[index];
}

CudaMemoryStats memory_stats() {
  const AllocatorStats s = allocator_stats();
  return {s.cuda_malloc_calls, s.cache_hits, s.bytes_in_use, s.bytes_cached};
}
void reset_memory_stats() { reset_allocator_stats(); }

std::size_t conv_algorithm_cache_size(int index) {
  return static_cast<CudaBackend&>(cuda_backend(index)).algorithm_cache_size();
}

void set_profiling(bool on) { g_profiling.store(on); }

std::map<std::string, double> profile_ms() {
  std::vector<PendingEvent> evs;
  {
    std::lock_guard<std::mutex> lock(profile_mu());
    evs.swap(pending());
  }
  std::map<std::string, double> add;
  for (auto& e : evs) {
    float ms = 0;
    ANVIL_CUDA_CHECK(cudaEventSynchronize(e.stop));
    ANVIL_CUDA_CHECK(cudaEventElapsedTime(&ms, e.start, e.stop));
    add[e.op] += ms;
    cudaEventDestroy(e.start);
    cudaEventDestroy(e.stop);
  }
  std::lock_guard<std::mutex> lock(profile_mu());
  for (auto& [k, v] : add) totals()[k] += v;
  return totals();
}

void reset_profile() {
  (void)profile_ms();
  std::lock_guard<std::mutex> lock(profile_mu());
  totals().clear();
}

void synchronize(int index) { ANVIL_CUDA_CHECK(cudaStreamSynchronize(handles(index).stream())); }

// ---------------------------------------------------------------------------------------------
// CudaBackend
// ---------------------------------------------------------------------------------------------

CudaBackend::CudaBackend(int device_index) : index_(device_index) {}
CudaBackend::~CudaBackend() = default;

std::size_t CudaBackend::algorithm_cache_size() const {
  std::lock_guard<std::mutex> lock(algo_mu_);
  return algos_.size();
}

void CudaBackend::clear_algorithm_cache() {
  std::lock_guard<std::mutex> lock(algo_mu_);
  algos_.clear();
}

Tensor CudaBackend::on_device(const char* fn, const char* what, const Tensor& t) const {
  if (!t.defined()) return t;
  const Device d = t.device();
  if (d == device()) return t;
  if (d.is_cpu()) return t.to(device());
  detail::throw_error(fn, fmt::format("{} {} is on {}, but this backend computes on {}", what, t.desc(), d.str(),
                                      device().str()));
}

Tensor CudaBackend::empty(const Shape& s, DType dt) const { return Tensor::empty(s, dt, device()); }

Tensor CudaBackend::pad_input(const Tensor& x, const Conv2dParams& p) {
  const Shape ps = padded_shape(x.shape(), p);
  Tensor xp = empty(ps, x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::pad_planes<T>(ptr<T>(x), ptr<T>(xp), x.dim(0) * x.dim(1), x.dim(2), x.dim(3), ps[2], ps[3], p.pad_top,
                           p.pad_left, handles(index_).stream());
  });
  return xp;
}

// c[batch, M, N] = op(a) op(b), row-major, through column-major cuBLAS: cᵀ = op(b)ᵀ op(a)ᵀ.
void CudaBackend::gemm(const Tensor& a, const Tensor& b, Tensor& c, i64 batch, i64 m, i64 k, i64 n, bool ta, bool tb) {
  if (batch == 0 || m == 0 || n == 0) return;
  DeviceHandles& h = handles(index_);
  const CudaOptions o = cuda_options();
  ANVIL_CUBLAS_CHECK(cublasSetMathMode(
      h.cublas(), (o.allow_tf32 && a.dtype() == DType::kF32) ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  if (k == 0) {
    ANVIL_CUDA_CHECK(cudaMemsetAsync(c.data_ptr(), 0, c.nbytes(), h.stream()));
    return;
  }
  const char* fn = "gemm";
  const int im = to_int(fn, m), in = to_int(fn, n), ik = to_int(fn, k);
  const cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int ldb = tb ? ik : in, lda = ta ? im : ik, ldc = in;
  const int ib = to_int(fn, batch);
  if (a.dtype() == DType::kF64) {
    const double one = 1.0, zero = 0.0;
    ANVIL_CUBLAS_CHECK(cublasDgemmStridedBatched(h.cublas(), opb, opa, in, im, ik, &one, ptr<double>(b), ldb, k * n,
                                                 ptr<double>(a), lda, m * k, &zero, ptr<double>(c), ldc, m * n, ib));
  } else {
    const float one = 1.0f, zero = 0.0f;
    ANVIL_CUBLAS_CHECK(cublasSgemmStridedBatched(h.cublas(), opb, opa, in, im, ik, &one, ptr<float>(b), ldb, k * n,
                                                 ptr<float>(a), lda, m * k, &zero, ptr<float>(c), ldc, m * n, ib));
  }
}

// ---- dense algebra ----

Tensor CudaBackend::matmul(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b) {
  OpTimer t("matmul", index_);
  require_float(__func__, "a", a_in);
  require_same_dtype(__func__, "b", b_in, "a", a_in);
  ANVIL_CHECK(a_in.rank() >= 2 && a_in.rank() == b_in.rank(),
              "operands must have the same rank >= 2, got a {} and b {}", a_in.desc(), b_in.desc());
  const Tensor a = on_device(__func__, "a", a_in), b = on_device(__func__, "b", b_in);
  const std::size_t r = a.rank();
  const auto& ad = a.shape().dims();
  const auto& bd = b.shape().dims();
  for (std::size_t i = 0; i + 2 < r; ++i)
    ANVIL_CHECK(ad[i] == bd[i], "leading (batch) dims differ: a {} vs b {}", a.desc(), b.desc());
  const i64 m = trans_a ? ad[r - 1] : ad[r - 2];
  const i64 k = trans_a ? ad[r - 2] : ad[r - 1];
  const i64 kb = trans_b ? bd[r - 1] : bd[r - 2];
  const i64 n = trans_b ? bd[r - 2] : bd[r - 1];
  ANVIL_CHECK(k == kb, "inner dims differ: a {}{} has K={}, b {}{} has K={}", a.desc(), trans_a ? " (transposed)" : "",
              k, b.desc(), trans_b ? " (transposed)" : "", kb);
  i64 batch = 1;
  for (std::size_t i = 0; i + 2 < r; ++i) batch *= ad[i];
  std::vector<i64> od(ad.begin(), ad.end() - 2);
  od.push_back(m);
  od.push_back(n);
  Tensor c = empty(Shape(od), a.dtype());
  gemm(a, b, c, batch, m, k, n, trans_a, trans_b);
  return c;
}

Tensor CudaBackend::linear_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in) {
  OpTimer t("linear_forward", index_);
  require_float(__func__, "x", x_in);
  require_same_dtype(__func__, "w", w_in, "x", x_in);
  ANVIL_CHECK(x_in.rank() == 2 && w_in.rank() == 2 && x_in.dim(1) == w_in.dim(1),
              "expected x [N,I] and w [O,I], got x {} and w {}", x_in.desc(), w_in.desc());
  const i64 n = x_in.dim(0), in = x_in.dim(1), out = w_in.dim(0);
  if (b_in.defined()) {
    require_same_dtype(__func__, "b", b_in, "x", x_in);
    require_shape(__func__, "bias", b_in, Shape{out});
  }
  const Tensor x = on_device(__func__, "x", x_in), w = on_device(__func__, "w", w_in),
               b = on_device(__func__, "b", b_in);
  Tensor y = empty(Shape{n, out}, x.dtype());
  gemm(x, w, y, 1, n, in, out, false, true);  // y [N,O] = x [N,I] · wᵀ
  if (b.defined()) {
    cudaStream_t s = handles(index_).stream();
    dispatch(x.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::add_channel_bias<T>(ptr<T>(y), ptr<T>(b), n, out, 1, s);
    });
  }
  return y;
}

Tensor CudaBackend::linear_backward_data(const Tensor& dy_in, const Tensor& w_in) {
  OpTimer t("linear_backward_data", index_);
  require_float(__func__, "dy", dy_in);
  require_same_dtype(__func__, "w", w_in, "dy", dy_in);
  ANVIL_CHECK(dy_in.rank() == 2 && w_in.rank() == 2 && dy_in.dim(1) == w_in.dim(0),
              "expected dy [N,O] and w [O,I], got dy {} and w {}", dy_in.desc(), w_in.desc());
  const Tensor dy = on_device(__func__, "dy", dy_in), w = on_device(__func__, "w", w_in);
  const i64 n = dy.dim(0), out = w.dim(0), in = w.dim(1);
  Tensor dx = empty(Shape{n, in}, dy.dtype());
  gemm(dy, w, dx, 1, n, out, in, false, false);
  return dx;
}

WeightGrads CudaBackend::linear_backward_weights(const Tensor& dy_in, const Tensor& x_in, bool with_bias) {
  OpTimer t("linear_backward_weights", index_);
  require_float(__func__, "dy", dy_in);
  require_same_dtype(__func__, "x", x_in, "dy", dy_in);
  ANVIL_CHECK(dy_in.rank() == 2 && x_in.rank() == 2 && dy_in.dim(0) == x_in.dim(0),
              "expected dy [N,O] and x [N,I], got dy {} and x {}", dy_in.desc(), x_in.desc());
  const Tensor dy = on_device(__func__, "dy", dy_in), x = on_device(__func__, "x", x_in);
  const i64 n = dy.dim(0), out = dy.dim(1), in = x.dim(1);
  WeightGrads g;
  g.dw = empty(Shape{out, in}, dy.dtype());
  gemm(dy, x, g.dw, 1, out, n, in, true, false);  // dyᵀ [O,N] · x [N,I]
  if (with_bias) g.db = reduce(ReduceKind::kSum, dy, Shape{1, out}).view(Shape{out});
  return g;
}

// ---- convolution ----

Tensor CudaBackend::conv2d_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const Conv2dParams& p) {
  OpTimer t("conv2d_forward", index_);
  require_float(__func__, "x", x_in);
  require_same_dtype(__func__, "w", w_in, "x", x_in);
  const ConvShape g = conv_shape(__func__, x_in.shape(), w_in.shape(), p);
  if (b_in.defined()) {
    require_same_dtype(__func__, "b", b_in, "x", x_in);
    require_shape(__func__, "bias", b_in, Shape{g.k});
  }
  const Tensor x = on_device(__func__, "x", x_in), w = on_device(__func__, "w", w_in),
               b = on_device(__func__, "b", b_in);
  if (!symmetric(p)) return conv2d_forward(pad_input(x, p), w, b, unpadded(p));
  Tensor y = empty(Shape{g.n, g.k, g.oh, g.ow}, x.dtype());
  if (y.numel() == 0) return y;
  DeviceHandles& h = handles(index_);
  const CudaOptions o = cuda_options();
  ConvDescs d;
  fill_conv_descs(__func__, d, g, p, x.dtype(), o.allow_tf32);
  const std::string key = conv_key("fwd", g, p, x.dtype(), o);
  const char* const op = __func__;  // (inside the lambda __func__ would be "operator()")
  const AlgoChoice ch = cached_algo(algo_mu_, algos_, key, [&] {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    if (o.benchmark)
      ANVIL_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(h.cudnn(), d.x.d, d.w.d, d.conv.d, d.y.d,
                                                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
    else
      ANVIL_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h.cudnn(), d.x.d, d.w.d, d.conv.d, d.y.d,
                                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
    AlgoChoice c = pick(op, perf, count, o, x.dtype());
    ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.d, static_cast<cudnnMathType_t>(c.math_type)));
    ANVIL_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h.cudnn(), d.x.d, d.w.d, d.conv.d, d.y.d,
                                                              static_cast<cudnnConvolutionFwdAlgo_t>(c.algo),
                                                              &c.workspace));
    return c;
  });
  ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.d, static_cast<cudnnMathType_t>(ch.math_type)));
  std::shared_ptr<Storage> ws = ch.workspace ? allocate_device(ch.workspace, index_) : nullptr;
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T one = 1, zero = 0;
    ANVIL_CUDNN_CHECK(cudnnConvolutionForward(h.cudnn(), &one, d.x.d, x.data_ptr(), d.w.d, w.data_ptr(), d.conv.d,
                                              static_cast<cudnnConvolutionFwdAlgo_t>(ch.algo),
                                              ws ? ws->data() : nullptr, ch.workspace, &zero, d.y.d, y.data_ptr()));
    if (b.defined()) kernels::add_channel_bias<T>(ptr<T>(y), ptr<T>(b), g.n, g.k, g.oh * g.ow, h.stream());
  });
  return y;
}

Tensor CudaBackend::conv2d_backward_data(const Tensor& dy_in, const Tensor& w_in, const Shape& x_shape,
                                         const Conv2dParams& p) {
  OpTimer t("conv2d_backward_data", index_);
  require_float(__func__, "dy", dy_in);
  require_same_dtype(__func__, "w", w_in, "dy", dy_in);
  const ConvShape g = conv_shape(__func__, x_shape, w_in.shape(), p);
  require_shape(__func__, "dy", dy_in, Shape{g.n, g.k, g.oh, g.ow});
  const Tensor dy = on_device(__func__, "dy", dy_in), w = on_device(__func__, "w", w_in);
  if (!symmetric(p)) {
    const Shape ps = padded_shape(x_shape, p);
    const Tensor dxp = conv2d_backward_data(dy, w, ps, unpadded(p));
    Tensor dx = empty(x_shape, dy.dtype());
    dispatch(dy.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::crop_planes<T>(ptr<T>(dxp), ptr<T>(dx), x_shape[0] * x_shape[1], x_shape[2], x_shape[3], ps[2], ps[3],
                              p.pad_top, p.pad_left, handles(index_).stream());
    });
    return dx;
  }
  Tensor dx = empty(x_shape, dy.dtype());
  if (dx.numel() == 0) return dx;
  DeviceHandles& h = handles(index_);
  if (dy.numel() == 0) {
    ANVIL_CUDA_CHECK(cudaMemsetAsync(dx.data_ptr(), 0, dx.nbytes(), h.stream()));
    return dx;
  }
  const CudaOptions o = cuda_options();
  ConvDescs d;
  fill_conv_descs(__func__, d, g, p, dy.dtype(), o.allow_tf32);
  const std::string key = conv_key("bwd_data", g, p, dy.dtype(), o);
  const char* const op = __func__;  // (inside the lambda __func__ would be "operator()")
  const AlgoChoice ch = cached_algo(algo_mu_, algos_, key, [&] {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int count = 0;
    if (o.benchmark)
      ANVIL_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(h.cudnn(), d.w.d, d.y.d, d.conv.d, d.x.d,
                                                                  CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
    else
      ANVIL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
          h.cudnn(), d.w.d, d.y.d, d.conv.d, d.x.d, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
    AlgoChoice c = pick(op, perf, count, o, dy.dtype());
    ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.d, static_cast<cudnnMathType_t>(c.math_type)));
    ANVIL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
        h.cudnn(), d.w.d, d.y.d, d.conv.d, d.x.d, static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), &c.workspace));
    return c;
  });
  ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.d, static_cast<cudnnMathType_t>(ch.math_type)));
  std::shared_ptr<Storage> ws = ch.workspace ? allocate_device(ch.workspace, index_) : nullptr;
  dispatch(dy.dtype(), [&](auto z) {
    using T = decltype(z);
    const T one = 1, zero = 0;
    ANVIL_CUDNN_CHECK(cudnnConvolutionBackwardData(h.cudnn(), &one, d.w.d, w.data_ptr(), d.y.d, dy.data_ptr(),
                                                   d.conv.d, static_cast<cudnnConvolutionBwdDataAlgo_t>(ch.algo),
                                                   ws ? ws->data() : nullptr, ch.workspace, &zero, d.x.d,
                                                   dx.data_ptr()));
  });
  return dx;
}

WeightGrads CudaBackend::conv2d_backward_weights(const Tensor& dy_in, const Tensor& x_in, const Shape& w_shape,
                                                 bool with_bias, const Conv2dParams& p) {
  OpTimer t("conv2d_backward_weights", index_);
  require_float(__func__, "dy", dy_in);
  require_same_dtype(__func__, "x", x_in, "dy", dy_in);
  const ConvShape g = conv_shape(__func__, x_in.shape(), w_shape, p);
  require_shape(__func__, "dy", dy_in, Shape{g.n, g.k, g.oh, g.ow});
  const Tensor dy = on_device(__func__, "dy", dy_in), x = on_device(__func__, "x", x_in);
  if (!symmetric(p)) return conv2d_backward_weights(dy, pad_input(x, p), w_shape, with_bias, unpadded(p));
  WeightGrads r;
  r.dw = empty(w_shape, dy.dtype());
  DeviceHandles& h = handles(index_);
  if (r.dw.numel() > 0 && (dy.numel() == 0 || x.numel() == 0)) {
    ANVIL_CUDA_CHECK(cudaMemsetAsync(r.dw.data_ptr(), 0, r.dw.nbytes(), h.stream()));
  } else if (r.dw.numel() > 0) {
    const CudaOptions o = cuda_options();
    ConvDescs d;
    fill_conv_descs(__func__, d, g, p, dy.dtype(), o.allow_tf32);
    const std::string key = conv_key("bwd_filter", g, p, dy.dtype(), o);
    const char* const op = __func__;  // (inside the lambda __func__ would be "operator()")
    const AlgoChoice ch = cached_algo(algo_mu_, algos_, key, [&] {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      int count = 0;
      if (o.benchmark)
        ANVIL_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(
            h.cudnn(), d.x.d, d.y.d, d.conv.d, d.w.d, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
      else
        ANVIL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            h.cudnn(), d.x.d, d.y.d, d.conv.d, d.w.d, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
      AlgoChoice c = pick(op, perf, count, o, dy.dtype());
      ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.d, static_cast<cudnnMathType_t>(c.math_type)));
      ANVIL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
          h.cudnn(), d.x.d, d.y.d, d.conv.d, d.w.d, static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo),
          &c.workspace));
      return c;
    });
    ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.d, static_cast<cudnnMathType_t>(ch.math_type)));
    std::shared_ptr<Storage> ws = ch.workspace ? allocate_device(ch.workspace, index_) : nullptr;
    dispatch(dy.dtype(), [&](auto z) {
      using T = decltype(z);
      const T one = 1, zero = 0;
      ANVIL_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h.cudnn(), &one, d.x.d, x.data_ptr(), d.y.d, dy.data_ptr(),
                                                       d.conv.d, static_cast<cudnnConvolutionBwdFilterAlgo_t>(ch.algo),
                                                       ws ? ws->data() : nullptr, ch.workspace, &zero, d.w.d,
                                                       r.dw.data_ptr()));
    });
  }
  if (with_bias) r.db = reduce(ReduceKind::kSum, dy, Shape{1, g.k, 1, 1}).view(Shape{g.k});
  return r;
}

// ---- pooling ----

namespace {
// Kernel arguments of a pooling over x [N, C, H, W].
kernels::PoolArgs pool_args(const Shape& x, const Pool2dParams& p) {
  kernels::PoolArgs a;
  a.planes = x[0] * x[1];
  a.h = x[2];
  a.w = x[3];
  a.oh = conv_out_size(a.h, p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom, 1);
  a.ow = conv_out_size(a.w, p.kernel_w, p.stride_w, p.pad_left, p.pad_right, 1);
  a.kh = p.kernel_h;
  a.kw = p.kernel_w;
  a.sh = p.stride_h;
  a.sw = p.stride_w;
  a.pt = p.pad_top;
  a.pl = p.pad_left;
  a.max = p.kind == PoolKind::kMax;
  a.count_include_pad = p.count_include_pad;
  return a;
}
}  // namespace

PoolResult CudaBackend::pool2d_forward(const Tensor& x_in, const Pool2dParams& p) {
  OpTimer t("pool2d_forward", index_);
  require_float(__func__, "x", x_in);
  ANVIL_CHECK(x_in.rank() == 4, "input must be [N,C,H,W], got {}", x_in.desc());
  ANVIL_CHECK(p.pad_top >= 0 && p.pad_bottom >= 0 && p.pad_left >= 0 && p.pad_right >= 0,
              "padding must be >= 0, got top {} bottom {} left {} right {}", p.pad_top, p.pad_bottom, p.pad_left,
              p.pad_right);
  const Tensor x = on_device(__func__, "x", x_in);
  const kernels::PoolArgs a = pool_args(x.shape(), p);
  const Shape ys{x.dim(0), x.dim(1), a.oh, a.ow};
  PoolResult r;
  r.y = empty(ys, x.dtype());
  if (a.max) r.workspace = empty(ys, DType::kI64);
  cudaStream_t s = handles(index_).stream();
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::pool_forward<T>(ptr<T>(x), ptr<T>(r.y), a.max ? ptr<i64>(r.workspace) : nullptr, a, s);
  });
  return r;
}

Tensor CudaBackend::pool2d_backward(const Tensor& dy_in, const Tensor& x_in, const PoolResult& fwd,
                                    const Pool2dParams& p) {
  OpTimer t("pool2d_backward", index_);
  require_float(__func__, "dy", dy_in);
  ANVIL_CHECK(x_in.defined() && x_in.rank() == 4, "input must be [N,C,H,W], got {}", x_in.desc());
  const kernels::PoolArgs a = pool_args(x_in.shape(), p);
  const Shape ys{x_in.dim(0), x_in.dim(1), a.oh, a.ow};
  require_shape(__func__, "dy", dy_in, ys);
  Tensor idx;
  if (a.max) {
    ANVIL_CHECK(fwd.workspace.defined() && fwd.workspace.dtype() == DType::kI64 && fwd.workspace.shape() == ys,
                "max pooling needs the int64{} argmax workspace of this backend's forward, got {}", ys.str(),
                fwd.workspace.desc());
    idx = on_device(__func__, "workspace", fwd.workspace);
  }
  const Tensor dy = on_device(__func__, "dy", dy_in);
  Tensor dx = empty(x_in.shape(), dy.dtype());
  cudaStream_t s = handles(index_).stream();
  dispatch(dy.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::pool_backward<T>(ptr<T>(dy), a.max ? ptr<i64>(idx) : nullptr, ptr<T>(dx), a, s);
  });
  return dx;
}

// ---- elementwise ----

Tensor CudaBackend::eltwise_forward(EltwiseKind kind, const Tensor& x_in, double alpha, double beta) {
  OpTimer t("eltwise_forward", index_);
  require_float(__func__, "x", x_in);
  const Tensor x = on_device(__func__, "x", x_in);
  Tensor y = empty(x.shape(), x.dtype());
  cudnnActivationMode_t mode{};
  if (cudnn_activation(kind, alpha, x.numel(), mode)) {
    DeviceHandles& h = handles(index_);
    ActivationDesc act;
    ANVIL_CUDNN_CHECK(cudnnSetActivationDescriptor(act.d, mode, CUDNN_PROPAGATE_NAN, 0.0));
    TensorDesc d;
    set_4d(__func__, d, x.dtype(), 1, 1, 1, x.numel());
    dispatch(x.dtype(), [&](auto z) {
      using T = decltype(z);
      const T one = 1, zero = 0;
      ANVIL_CUDNN_CHECK(cudnnActivationForward(h.cudnn(), act.d, &one, d.d, x.data_ptr(), &zero, d.d, y.data_ptr()));
    });
    return y;
  }
  cudaStream_t s = handles(index_).stream();
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::eltwise_forward<T>(static_cast<int>(kind), ptr<T>(x), ptr<T>(y), x.numel(), alpha, beta, s);
  });
  return y;
}

Tensor CudaBackend::eltwise_backward(EltwiseKind kind, const Tensor& dy_in, const Tensor& x_in, const Tensor& y_in,
                                     double alpha, double beta) {
  OpTimer t("eltwise_backward", index_);
  require_float(__func__, "dy", dy_in);
  require_same_dtype(__func__, "x", x_in, "dy", dy_in);
  require_same_shape(__func__, "x", x_in, "dy", dy_in);
  if (y_in.defined()) {
    require_same_dtype(__func__, "y", y_in, "dy", dy_in);
    require_same_shape(__func__, "y", y_in, "dy", dy_in);
  }
  const Tensor dy = on_device(__func__, "dy", dy_in), x = on_device(__func__, "x", x_in),
               y = on_device(__func__, "y", y_in);
  Tensor dx = empty(dy.shape(), dy.dtype());
  cudnnActivationMode_t mode{};
  if (y.defined() && cudnn_activation(kind, alpha, dy.numel(), mode)) {
    DeviceHandles& h = handles(index_);
    ActivationDesc act;
    ANVIL_CUDNN_CHECK(cudnnSetActivationDescriptor(act.d, mode, CUDNN_PROPAGATE_NAN, 0.0));
    TensorDesc d;
    set_4d(__func__, d, dy.dtype(), 1, 1, 1, dy.numel());
    dispatch(dy.dtype(), [&](auto z) {
      using T = decltype(z);
      const T one = 1, zero = 0;
      ANVIL_CUDNN_CHECK(cudnnActivationBackward(h.cudnn(), act.d, &one, d.d, y.data_ptr(), d.d, dy.data_ptr(), d.d,
                                                x.data_ptr(), &zero, d.d, dx.data_ptr()));
    });
    return dx;
  }
  cudaStream_t s = handles(index_).stream();
  dispatch(dy.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::eltwise_backward<T>(static_cast<int>(kind), ptr<T>(dy), ptr<T>(x), y.defined() ? ptr<T>(y) : nullptr,
                                 ptr<T>(dx), dy.numel(), alpha, beta, s);
  });
  return dx;
}

Tensor CudaBackend::binary(BinaryKind kind, const Tensor& a_in, const Tensor& b_in) {
  OpTimer t("binary", index_);
  require_float(__func__, "a", a_in);
  require_same_dtype(__func__, "b", b_in, "a", a_in);
  const Shape os = broadcast_shapes(a_in.shape(), b_in.shape());
  ANVIL_CHECK(os.rank() <= static_cast<std::size_t>(kernels::kMaxRank), "rank {} exceeds the CUDA backend's limit {}",
              os.rank(), kernels::kMaxRank);
  const Tensor a = on_device(__func__, "a", a_in), b = on_device(__func__, "b", b_in);
  Tensor c = empty(os, a.dtype());
  kernels::Dims dims;
  dims.rank = static_cast<int>(os.rank());
  const std::vector<i64> as = contiguous_strides(a.shape()), bs = contiguous_strides(b.shape());
  const std::size_t r = os.rank();
  for (std::size_t i = 0; i < r; ++i) {
    dims.d[i] = os.dims()[i];
    const std::size_t la = r - a.rank(), lb = r - b.rank();
    dims.s0[i] = (i < la || a.shape().dims()[i - la] == 1) ? 0 : as[i - la];
    dims.s1[i] = (i < lb || b.shape().dims()[i - lb] == 1) ? 0 : bs[i - lb];
  }
  cudaStream_t s = handles(index_).stream();
  dispatch(a.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::binary<T>(static_cast<int>(kind), ptr<T>(a), ptr<T>(b), ptr<T>(c), dims, c.numel(), s);
  });
  return c;
}

Tensor CudaBackend::reduce(ReduceKind kind, const Tensor& x_in, const Shape& out_shape) {
  OpTimer t("reduce", index_);
  require_float(__func__, "x", x_in);
  ANVIL_CHECK(out_shape.rank() == x_in.rank(), "out_shape {} must have the rank of the input {}", out_shape.str(),
              x_in.desc());
  const std::size_t r = x_in.rank();
  ANVIL_CHECK(r <= static_cast<std::size_t>(kernels::kMaxRank), "rank {} exceeds the CUDA backend's limit {}", r,
              kernels::kMaxRank);
  for (std::size_t i = 0; i < r; ++i)
    ANVIL_CHECK(out_shape.dims()[i] == x_in.shape().dims()[i] || out_shape.dims()[i] == 1,
                "out_shape {} is not a reduction of {}: dim {} is {}, expected {} or 1", out_shape.str(), x_in.desc(),
                i, out_shape.dims()[i], x_in.shape().dims()[i]);
  const i64 on = out_shape.numel();
  const i64 count = on == 0 ? 0 : x_in.numel() / on;
  if ((kind == ReduceKind::kMax || kind == ReduceKind::kMin) && count == 0 && on > 0)
    ANVIL_THROW("cannot take the {} of an empty input {}", kind == ReduceKind::kMax ? "max" : "min", x_in.desc());
  const Tensor x = on_device(__func__, "x", x_in);
  Tensor y = empty(out_shape, x.dtype());
  const std::vector<i64> xs = contiguous_strides(x.shape());
  kernels::Dims out, red;
  out.rank = red.rank = static_cast<int>(r);
  for (std::size_t i = 0; i < r; ++i) {
    const bool reduced = out_shape.dims()[i] == 1;
    out.d[i] = out_shape.dims()[i];
    out.s0[i] = reduced ? 0 : xs[i];
    red.d[i] = reduced ? x.shape().dims()[i] : 1;
    red.s0[i] = reduced ? xs[i] : 0;
  }
  cudaStream_t s = handles(index_).stream();
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::reduce<T>(static_cast<int>(kind), ptr<T>(x), ptr<T>(y), on, count, out, red, s);
  });
  return y;
}

// ---- softmax (cuDNN, channel mode over [outer, L, inner, 1]) ----

namespace {
}  // namespace

Tensor CudaBackend::softmax_forward(const Tensor& x_in, std::int64_t axis, bool log) {
  OpTimer t("softmax_forward", index_);
  require_float(__func__, "x", x_in);
  const AxisGeom g = axis_geom(__func__, x_in, axis);
  const Tensor x = on_device(__func__, "x", x_in);
  Tensor y = empty(x.shape(), x.dtype());
  if (x.numel() == 0) return y;
  DeviceHandles& h = handles(index_);
  TensorDesc d;
  set_4d(__func__, d, x.dtype(), g.outer, g.len, g.inner, 1);
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T one = 1, zero = 0;
    ANVIL_CUDNN_CHECK(cudnnSoftmaxForward(h.cudnn(), log ? CUDNN_SOFTMAX_LOG : CUDNN_SOFTMAX_ACCURATE,
                                          CUDNN_SOFTMAX_MODE_CHANNEL, &one, d.d, x.data_ptr(), &zero, d.d,
                                          y.data_ptr()));
  });
  return y;
}

Tensor CudaBackend::softmax_backward(const Tensor& dy_in, const Tensor& y_in, std::int64_t axis, bool log) {
  OpTimer t("softmax_backward", index_);
  require_float(__func__, "dy", dy_in);
  require_same_dtype(__func__, "y", y_in, "dy", dy_in);
  require_same_shape(__func__, "y", y_in, "dy", dy_in);
  const AxisGeom g = axis_geom(__func__, y_in, axis);
  const Tensor dy = on_device(__func__, "dy", dy_in), y = on_device(__func__, "y", y_in);
  Tensor dx = empty(y.shape(), y.dtype());
  if (y.numel() == 0) return dx;
  DeviceHandles& h = handles(index_);
  TensorDesc d;
  set_4d(__func__, d, y.dtype(), g.outer, g.len, g.inner, 1);
  dispatch(y.dtype(), [&](auto z) {
    using T = decltype(z);
    const T one = 1, zero = 0;
    ANVIL_CUDNN_CHECK(cudnnSoftmaxBackward(h.cudnn(), log ? CUDNN_SOFTMAX_LOG : CUDNN_SOFTMAX_ACCURATE,
                                           CUDNN_SOFTMAX_MODE_CHANNEL, &one, d.d, y.data_ptr(), d.d, dy.data_ptr(),
                                           &zero, d.d, dx.data_ptr()));
  });
  return dx;
}

// ---- batch norm ----

namespace {
void require_channel_vector(const char* fn, const char* what, const Tensor& t, const Tensor& x) {
  require_same_dtype(fn, what, t, "x", x);
  if (t.shape() != Shape{x.dim(1)})
    detail::throw_error(fn, fmt::format("{} {} does not match the {} channels of input {}", what, t.desc(), x.dim(1),
                                        x.desc()));
}
}  // namespace

BatchNormTrainResult CudaBackend::batch_norm_forward_training(const Tensor& x_in, const Tensor& gamma_in,
                                                              const Tensor& beta_in, double eps) {
  OpTimer t("batch_norm_forward_training", index_);
  require_float(__func__, "x", x_in);
  const BnGeom g = bn_geom(__func__, x_in);
  require_channel_vector(__func__, "gamma", gamma_in, x_in);
  require_channel_vector(__func__, "beta", beta_in, x_in);
  ANVIL_CHECK(g.n * g.hw > 0, "input {} has no values per channel", x_in.desc());
  const Tensor x = on_device(__func__, "x", x_in), gamma = on_device(__func__, "gamma", gamma_in),
               beta = on_device(__func__, "beta", beta_in);
  BatchNormTrainResult r;
  r.y = empty(x.shape(), x.dtype());
  r.mean = empty(Shape{g.c}, x.dtype());
  r.var = empty(Shape{g.c}, x.dtype());
  // Per-(channel, chunk) partials of the two-stage reduction (cached allocator: no cudaMalloc once warm;
  // releasing it at return is safe, later work on this stream runs after the kernels that use it).
  const Tensor ws = empty(Shape{kernels::bn_workspace_doubles(g.n, g.c, g.hw)}, DType::kF64);
  cudaStream_t s = handles(index_).stream();
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::bn_forward_training<T>(ptr<T>(x), ptr<T>(gamma), ptr<T>(beta), ptr<T>(r.y), ptr<T>(r.mean),
                                    ptr<T>(r.var), g.n, g.c, g.hw, eps, ptr<double>(ws), s);
  });
  return r;
}

Tensor CudaBackend::batch_norm_forward_inference(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in,
                                                 const Tensor& mean_in, const Tensor& var_in, double eps) {
  OpTimer t("batch_norm_forward_inference", index_);
  require_float(__func__, "x", x_in);
  const BnGeom g = bn_geom(__func__, x_in);
  require_channel_vector(__func__, "gamma", gamma_in, x_in);
  require_channel_vector(__func__, "beta", beta_in, x_in);
  require_channel_vector(__func__, "mean", mean_in, x_in);
  require_channel_vector(__func__, "var", var_in, x_in);
  const Tensor x = on_device(__func__, "x", x_in), gamma = on_device(__func__, "gamma", gamma_in),
               beta = on_device(__func__, "beta", beta_in), mean = on_device(__func__, "mean", mean_in),
               var = on_device(__func__, "var", var_in);
  Tensor y = empty(x.shape(), x.dtype());
  cudaStream_t s = handles(index_).stream();
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::bn_forward_inference<T>(ptr<T>(x), ptr<T>(gamma), ptr<T>(beta), ptr<T>(mean), ptr<T>(var), ptr<T>(y),
                                     g.n, g.c, g.hw, eps, s);
  });
  return y;
}

BatchNormGrads CudaBackend::batch_norm_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& gamma_in,
                                                const Tensor& mean_in, const Tensor& var_in, double eps) {
  OpTimer t("batch_norm_backward", index_);
  require_float(__func__, "x", x_in);
  const BnGeom g = bn_geom(__func__, x_in);
  require_same_dtype(__func__, "dy", dy_in, "x", x_in);
  require_same_shape(__func__, "dy", dy_in, "x", x_in);
  require_channel_vector(__func__, "gamma", gamma_in, x_in);
  require_channel_vector(__func__, "mean", mean_in, x_in);
  require_channel_vector(__func__, "var", var_in, x_in);
  ANVIL_CHECK(g.n * g.hw > 0, "input {} has no values per channel", x_in.desc());
  const Tensor dy = on_device(__func__, "dy", dy_in), x = on_device(__func__, "x", x_in),
               gamma = on_device(__func__, "gamma", gamma_in), mean = on_device(__func__, "mean", mean_in),
               var = on_device(__func__, "var", var_in);
  BatchNormGrads r;
  r.dx = empty(x.shape(), x.dtype());
  r.dgamma = empty(Shape{g.c}, x.dtype());
  r.dbeta = empty(Shape{g.c}, x.dtype());
  const Tensor ws = empty(Shape{kernels::bn_workspace_doubles(g.n, g.c, g.hw)}, DType::kF64);  // as in forward
  cudaStream_t s = handles(index_).stream();
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::bn_backward<T>(ptr<T>(dy), ptr<T>(x), ptr<T>(gamma), ptr<T>(mean), ptr<T>(var), ptr<T>(r.dx),
                            ptr<T>(r.dgamma), ptr<T>(r.dbeta), g.n, g.c, g.hw, eps, ptr<double>(ws), s);
  });
  return r;
}

// ---- layer norm and embedding ----

namespace {

// x viewed as [M, D] with D = gamma.numel() (the reference's geometry and messages).
std::pair<i64, i64> ln_rows(const char* fn, const Tensor& x, const Tensor& gamma) {
  require_float(fn, "x", x);
  require_same_dtype(fn, "gamma", gamma, "x", x);
  const i64 d = gamma.numel();
  if (d <= 0 || x.numel() % d != 0)
    detail::throw_error(fn, fmt::format("input {} cannot be viewed as rows of gamma's {} elements ({})", x.desc(), d,
                                        gamma.desc()));
  return {x.numel() / d, d};
}

void require_row_stats(const char* fn, const char* what, const Tensor& t, const Tensor& x, i64 m) {
  require_same_dtype(fn, what, t, "x", x);
  if (t.numel() != m)
    detail::throw_error(fn, fmt::format("{} {} does not have one value per row ({} rows of {})", what, t.desc(), m,
                                        x.desc()));
}

// The indices on the host as int64, each checked against [0, v) with the reference's message.
std::vector<i64> host_indices(const char* fn, const Tensor& indices, i64 v) {
  require_indices(fn, indices);
  const Tensor h = indices.device().is_cpu() ? indices : indices.to(Device::cpu());
  std::vector<i64> out(static_cast<std::size_t>(h.numel()));
  for (i64 i = 0; i < h.numel(); ++i) {
    const i64 idx = h.dtype() == DType::kI32 ? static_cast<i64>(h.data<std::int32_t>()[i]) : h.data<std::int64_t>()[i];
    if (idx < 0 || idx >= v)
      detail::throw_error(fn, fmt::format("index {} at position {} of {} is outside [0, {}) (vocab_size {})", idx, i,
                                          indices.desc(), v, v));
    out[static_cast<std::size_t>(i)] = idx;
  }
  return out;
}

}  // namespace

LayerNormResult CudaBackend::layer_norm_forward(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in,
                                                double eps) {
  OpTimer t("layer_norm_forward", index_);
  const auto rows = ln_rows(__func__, x_in, gamma_in);
  const i64 m = rows.first, d = rows.second;
  require_same_dtype(__func__, "beta", beta_in, "x", x_in);
  if (beta_in.numel() != d)
    detail::throw_error(__func__, fmt::format("beta {} and gamma {} differ in size", beta_in.desc(), gamma_in.desc()));
  const Tensor x = on_device(__func__, "x", x_in), gamma = on_device(__func__, "gamma", gamma_in),
               beta = on_device(__func__, "beta", beta_in);
  LayerNormResult r;
  r.y = empty(x.shape(), x.dtype());
  r.mean = empty(Shape{m}, x.dtype());
  r.var = empty(Shape{m}, x.dtype());
  cudaStream_t s = handles(index_).stream();
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::ln_forward<T>(ptr<T>(x), ptr<T>(gamma), ptr<T>(beta), ptr<T>(r.y), ptr<T>(r.mean), ptr<T>(r.var), m, d,
                           eps, s);
  });
  return r;
}

LayerNormGrads CudaBackend::layer_norm_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& gamma_in,
                                                const Tensor& mean_in, const Tensor& var_in, double eps) {
  OpTimer t("layer_norm_backward", index_);
  const auto rows = ln_rows(__func__, x_in, gamma_in);
  const i64 m = rows.first, d = rows.second;
  require_same_dtype(__func__, "dy", dy_in, "x", x_in);
  require_same_shape(__func__, "dy", dy_in, "x", x_in);
  require_row_stats(__func__, "mean", mean_in, x_in, m);
  require_row_stats(__func__, "var", var_in, x_in, m);
  const Tensor dy = on_device(__func__, "dy", dy_in), x = on_device(__func__, "x", x_in),
               gamma = on_device(__func__, "gamma", gamma_in), mean = on_device(__func__, "mean", mean_in),
               var = on_device(__func__, "var", var_in);
  LayerNormGrads r;
  r.dx = empty(x.shape(), x.dtype());
  r.dgamma = empty(gamma.shape(), x.dtype());
  r.dbeta = empty(gamma.shape(), x.dtype());
  cudaStream_t s = handles(index_).stream();
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::ln_backward<T>(ptr<T>(dy), ptr<T>(x), ptr<T>(gamma), ptr<T>(mean), ptr<T>(var), ptr<T>(r.dx),
                            ptr<T>(r.dgamma), ptr<T>(r.dbeta), m, d, eps, s);
  });
  return r;
}

Tensor CudaBackend::embedding_forward(const Tensor& table_in, const Tensor& indices) {
  OpTimer t("embedding_forward", index_);
  require_float(__func__, "table", table_in);
  require_table_shape(__func__, table_in.shape());
  const i64 v = table_in.dim(0), e = table_in.dim(1);
  host_indices(__func__, indices, v);  // range check with the reference's message
  const Tensor table = on_device(__func__, "table", table_in), idx = on_device(__func__, "indices", indices);
  std::vector<i64> out_dims = indices.shape().dims();
  out_dims.push_back(e);
  Tensor y = empty(Shape(out_dims), table.dtype());  // [S..., E]
  cudaStream_t s = handles(index_).stream();
  dispatch(table.dtype(), [&](auto z) {
    using T = decltype(z);
    if (idx.dtype() == DType::kI32)
      kernels::embedding_forward<T, std::int32_t>(ptr<T>(table), ptr<std::int32_t>(idx), ptr<T>(y), idx.numel(), e, s);
    else
      kernels::embedding_forward<T, std::int64_t>(ptr<T>(table), ptr<std::int64_t>(idx), ptr<T>(y), idx.numel(), e, s);
  });
  return y;
}

Tensor CudaBackend::embedding_backward(const Tensor& dy_in, const Tensor& indices, const Shape& table_shape,
                                       std::int64_t padding_idx) {
  OpTimer t("embedding_backward", index_);
  require_float(__func__, "dy", dy_in);
  require_table_shape(__func__, table_shape);
  const i64 v = table_shape[0], e = table_shape[1];
  const std::vector<i64> idx = host_indices(__func__, indices, v);
  const i64 n = static_cast<i64>(idx.size());
  if (dy_in.numel() != n * e || dy_in.rank() == 0 || dy_in.dim(static_cast<i64>(dy_in.rank()) - 1) != e)
    detail::throw_error(__func__, fmt::format("dy {} does not match indices {} and table {} (expected [{}..., {}])",
                                              dy_in.desc(), indices.desc(), table_shape.str(), indices.shape().str(), e));
  // Positions grouped by row (counting sort, stable: ascending position within a row); padding_idx has none.
  std::vector<i64> start(static_cast<std::size_t>(v) + 1, 0), order;
  for (i64 r : idx)
    if (r != padding_idx) ++start[static_cast<std::size_t>(r) + 1];
  for (std::size_t k = 1; k < start.size(); ++k) start[k] += start[k - 1];
  order.resize(static_cast<std::size_t>(start.back()));
  std::vector<i64> fill(start.begin(), start.end() - 1);
  for (i64 i = 0; i < n; ++i) {
    const i64 r = idx[static_cast<std::size_t>(i)];
    if (r != padding_idx) order[static_cast<std::size_t>(fill[static_cast<std::size_t>(r)]++)] = i;
  }
  const Tensor dy = on_device(__func__, "dy", dy_in);
  const Tensor d_start = Tensor::from_vector(start, Shape{v + 1}).to(device());
  const Tensor d_order =
      order.empty() ? Tensor() : Tensor::from_vector(order, Shape{static_cast<i64>(order.size())}).to(device());
  Tensor dtable = empty(table_shape, dy.dtype());
  cudaStream_t s = handles(index_).stream();
  dispatch(dy.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::embedding_backward<T>(ptr<T>(dy), order.empty() ? nullptr : ptr<i64>(d_order), ptr<i64>(d_start),
                                   ptr<T>(dtable), v, e, s);
  });
  return dtable;
}

// ---- fused loss ----

namespace {
// The first-bad-row flag of the loss kernels, set to n ("none") on the stream, without a synchronising upload.
Tensor bad_label_flag(const Tensor& flag, i64 n, cudaStream_t s) {
  kernels::fill_i64(ptr<i64>(flag), n, 1, s);
  return flag;
}

// Reads the kernel's bad-row flag and throws like the reference when a label was out of range.
void check_bad_label(const char* fn, const Tensor& flag, const Tensor& labels, i64 n, i64 c) {
  const i64 bad = static_cast<i64>(flag.item());
  if (bad >= n) return;
  const i64 v = static_cast<i64>(labels.narrow0(bad, 1).item());
  detail::throw_error(fn, fmt::format("label at index {} is {}, outside the valid range [0, {}) of {} classes", bad, v,
                                      c, c));
}
}  // namespace

SoftmaxCrossEntropyResult CudaBackend::softmax_cross_entropy_forward(const Tensor& logits_in, const Tensor& labels_in) {
  OpTimer t("softmax_cross_entropy_forward", index_);
  require_float(__func__, "logits", logits_in);
  ANVIL_CHECK(logits_in.rank() == 2, "logits must be [N,C], got {}", logits_in.desc());
  const i64 n = logits_in.dim(0), c = logits_in.dim(1);
  require_labels(__func__, labels_in, n);
  const Tensor logits = on_device(__func__, "logits", logits_in), labels = on_device(__func__, "labels", labels_in);
  SoftmaxCrossEntropyResult r;
  r.loss = empty(Shape{n}, logits.dtype());
  r.prob = empty(logits.shape(), logits.dtype());
  if (n == 0) return r;
  cudaStream_t s = handles(index_).stream();
  const Tensor flag = bad_label_flag(empty(Shape{1}, DType::kI64), n, s);
  dispatch(logits.dtype(), [&](auto z) {
    using T = decltype(z);
    if (labels.dtype() == DType::kI32)
      kernels::softmax_ce_forward<T, std::int32_t>(ptr<T>(logits), ptr<std::int32_t>(labels), ptr<T>(r.loss),
                                                   ptr<T>(r.prob), n, c, ptr<i64>(flag), s);
    else
      kernels::softmax_ce_forward<T, std::int64_t>(ptr<T>(logits), ptr<std::int64_t>(labels), ptr<T>(r.loss),
                                                   ptr<T>(r.prob), n, c, ptr<i64>(flag), s);
  });
  check_bad_label("softmax_cross_entropy_forward", flag, labels, n, c);
  return r;
}

Tensor CudaBackend::softmax_cross_entropy_backward(const Tensor& dloss_in, const Tensor& prob_in,
                                                   const Tensor& labels_in) {
  OpTimer t("softmax_cross_entropy_backward", index_);
  require_float(__func__, "prob", prob_in);
  ANVIL_CHECK(prob_in.rank() == 2, "prob must be [N,C], got {}", prob_in.desc());
  const i64 n = prob_in.dim(0), c = prob_in.dim(1);
  require_same_dtype(__func__, "dloss", dloss_in, "prob", prob_in);
  require_shape(__func__, "dloss", dloss_in, Shape{n});
  require_labels(__func__, labels_in, n);
  const Tensor dloss = on_device(__func__, "dloss", dloss_in), prob = on_device(__func__, "prob", prob_in),
               labels = on_device(__func__, "labels", labels_in);
  Tensor dx = empty(prob.shape(), prob.dtype());
  if (n == 0) return dx;
  cudaStream_t s = handles(index_).stream();
  const Tensor flag = bad_label_flag(empty(Shape{1}, DType::kI64), n, s);
  dispatch(prob.dtype(), [&](auto z) {
    using T = decltype(z);
    if (labels.dtype() == DType::kI32)
      kernels::softmax_ce_backward<T, std::int32_t>(ptr<T>(dloss), ptr<T>(prob), ptr<std::int32_t>(labels),
                                                    ptr<T>(dx), n, c, ptr<i64>(flag), s);
    else
      kernels::softmax_ce_backward<T, std::int64_t>(ptr<T>(dloss), ptr<T>(prob), ptr<std::int64_t>(labels),
                                                    ptr<T>(dx), n, c, ptr<i64>(flag), s);
  });
  check_bad_label("softmax_cross_entropy_backward", flag, labels, n, c);
  return dx;
}

// ---- in-place helpers and optimizer kernels ----

namespace {
// In-place operands must live on this device; optimizer state on the host is moved here (set_data).
void adopt_state(Tensor& t, const Device& dev) {
  if (t.device() != dev && t.device().is_cpu()) t.set_data(t.to(dev));
}
void require_here(const char* fn, const char* what, const Tensor& t, const Device& dev) {
  if (t.device() != dev)
    detail::throw_error(fn, fmt::format("{} {} is on {}, but this backend updates tensors on {} in place", what,
                                        t.desc(), t.device().str(), dev.str()));
}
}  // namespace

void CudaBackend::axpy_(Tensor& dst, const Tensor& src_in, double alpha) {
  OpTimer t("axpy_", index_);
  require_float(__func__, "dst", dst);
  require_same_dtype(__func__, "src", src_in, "dst", dst);
  require_same_shape(__func__, "src", src_in, "dst", dst);
  require_here(__func__, "dst", dst, device());
  const Tensor src = on_device(__func__, "src", src_in);
  cudaStream_t s = handles(index_).stream();
  dispatch(dst.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::axpy<T>(ptr<T>(dst), ptr<T>(src), alpha, dst.numel(), s);
  });
}

void CudaBackend::sgd_update(Tensor& param, const Tensor& grad_in, double lr, double weight_decay) {
  OpTimer t("sgd_update", index_);
  require_float(__func__, "param", param);
  require_same_dtype(__func__, "grad", grad_in, "param", param);
  require_same_shape(__func__, "grad", grad_in, "param", param);
  require_here(__func__, "param", param, device());
  const Tensor grad = on_device(__func__, "grad", grad_in);
  cudaStream_t s = handles(index_).stream();
  dispatch(param.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::sgd_update<T>(ptr<T>(param), ptr<T>(grad), lr, weight_decay, param.numel(), s);
  });
}

void CudaBackend::momentum_update(Tensor& param, const Tensor& grad_in, Tensor& moments, double lr, double momentum,
                                  double weight_decay, bool nesterov) {
  OpTimer t("momentum_update", index_);
  require_float(__func__, "param", param);
  require_same_dtype(__func__, "grad", grad_in, "param", param);
  require_same_shape(__func__, "grad", grad_in, "param", param);
  require_same_dtype(__func__, "moments", moments, "param", param);
  require_same_shape(__func__, "moments", moments, "param", param);
  require_here(__func__, "param", param, device());
  adopt_state(moments, device());
  require_here(__func__, "moments", moments, device());
  const Tensor grad = on_device(__func__, "grad", grad_in);
  cudaStream_t s = handles(index_).stream();
  dispatch(param.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::momentum_update<T>(ptr<T>(param), ptr<T>(grad), ptr<T>(moments), lr, momentum, weight_decay, nesterov,
                                param.numel(), s);
  });
}

void CudaBackend::adam_update(Tensor& param, const Tensor& grad_in, Tensor& m, Tensor& v, double lr, double beta1,
                              double beta2, double eps, double weight_decay, double beta1_power, double beta2_power,
                              bool decoupled) {
  OpTimer t("adam_update", index_);
  require_float(__func__, "param", param);
  require_same_dtype(__func__, "grad", grad_in, "param", param);
  require_same_shape(__func__, "grad", grad_in, "param", param);
  require_same_dtype(__func__, "m", m, "param", param);
  require_same_shape(__func__, "m", m, "param", param);
  require_same_dtype(__func__, "v", v, "param", param);
  require_same_shape(__func__, "v", v, "param", param);
  if (!decoupled)
    ANVIL_CHECK(beta1_power != 1.0, "beta1_power is 1 (step 0?): the bias correction 1/(1 - beta1_power) is undefined");
  require_here(__func__, "param", param, device());
  adopt_state(m, device());
  adopt_state(v, device());
  require_here(__func__, "m", m, device());
  require_here(__func__, "v", v, device());
  const Tensor grad = on_device(__func__, "grad", grad_in);
  const double step = decoupled ? lr : lr * std::sqrt(1.0 - beta2_power) / (1.0 - beta1_power);
  cudaStream_t s = handles(index_).stream();
  dispatch(param.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::adam_update<T>(ptr<T>(param), ptr<T>(grad), ptr<T>(m), ptr<T>(v), lr, step, beta1, beta2, eps,
                            weight_decay, decoupled, param.numel(), s);
  });
}

}  // namespace anvil::cuda
