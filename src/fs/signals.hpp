// Threads beside the FUSE loop must not take the signals meant for it.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <thread>
#include <utility>

namespace secretfs::fs {

// Starts `work` on a thread that never receives SIGINT, SIGTERM or SIGHUP: they must reach the
// thread that runs the FUSE loop, which wakes from its wait to stop (or to have the audit log
// reopened). A new thread inherits the signal mask of the one that starts it.
template <typename Thread = std::thread, typename Work>
Thread thread_without_loop_signals(Work&& work) {
  sigset_t loop_signals;
  sigset_t previous;
  sigemptyset(&loop_signals);
  sigaddset(&loop_signals, SIGINT);
  sigaddset(&loop_signals, SIGTERM);
  sigaddset(&loop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &loop_signals, &previous);
  Thread thread(std::forward<Work>(work));
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return thread;
}

}  // namespace secretfs::fs
