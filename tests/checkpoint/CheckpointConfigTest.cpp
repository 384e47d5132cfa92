// CheckpointConfig: MindSpore's defaults, validation order and messages, normalisation (spec §3).
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "callbacks/CheckpointConfig.h"
#include "framework/core/Error.h"

using namespace anvil;

namespace {

std::string error_of(const CheckpointConfig& c) {
  try {
    c.validate();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(CheckpointConfig, MindSporeDefaults) {
  CheckpointConfig c;
  EXPECT_EQ(c.save_checkpoint_steps, 1);
  EXPECT_EQ(c.save_checkpoint_seconds, 0);
  EXPECT_EQ(c.keep_checkpoint_max, 5);
  EXPECT_EQ(c.keep_checkpoint_per_n_minutes, 0);
  EXPECT_TRUE(c.integrated_save);
  EXPECT_EQ(c.async_save, AsyncSave::kOff);
  EXPECT_FALSE(c.saved_network);
  EXPECT_TRUE(c.append_info.empty());
  EXPECT_EQ(c.enc_mode, "AES-GCM");
  EXPECT_FALSE(c.exception_save);
  EXPECT_FALSE(c.crc_check);
  EXPECT_FALSE(c.remove_redundancy);
  EXPECT_EQ(c.format, "ckpt");
  EXPECT_NO_THROW(c.validate());
}

TEST(CheckpointConfig, NegativeValuesNameTheField) {
  EXPECT_EQ(error_of({.save_checkpoint_steps = -1}),
            "For 'CheckpointConfig', the argument 'save_checkpoint_steps' must be >= 0, but got -1.");
  EXPECT_EQ(error_of({.save_checkpoint_seconds = -3}),
            "For 'CheckpointConfig', the argument 'save_checkpoint_seconds' must be >= 0, but got -3.");
  EXPECT_EQ(error_of({.keep_checkpoint_max = -2}),
            "For 'CheckpointConfig', the argument 'keep_checkpoint_max' must be >= 0, but got -2.");
  EXPECT_EQ(error_of({.keep_checkpoint_per_n_minutes = -5}),
            "For 'CheckpointConfig', the argument 'keep_checkpoint_per_n_minutes' must be >= 0, but got -5.");
  EXPECT_EQ(error_of({.keep_best_k = -1}),
            "For 'CheckpointConfig', the argument 'keep_best_k' must be >= 0, but got -1.");
  // Order: the negative number is reported before the "all zero" check.
  EXPECT_NE(error_of({.save_checkpoint_steps = -1, .keep_checkpoint_max = 0}).find("'save_checkpoint_steps' must be"),
            std::string::npos);
}

TEST(CheckpointConfig, AllFourZeroIsAnError) {
  EXPECT_EQ(error_of({.save_checkpoint_steps = 0, .save_checkpoint_seconds = 0, .keep_checkpoint_max = 0,
                      .keep_checkpoint_per_n_minutes = 0}),
            "For 'CheckpointConfig', the input arguments 'save_checkpoint_steps', 'save_checkpoint_seconds', "
            "'keep_checkpoint_max' and 'keep_checkpoint_per_n_minutes' can't be all None or 0.");
  // (0,0,5,0) is valid (it only saves on exception; ModelCheckpoint warns).
  CheckpointConfig c{.save_checkpoint_steps = 0};
  EXPECT_NO_THROW(c.validate());
  EXPECT_FALSE(c.has_periodic_trigger());
}

TEST(CheckpointConfig, AppendInfo) {
  CheckpointConfig ok{.append_info = {std::string("epoch_num"), std::string("step_num"),
                                      AppendInfo{{"lr", 0.01}, {"note", std::string("x")}}}};
  EXPECT_NO_THROW(ok.validate());
  EXPECT_TRUE(ok.appends("epoch_num"));
  EXPECT_TRUE(ok.appends("step_num"));
  EXPECT_EQ(ok.append_dict().size(), 2u);
  EXPECT_EQ(error_of({.append_info = {std::string("epochs")}}),
            "For 'CheckpointConfig', the argument 'append_info' may only contain the strings 'epoch_num' and "
            "'step_num' and one dict, but got 'epochs'.");
  EXPECT_EQ(error_of({.append_info = {AppendInfo{{"a", std::int64_t{1}}}, AppendInfo{{"b", true}}}}),
            "For 'CheckpointConfig', the argument 'append_info' may contain at most one dict, but got 2 or more.");
  EXPECT_NE(error_of({.append_info = {AppendInfo{{"t", Tensor()}}}}).find("'t' is an undefined tensor"),
            std::string::npos);
}

TEST(CheckpointConfig, SafetensorsCombinationsThenUnsupportedFeatures) {
  EXPECT_EQ(error_of({.crc_check = true, .format = "safetensors"}),
            "For 'CheckpointConfig', format 'safetensors' does not support 'crc_check' = true.");
  EXPECT_EQ(error_of({.exception_save = true, .format = "safetensors"}),
            "For 'CheckpointConfig', format 'safetensors' does not support 'exception_save' = true.");
  EXPECT_NE(error_of({.format = "safetensors"}).find("\"safetensors\" is not implemented yet"), std::string::npos);
  EXPECT_NE(error_of({.format = "npz"}).find("but got \"npz\""), std::string::npos);
  EXPECT_NE(error_of({.enc_key = "secret"}).find("encryption is not supported"), std::string::npos);
  EXPECT_NE(error_of({.remove_redundancy = true}).find("'remove_redundancy' must be false"), std::string::npos);
  EXPECT_NE(error_of({.async_save = AsyncSave::kProcess}).find("\"process\" is not supported"), std::string::npos);
  EXPECT_EQ(error_of({.save_on_signals = {SIGTERM, SIGINT}}), "");
  EXPECT_NE(error_of({.save_on_signals = {SIGTERM, SIGKILL}}).find("'save_on_signals' contains SIGKILL"),
            std::string::npos);
  EXPECT_NE(error_of({.save_on_signals = {SIGSTOP}}).find("'save_on_signals' contains SIGSTOP"), std::string::npos);
  EXPECT_NE(error_of({.save_on_signals = {0}}).find("'save_on_signals' must hold signal numbers"), std::string::npos);
  EXPECT_NE(error_of({.async_pending = "later"}).find("'async_pending' must be \"wait\" or \"skip\", but got \"later\""),
            std::string::npos);
  EXPECT_NE(error_of({.mode = "auto"}).find("'mode' must be \"min\" or \"max\""), std::string::npos);
}

TEST(CheckpointConfig, NormalisationKeepsBothMembersOfEachPair) {
  // Both retention rules off -> keep_checkpoint_max = 1 (MindSpore).
  CheckpointConfig none{.keep_checkpoint_max = 0};
  EXPECT_EQ(none.normalized().keep_checkpoint_max, 1);
  // MindSpore would drop seconds (steps > 0) and per_n_minutes (max > 0); we keep them.
  CheckpointConfig both{.save_checkpoint_steps = 4, .save_checkpoint_seconds = 30, .keep_checkpoint_max = 2,
                        .keep_checkpoint_per_n_minutes = 5};
  CheckpointConfig n = both.normalized();
  EXPECT_EQ(n.save_checkpoint_steps, 4);
  EXPECT_EQ(n.save_checkpoint_seconds, 30);
  EXPECT_EQ(n.keep_checkpoint_max, 2);
  EXPECT_EQ(n.keep_checkpoint_per_n_minutes, 5);
  // get_checkpoint_policy(): values as given.
  CheckpointPolicy p = none.get_checkpoint_policy();
  EXPECT_EQ(p.save_checkpoint_steps, 1);
  EXPECT_EQ(p.keep_checkpoint_max, 0);
}
