// The spin team (kernels/spin_team.h) and the timed choice of whether a layer uses it
// (runtime/threads_choice.h).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "kernels/spin_team.h"
#include "runtime/threads_choice.h"

namespace minnow {
namespace {

// Every block runs exactly once, on a thread index below the caller's count, over many layers
// of different sizes in a row (the helpers pick up each new layer while finishing none twice).
TEST(SpinTeam, RunsEveryBlockOnce) {
  for (int threads : {2, 3}) {
    for (int layer = 0; layer < 2000; ++layer) {
      const int64_t blocks = 1 + layer % 37;
      std::vector<std::atomic<int>> runs(static_cast<size_t>(blocks));
      std::atomic<int> bad_thread{0};
      auto body = [&](int64_t b, int thread) {
        if (thread < 0 || thread >= threads) bad_thread.fetch_add(1);
        runs[static_cast<size_t>(b)].fetch_add(1);
      };
      ASSERT_TRUE(kernels::spin_team_run(threads, blocks, body)) << "layer " << layer;
      for (int64_t b = 0; b < blocks; ++b) {
        ASSERT_EQ(runs[static_cast<size_t>(b)].load(), 1) << "layer " << layer << " block " << b;
      }
      ASSERT_EQ(bad_thread.load(), 0);
    }
  }
}

// The helpers do take blocks: with blocks that wait until a second thread has joined, a layer
// completes only if a helper runs some.
TEST(SpinTeam, HelpersTakePart) {
  std::atomic<int> seen_helper{0};
  auto body = [&](int64_t, int thread) {
    if (thread > 0) seen_helper.store(1);
  };
  for (int layer = 0; layer < 20000 && seen_helper.load() == 0; ++layer) {
    auto slow = [&](int64_t b, int thread) {
      body(b, thread);
      for (volatile int i = 0; i < 2000; ++i) {
      }
    };
    ASSERT_TRUE(kernels::spin_team_run(2, 8, slow));
  }
  EXPECT_EQ(seen_helper.load(), 1);
}

// A second caller while the team is busy is told so and may run its layer alone; the first
// caller's layer still runs every block once.
TEST(SpinTeam, BusyTeamDeclinesAnotherCaller) {
  std::atomic<bool> inside{false}, release{false};
  std::atomic<int> runs{0};
  std::thread first([&] {
    auto body = [&](int64_t b, int) {
      if (b == 0) {
        inside.store(true);
        while (!release.load()) std::this_thread::yield();
      }
      runs.fetch_add(1);
    };
    EXPECT_TRUE(kernels::spin_team_run(2, 4, body));
  });
  while (!inside.load()) std::this_thread::yield();
  int called = 0;
  auto other = [&](int64_t, int) { ++called; };
  EXPECT_FALSE(kernels::spin_team_run(2, 4, other));
  EXPECT_EQ(called, 0);
  release.store(true);
  first.join();
  EXPECT_EQ(runs.load(), 4);
}

// SpinTeamOff turns the team off on its thread for its lifetime.
TEST(SpinTeam, OffDeclines) {
  int called = 0;
  auto body = [&](int64_t, int) { ++called; };
  {
    kernels::SpinTeamOff off;
    EXPECT_FALSE(kernels::spin_team_run(2, 4, body));
  }
  EXPECT_EQ(called, 0);
  EXPECT_TRUE(kernels::spin_team_run(2, 4, body));
  EXPECT_EQ(called, 4);
}

// A ThreadsChoice runs its first call alone and the next ones shared for at least 32 calls and
// 20 ms, then times 20 calls each way (in blocks of 5, alternating), keeps the faster way, and
// runs alone whenever the shared way declines.
TEST(ThreadsChoice, KeepsTheFasterWay) {
  auto spin = [](int iterations) {
    for (volatile int i = 0; i < iterations; ++i) {
    }
  };
  for (bool shared_faster : {true, false}) {
    ThreadsChoice choice;
    int alone = 0, shared = 0;
    const auto start = std::chrono::steady_clock::now();
    while (!choice.settled()) choice.run([&] { ++alone; }, [&] { return ++shared, true; });
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(20));
    EXPECT_GE(shared, 32);
    EXPECT_EQ(alone, 1);  // the first call
    EXPECT_FALSE(choice.chosen());
    alone = shared = 0;
    for (int call = 0; call < 40; ++call) {
      choice.run([&] { ++alone, spin(shared_faster ? 20000 : 0); },
                 [&] { return ++shared, spin(shared_faster ? 0 : 20000), true; });
    }
    EXPECT_EQ(alone, 20);
    EXPECT_EQ(shared, 20);
    EXPECT_TRUE(choice.chosen());
    alone = shared = 0;
    for (int call = 0; call < 100; ++call) {
      choice.run([&] { ++alone; }, [&] { return ++shared, true; });
    }
    EXPECT_EQ(shared_faster ? shared : alone, 100) << (shared_faster ? "shared" : "alone");
  }
  ThreadsChoice declined;
  int alone = 0;
  for (int call = 0; call < 50; ++call) declined.run([&] { ++alone; }, [] { return false; });
  EXPECT_EQ(alone, 50);
}

// Between trials a ThreadsChoice follows the host: the way not taken is probed with a few runs
// every so often, so when it becomes the faster one the choice switches at the next probe, long
// before the next regular trial (2,048 calls on).
TEST(ThreadsChoice, SwitchesWhenTheOtherWayBecomesFaster) {
  auto spin = [](int iterations) {
    for (volatile int i = 0; i < iterations; ++i) {
    }
  };
  for (bool shared_first : {false, true}) {
    SCOPED_TRACE(shared_first ? "shared first" : "alone first");
    ThreadsChoice choice;
    bool shared_faster = shared_first;
    int alone = 0, shared = 0;
    auto call = [&] {
      choice.run([&] { ++alone, spin(shared_faster ? 20000 : 0); },
                 [&] { return ++shared, spin(shared_faster ? 0 : 20000), true; });
    };
    while (!choice.settled()) call();
    // The first trial, and the second 256 calls later.
    for (int i = 0; i < 340; ++i) call();
    alone = shared = 0;
    for (int i = 0; i < 100; ++i) call();
    // (Five of any 100 calls may be a probe of the other way.)
    EXPECT_GE(shared_first ? shared : alone, 95);
    shared_faster = !shared_faster;
    for (int i = 0; i < 600; ++i) call();
    alone = shared = 0;
    for (int i = 0; i < 100; ++i) call();
    EXPECT_GE(shared_first ? alone : shared, 95) << "did not switch";
  }
}

}  // namespace
}  // namespace minnow
