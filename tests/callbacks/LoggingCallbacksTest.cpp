// CSVLogger, ProgressBar and TensorBoard (spec §2): CSV rows, progress lines, TFRecord framing and CRCs.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "callbacks/CSVLogger.h"
#include "callbacks/LambdaCallback.h"
#include "callbacks/ProgressBar.h"
#include "callbacks/TensorBoard.h"
#include "callbacks/TfRecord.h"
#include "framework/core/Error.h"
#include "tests/train/TrainTestUtil.h"

using namespace anvil;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<DataLoader> small_loader(std::int64_t n = 12, std::int64_t batch = 6) {
  return std::make_unique<DataLoader>(testutil::separable_dataset(n, 4, 3, 1),
                                      DataLoaderOptions{.batch_size = batch, .shuffle = false, .prefetch = 0});
}

std::shared_ptr<Callback> scripted_metric(std::vector<double> values, std::string key = "eval_loss") {
  return std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_epoch_end = [values, key](RunContext& c) {
    auto& p = c.original_args();
    const auto i = static_cast<std::size_t>(p.cur_epoch_num - 1);
    if (i < values.size()) p.eval_results[key] = values[i];
  }});
}

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / fmt::format("anvil_cb_{}_{}", name, ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Independent bitwise CRC-32C (not the table of TfRecord.cpp).
std::uint32_t crc32c_bitwise(const std::string& s) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char ch : s) {
    c ^= ch;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}
std::uint32_t masked(std::uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

std::uint64_t le(const std::string& s, std::size_t pos, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[pos + static_cast<std::size_t>(i)]);
  return v;
}

std::uint64_t varint(const std::string& s, std::size_t& pos) {
  std::uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    const auto b = static_cast<unsigned char>(s.at(pos++));
    v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return v;
  }
}

// A decoded Event: step, file_version, and {tag: value} of its summary.
struct Event {
  double wall_time = 0;
  std::int64_t step = -1;
  std::string file_version;
  std::vector<std::pair<std::string, float>> scalars;
};

Event decode_event(const std::string& d) {
  Event e;
  std::size_t pos = 0;
  while (pos < d.size()) {
    const std::uint64_t key = varint(d, pos);
    const auto field = key >> 3, wire = key & 7;
    if (field == 1 && wire == 1) {
      const std::uint64_t bits = le(d, pos, 8);
      std::memcpy(&e.wall_time, &bits, 8);
      pos += 8;
    } else if (field == 2 && wire == 0) {
      e.step = static_cast<std::int64_t>(varint(d, pos));
    } else if (field == 3 && wire == 2) {
      const auto n = varint(d, pos);
      e.file_version = d.substr(pos, n);
      pos += n;
    } else if (field == 5 && wire == 2) {
      const auto n = varint(d, pos);
      const std::string summary = d.substr(pos, n);
      pos += n;
      std::size_t sp = 0;
      while (sp < summary.size()) {
        EXPECT_EQ(varint(summary, sp), (1u << 3) | 2u);
        const auto vn = varint(summary, sp);
        const std::string v = summary.substr(sp, vn);
        sp += vn;
        std::size_t vp = 0;
        std::string tag;
        float value = 0;
        while (vp < v.size()) {
          const auto vk = varint(v, vp);
          if (vk == ((1u << 3) | 2u)) {
            const auto tn = varint(v, vp);
            tag = v.substr(vp, tn);
            vp += tn;
          } else {
            EXPECT_EQ(vk, (2u << 3) | 5u);
            const auto bits = static_cast<std::uint32_t>(le(v, vp, 4));
            std::memcpy(&value, &bits, 4);
            vp += 4;
          }
        }
        e.scalars.emplace_back(tag, value);
      }
    } else {
      ADD_FAILURE() << "unexpected field " << field << " wire " << wire;
      break;
    }
  }
  return e;
}

// Decodes every record of an events file, checking both masked CRCs of each.
std::vector<Event> read_events(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  std::vector<Event> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    EXPECT_LE(pos + 12, s.size());
    if (pos + 12 > s.size()) break;
    const std::string len_bytes = s.substr(pos, 8);
    const std::uint64_t len = le(s, pos, 8);
    EXPECT_EQ(le(s, pos + 8, 4), masked(crc32c_bitwise(len_bytes))) << "length CRC at " << pos;
    pos += 12;
    EXPECT_LE(pos + len + 4, s.size());
    if (pos + len + 4 > s.size()) break;
    const std::string data = s.substr(pos, len);
    EXPECT_EQ(le(s, pos + len, 4), masked(crc32c_bitwise(data))) << "data CRC at " << pos;
    pos += len + 4;
    out.push_back(decode_event(data));
  }
  return out;
}

}  // namespace

TEST(TfRecord, Crc32cKnownValuesAndFraming) {
  EXPECT_EQ(tfrecord::crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(tfrecord::crc32c(""), 0u);
  EXPECT_EQ(tfrecord::crc32c(std::string(32, '\0')), 0x8A9136AAu);
  const std::string rec = tfrecord::frame_record("abc");
  ASSERT_EQ(rec.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(le(rec, 0, 8), 3u);
  EXPECT_EQ(le(rec, 8, 4), masked(crc32c_bitwise(rec.substr(0, 8))));
  EXPECT_EQ(rec.substr(12, 3), "abc");
  EXPECT_EQ(le(rec, 15, 4), masked(crc32c_bitwise("abc")));
  // Event{wall_time=1.5, step=3, file_version="x"} byte by byte.
  const std::string ev = tfrecord::encode_file_version_event(1.5, 3, "x");
  const std::string expected("\x09\x00\x00\x00\x00\x00\x00\xf8\x3f\x10\x03\x1a\x01x", 14);
  EXPECT_EQ(ev, expected);
}

TEST(TensorBoard, EventsFileDecodesWithValidCrcs) {
  const fs::path dir = fresh_dir("tb");
  auto s = testutil::make_mlp_model(4, 8, 3, 1, 0.05);
  auto loader = small_loader();
  auto tb = std::make_shared<TensorBoard>(dir.string());
  s.model->train(3, *loader, {scripted_metric({0.5, 0.4, 0.3}, "accuracy"), tb});
  const std::string name = fs::path(tb->file_path()).filename().string();
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  const std::vector<Event> ev = read_events(tb->file_path());
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].file_version, "brain.Event:2");
  EXPECT_GT(ev[0].wall_time, 1.6e9);
  for (int e = 1; e <= 3; ++e) {
    const Event& x = ev[static_cast<std::size_t>(e)];
    EXPECT_EQ(x.step, 2 * e);
    ASSERT_EQ(x.scalars.size(), 3u);
    EXPECT_EQ(x.scalars[0].first, "train/loss");
    EXPECT_TRUE(std::isfinite(x.scalars[0].second));
    EXPECT_EQ(x.scalars[1].first, "train/lr");
    EXPECT_FLOAT_EQ(x.scalars[1].second, 0.05f);
    EXPECT_EQ(x.scalars[2].first, "eval/accuracy");
    EXPECT_FLOAT_EQ(x.scalars[2].second, static_cast<float>(0.6 - 0.1 * e));
  }
  fs::remove_all(dir);
}

TEST(TensorBoard, StepUpdateFrequency) {
  const fs::path dir = fresh_dir("tb_steps");
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader(18, 6);
  auto tb = std::make_shared<TensorBoard>(dir.string(), 2);
  s.model->train(2, *loader, {tb});
  const std::vector<Event> ev = read_events(tb->file_path());
  ASSERT_EQ(ev.size(), 4u);  // version + steps 2, 4, 6
  EXPECT_EQ(ev[1].step, 2);
  EXPECT_EQ(ev[3].step, 6);
  EXPECT_THROW(TensorBoard("x", -1), Error);
  fs::remove_all(dir);
}

TEST(CSVLogger, RowsHeaderOnceAndAppendOnResumeDropsLaterRows) {
  const fs::path dir = fresh_dir("csv");
  const std::string file = (dir / "log.csv").string();
  auto s = testutil::make_mlp_model(4, 8, 3, 1, 0.05);
  auto loader = small_loader();
  auto csv = std::make_shared<CSVLogger>(file);
  s.model->train(4, *loader, {scripted_metric({0.5, 0.25, 0.125, 1}), csv});
  std::vector<std::string> rows = read_lines(file);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0], "epoch,eval_loss,loss,lr");
  EXPECT_EQ(rows[1].rfind("1,0.5,", 0), 0u) << rows[1];
  EXPECT_EQ(rows[3].rfind("3,0.125,", 0), 0u) << rows[3];
  EXPECT_EQ(rows[4].substr(rows[4].size() - 5), ",0.05");
  const std::string state = csv->state();
  EXPECT_EQ(state, "4");

  // "Resume" at epoch 2 with append: rows 3 and 4 are dropped, then rewritten once by epochs 3..4.
  auto csv2 = std::make_shared<CSVLogger>(file, ",", true);
  csv2->load_state("2");
  auto s2 = testutil::make_mlp_model(4, 8, 3, 1, 0.05);
  s2.model->train(4, *loader, {scripted_metric({9, 9, 7, 8}), csv2}, 2);
  rows = read_lines(file);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0], "epoch,eval_loss,loss,lr");
  EXPECT_EQ(rows[2].rfind("2,0.25,", 0), 0u);
  EXPECT_EQ(rows[3].rfind("3,7,", 0), 0u) << rows[3];
  EXPECT_EQ(rows[4].rfind("4,8,", 0), 0u) << rows[4];

  // append=false truncates.
  auto csv3 = std::make_shared<CSVLogger>(file, ";");
  s.model->train(1, *loader, {csv3});
  rows = read_lines(file);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], "epoch;loss;lr");
  EXPECT_THROW(CSVLogger("", ","), Error);
  EXPECT_THROW(csv3->load_state("x"), Error);
  fs::remove_all(dir);
}

TEST(ProgressBar, NonTtyOneLinePerEpoch) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::ostringstream out;
  auto pb = std::make_shared<ProgressBar>(out);
  EXPECT_FALSE(pb->is_tty());
  s.model->train(3, *loader, {scripted_metric({0.5, 0.4, 0.3}), pb});
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].rfind("epoch 1/3: step 2/2, loss ", 0), 0u) << lines[0];
  EXPECT_NE(lines[2].find("eval_loss: 0.3"), std::string::npos) << lines[2];
  EXPECT_EQ(out.str().find('\r'), std::string::npos);
}

TEST(ProgressBar, TtyRedrawsInPlace) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  std::ostringstream out;
  auto pb = std::make_shared<ProgressBar>(out, 0.0, true);
  s.model->train(1, *loader, {pb});
  const std::string text = out.str();
  EXPECT_NE(text.find("\repoch 1/1 ["), std::string::npos);
  EXPECT_NE(text.find("2/2 loss"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

TEST(ProgressBar, OutputErrorsNeverStopTraining) {
  auto s = testutil::make_mlp_model(4, 8, 3, 1);
  auto loader = small_loader();
  struct FailingBuf : std::streambuf {
    int overflow(int) override { return traits_type::eof(); }
  } buf;
  std::ostream out(&buf);
  out.exceptions(std::ios::badbit | std::ios::failbit);  // every write fails and throws
  int epochs = 0;
  auto count = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_epoch_end = [&](RunContext&) { ++epochs; }});
  EXPECT_NO_THROW(s.model->train(2, *loader, {std::make_shared<ProgressBar>(out, 0.0, true), count}));
  EXPECT_EQ(epochs, 2);
}
