#include "framework/data/Transforms.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "framework/core/Error.h"

namespace anvil {
namespace {

struct ImageDims {
  std::int64_t c = 1, h = 0, w = 0;
};

// [C, H, W] or [H, W] float32 image; throws naming `who` and the tensor otherwise.
ImageDims image_dims(const std::string& who, const Tensor& t) {
  ANVIL_CHECK(t.defined() && t.dtype() == DType::kF32 && (t.rank() == 2 || t.rank() == 3),
              "{}: expects a float32 image [C, H, W] or [H, W], got {}", who, t.defined() ? t.desc() : "undefined");
  if (t.rank() == 2) return {1, t.dim(0), t.dim(1)};
  return {t.dim(0), t.dim(1), t.dim(2)};
}

Shape image_shape(const Tensor& like, std::int64_t c, std::int64_t h, std::int64_t w) {
  return like.rank() == 2 ? Shape{h, w} : Shape{c, h, w};
}

std::string padding_str(const Padding& p) { return fmt::format("[{},{},{},{}]", p.left, p.top, p.right, p.bottom); }

void check_padding(const std::string& who, const Padding& p) {
  ANVIL_CHECK(p.left >= 0 && p.top >= 0 && p.right >= 0 && p.bottom >= 0,
              "{}: padding (left, top, right, bottom) must be >= 0, got {}", who, padding_str(p));
}

// Copies the window [top, top+h) x [left, left+w) of the image `src` padded by `p` with `fill`.
// Coordinates are in the padded frame; pixels outside the source are `fill`.
Tensor padded_window(const Tensor& src, const ImageDims& d, const Padding& p, float fill, std::int64_t top,
                     std::int64_t left, std::int64_t h, std::int64_t w) {
  Tensor out = Tensor::empty(image_shape(src, d.c, h, w), DType::kF32);
  const float* in = src.data<float>();  // [C, H, W]
  float* o = out.data<float>();         // [C, h, w]
  for (std::int64_t c = 0; c < d.c; ++c)
    for (std::int64_t y = 0; y < h; ++y) {
      const std::int64_t sy = top + y - p.top;  // source row
      float* orow = o + (c * h + y) * w;
      for (std::int64_t x = 0; x < w; ++x) {
        const std::int64_t sx = left + x - p.left;
        orow[x] = (sy >= 0 && sy < d.h && sx >= 0 && sx < d.w) ? in[(c * d.h + sy) * d.w + sx] : fill;
      }
    }
  return out;
}

}  // namespace

// ---- Normalize ----

Normalize::Normalize(std::vector<double> mean, std::vector<double> std) : mean_(std::move(mean)), std_(std::move(std)) {
  ANVIL_CHECK(!mean_.empty() && !std_.empty(), "Normalize: mean and std must not be empty");
  if (mean_.size() == 1 && std_.size() > 1) mean_.resize(std_.size(), mean_[0]);
  if (std_.size() == 1 && mean_.size() > 1) std_.resize(mean_.size(), std_[0]);
  ANVIL_CHECK(mean_.size() == std_.size(), "Normalize: mean has {} values but std has {}", mean_.size(), std_.size());
  for (std::size_t i = 0; i < std_.size(); ++i)
    ANVIL_CHECK(std::isfinite(std_[i]) && std_[i] != 0.0 && std::isfinite(mean_[i]),
                "Normalize: std must be finite and non-zero and mean finite, got mean[{}]={} std[{}]={}", i, mean_[i],
                i, std_[i]);
}

void Normalize::apply(Sample& s, Generator&) const {
  ANVIL_CHECK(s.data.defined() && s.data.dtype() == DType::kF32 && s.data.rank() >= 1,
              "Normalize: expects float32 data [C, ...], got {}", s.data.defined() ? s.data.desc() : "undefined");
  const std::int64_t c = s.data.rank() == 1 && mean_.size() == 1 ? 1 : s.data.dim(0);
  ANVIL_CHECK(mean_.size() == 1 || static_cast<std::int64_t>(mean_.size()) == c,
              "Normalize: {} mean/std values for data {} with {} channels (first axis)", mean_.size(), s.data.desc(), c);
  Tensor out = s.data.clone();
  float* p = out.data<float>();
  const std::int64_t per = out.numel() / std::max<std::int64_t>(c, 1);
  for (std::int64_t ch = 0; ch < c; ++ch) {
    const std::size_t i = mean_.size() == 1 ? 0 : static_cast<std::size_t>(ch);
    const auto m = static_cast<float>(mean_[i]);
    const auto sd = static_cast<float>(std_[i]);
    for (std::int64_t j = 0; j < per; ++j) p[ch * per + j] = (p[ch * per + j] - m) / sd;
  }
  s.data = out;
}

std::string Normalize::name() const { return fmt::format("Normalize(mean={}, std={})", fmt::join(mean_, ","), fmt::join(std_, ",")); }

// ---- Pad ----

Pad::Pad(Padding padding, float fill_value) : padding_(padding), fill_(fill_value) { check_padding("Pad", padding_); }

void Pad::apply(Sample& s, Generator&) const {
  const ImageDims d = image_dims("Pad", s.data);
  const Padding& p = padding_;
  s.data = padded_window(s.data, d, p, fill_, 0, 0, d.h + p.top + p.bottom, d.w + p.left + p.right);
}

std::string Pad::name() const { return fmt::format("Pad(padding={}, fill={})", padding_str(padding_), fill_); }

// ---- RandomCrop ----

RandomCrop::RandomCrop(std::int64_t height, std::int64_t width, Padding padding, float fill_value)
    : height_(height), width_(width), padding_(padding), fill_(fill_value) {
  ANVIL_CHECK(height >= 1 && width >= 1, "RandomCrop: size must be >= 1, got [{},{}]", height, width);
  check_padding("RandomCrop", padding_);
}

void RandomCrop::apply(Sample& s, Generator& gen) const {
  const ImageDims d = image_dims("RandomCrop", s.data);
  const std::int64_t ph = d.h + padding_.top + padding_.bottom;
  const std::int64_t pw = d.w + padding_.left + padding_.right;
  ANVIL_CHECK(height_ <= ph && width_ <= pw, "RandomCrop: crop size [{},{}] is larger than the padded image [{},{}] (data {}, padding {})",
              height_, width_, ph, pw, s.data.desc(), padding_str(padding_));
  const auto top = static_cast<std::int64_t>(gen.randint(static_cast<std::uint64_t>(ph - height_ + 1)));
  const auto left = static_cast<std::int64_t>(gen.randint(static_cast<std::uint64_t>(pw - width_ + 1)));
  s.data = padded_window(s.data, d, padding_, fill_, top, left, height_, width_);
}

std::string RandomCrop::name() const {
  return fmt::format("RandomCrop(size=[{},{}], padding={})", height_, width_, padding_str(padding_));
}

// ---- RandomHorizontalFlip ----

RandomHorizontalFlip::RandomHorizontalFlip(double prob) : prob_(prob) {
  ANVIL_CHECK(prob >= 0.0 && prob <= 1.0, "RandomHorizontalFlip: prob must be in [0, 1], got {}", prob);
}

void RandomHorizontalFlip::apply(Sample& s, Generator& gen) const {
  const ImageDims d = image_dims("RandomHorizontalFlip", s.data);
  if (!(gen.uniform() < prob_)) return;
  Tensor out = s.data.clone();
  float* p = out.data<float>();
  for (std::int64_t r = 0; r < d.c * d.h; ++r) std::reverse(p + r * d.w, p + (r + 1) * d.w);
  s.data = out;
}

std::string RandomHorizontalFlip::name() const { return fmt::format("RandomHorizontalFlip(prob={})", prob_); }

// ---- OneHot ----

OneHot::OneHot(std::int64_t num_classes, double smoothing_rate) : num_classes_(num_classes), smoothing_(smoothing_rate) {
  ANVIL_CHECK(num_classes >= 1, "OneHot: num_classes must be >= 1, got {}", num_classes);
  ANVIL_CHECK(smoothing_rate >= 0.0 && smoothing_rate <= 1.0, "OneHot: smoothing_rate must be in [0, 1], got {}",
              smoothing_rate);
}

void OneHot::apply(Sample& s, Generator&) const {
  ANVIL_CHECK(s.label.defined() && (s.label.dtype() == DType::kI32 || s.label.dtype() == DType::kI64) &&
                  s.label.numel() == 1 && s.label.rank() <= 1,
              "OneHot: expects a class index label (int32/int64, 0-d or [1]), got {}",
              s.label.defined() ? s.label.desc() : "undefined");
  const std::int64_t y = s.label.to_vector<std::int64_t>()[0];
  ANVIL_CHECK(y >= 0 && y < num_classes_, "OneHot: label {} is outside [0, {})", y, num_classes_);
  const double off = smoothing_ / static_cast<double>(num_classes_);
  Tensor out = Tensor::full(Shape{num_classes_}, off, DType::kF32);
  out.data<float>()[y] = static_cast<float>(1.0 - smoothing_ + off);
  s.label = out;
}

std::string OneHot::name() const { return fmt::format("OneHot(num_classes={}, smoothing_rate={})", num_classes_, smoothing_); }

}  // namespace anvil
