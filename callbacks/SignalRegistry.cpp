#include "callbacks/SignalRegistry.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "framework/core/Error.h"

namespace anvil {
namespace {

constexpr int kMaxSignal = 64;
std::atomic<bool> g_flags[kMaxSignal + 1];
static_assert(std::atomic<bool>::is_always_lock_free, "the signal flag must be lock-free");

struct Slot {
  int count = 0;
  struct sigaction previous {};
};
Slot g_slots[kMaxSignal + 1];
std::mutex g_mutex;

std::atomic<int> g_immediate_exit{0};  // live ImmediateExitScope objects
static_assert(std::atomic<int>::is_always_lock_free, "the immediate-exit counter must be lock-free");

// Async-signal-safe: atomics, sigaction and raise only.
extern "C" void anvil_signal_flag_handler(int sig) {
  if (sig <= 0 || sig > kMaxSignal) return;
  const bool repeated = g_flags[sig].exchange(true, std::memory_order_relaxed);
  if (repeated && g_immediate_exit.load(std::memory_order_relaxed) > 0) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, nullptr);
    raise(sig);  // delivered with the default action once this handler returns
  }
}

bool valid(int sig) { return sig > 0 && sig <= kMaxSignal && sig != SIGKILL && sig != SIGSTOP; }

}  // namespace

void SignalRegistry::acquire(int sig) {
  if (!valid(sig)) throw Error(fmt::format("SignalRegistry: signal {} cannot be handled (SIGKILL/SIGSTOP or out of range)", sig));
  std::lock_guard<std::mutex> lock(g_mutex);
  Slot& s = g_slots[sig];
  if (s.count++ > 0) return;
  struct sigaction act {};
  act.sa_handler = anvil_signal_flag_handler;
  sigemptyset(&act.sa_mask);
  act.sa_flags = SA_RESTART;
  if (sigaction(sig, &act, &s.previous) != 0) {
    const int err = errno;
    s.count = 0;
    throw Error(fmt::format("SignalRegistry: sigaction({}) failed: {}", sig, std::strerror(err)));
  }
}

void SignalRegistry::release(int sig) {
  if (!valid(sig)) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  Slot& s = g_slots[sig];
  if (s.count == 0) return;
  if (--s.count == 0) sigaction(sig, &s.previous, nullptr);
}

bool SignalRegistry::pending(int sig) {
  return sig > 0 && sig <= kMaxSignal && g_flags[sig].load(std::memory_order_relaxed);
}

bool SignalRegistry::take(int sig) {
  return sig > 0 && sig <= kMaxSignal && g_flags[sig].exchange(false, std::memory_order_relaxed);
}

void SignalRegistry::clear(int sig) {
  if (sig > 0 && sig <= kMaxSignal) g_flags[sig].store(false, std::memory_order_relaxed);
}

SignalRegistry::ImmediateExitScope::ImmediateExitScope() { g_immediate_exit.fetch_add(1, std::memory_order_relaxed); }

SignalRegistry::ImmediateExitScope::~ImmediateExitScope() { g_immediate_exit.fetch_sub(1, std::memory_order_relaxed); }

}  // namespace anvil
