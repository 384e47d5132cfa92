// SignalRegistry: the process-wide registry of "stop gracefully" signals (spec §8), shared by
// OnRequestExit and ModelCheckpoint's save_on_signals: the handler only sets an atomic flag per signal;
// callbacks poll it at step boundaries and do the work on the training thread.
#pragma once

namespace anvil {

/// All functions are thread-safe; the installed handler is async-signal-safe (one lock-free atomic
/// store). Signals 1..64; SIGKILL and SIGSTOP cannot be caught and are rejected.
class SignalRegistry {
 public:
  /// Installs the flag-setting handler for `sig` (first acquire; later ones only count) and remembers
  /// the previous disposition. Errors: anvil::Error for SIGKILL, SIGSTOP, a number outside 1..64, or a
  /// failing sigaction (naming errno).
  static void acquire(int sig);
  /// Drops one acquire(); the last one restores the previous disposition. Unbalanced calls are ignored.
  static void release(int sig);
  /// True when `sig` arrived since the last take()/clear() (does not clear it).
  static bool pending(int sig);
  /// Returns pending(sig) and clears the flag.
  static bool take(int sig);
  /// Clears the flag of `sig`.
  static void clear(int sig);

  /// While one of these is alive (any thread), a signal whose flag is already set — a second signal
  /// while the first one's save is running (spec §8) — restores the default disposition and re-raises
  /// itself: the process exits at once (for SIGTERM/SIGINT/SIGUSR1), leaving only temporaries that
  /// the commit protocol ignores. Nestable.
  class ImmediateExitScope {
   public:
    ImmediateExitScope();
    ~ImmediateExitScope();
    ImmediateExitScope(const ImmediateExitScope&) = delete;
    ImmediateExitScope& operator=(const ImmediateExitScope&) = delete;
  };
};

}  // namespace anvil
