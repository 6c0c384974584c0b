// traffic_light — the seed's Event example, with a light process and car processes.
//
// One ipckit::Event, "green", is the light: set = green, clear = red. The
// light process turns it green for a few ticks, then red for a few more, and
// the car processes do what the seed's cars do:
//
//   green:  "[Tesla] is running", then drive on for a tick
//   red:    "[Tesla] sees red light, waiting ......", then block in green.wait()
//   set():  every car, in every process, wakes: "green light is on, start going"
//
// After `--cycles` green/red cycles the light turns green one last time and
// raises a second Event, "done", which the driving cars sleep on (a tick-long
// timed wait), so everyone ends by itself.
//
// The claim it checks (it runs as a test): every car stopped at a red light
// at least once, and after every stop it went again on the next green — no
// car slept through a set(). Each car counts its stops and restarts in a
// shared Array; exit code 0 when they match, 1 otherwise.
//
// So that each green really has sleepers to wake, the light holds red until
// every car has stopped (a sensor at the crossing, bounded by --grace-ms).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "demo.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using demo::say;

namespace {

std::string car_name(int i) {
  static const char* const names[] = {"Tesla", "BMW", "Audi", "Volvo", "Toyota", "Honda", "Ford", "Fiat"};
  if (i < 8) return names[i];
  return "Car-" + std::to_string(i + 1);
}

// Polls `done()` every millisecond for at most `limit`; returns its last value.
template <class F>
bool poll_for(F done, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= end) return done();
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A traffic light and cars in separate processes, sharing one ipckit::Event (set = green)"};
  int cars = 3, cycles = 2, tick_ms = 300, green_ticks = 5, red_ticks = 6, grace_ms = 3000;
  app.add_option("-c,--cars", cars, "car processes")->check(CLI::Range(1, 32));
  app.add_option("--cycles", cycles, "green/red cycles before the light shuts down")->check(CLI::Range(1, 1000));
  app.add_option("--tick-ms", tick_ms, "length of one tick (the seed uses 1000)")->check(CLI::Range(1, 10000));
  app.add_option("--green-ticks", green_ticks, "ticks of green per cycle")->check(CLI::Range(1, 100));
  app.add_option("--red-ticks", red_ticks, "ticks of red per cycle")->check(CLI::Range(1, 100));
  app.add_option("--grace-ms", grace_ms, "how long red is held for a car that has not stopped yet")
      ->check(CLI::Range(0, 60000));
  CLI11_PARSE(app, argc, argv);
  const auto tick = std::chrono::milliseconds(tick_ms);

  const std::string name = "demo-traffic-light-" + std::to_string(::getpid());
  try {
    auto seg = ipckit::Segment::create(name, 1 << 20);
    ipckit::SegmentRemover remove(name);
    auto green = seg.event("green");                            // the light: set = green, clear = red
    auto done = seg.event("done");                              // the light has shut down
    auto stopped = seg.value<std::int32_t>("stopped");          // cars waiting at the red light now
    auto stops = seg.array<std::int32_t>("stops", cars);        // per car: red lights it stopped at
    auto restarts = seg.array<std::int32_t>("restarts", cars);  // per car: greens that woke it

    green.set();  // the light starts green, as in the seed

    ipckit::Process light(
        [&] {
          for (int cycle = 1; cycle <= cycles; ++cycle) {
            for (int t = 0; t < green_ticks; ++t) {
              say("Green light is on ......\n");
              if (t == 0) green.set();  // (announced first, so that the cars' lines follow it)
              std::this_thread::sleep_for(tick);
            }
            for (int t = 0; t < red_ticks; ++t) {
              say("Red light is on ......\n");
              if (t == 0) green.clear();
              std::this_thread::sleep_for(tick);
            }
            if (!poll_for([&] { return stopped.get() == cars; }, std::chrono::milliseconds(grace_ms)))
              say("light: only %d of %d cars stopped at this red\n", stopped.get(), cars);
          }
          // A last green releases the waiting cars, then the light shuts down.
          say("Green light is on ...... (last cycle done)\n");
          green.set();
          poll_for([&] { return stopped.get() == 0; }, std::chrono::milliseconds(grace_ms));
          done.set();
          say("light: shutting down\n");
        },
        ipckit::ProcessOptions{.name = "light"});

    std::vector<ipckit::Process> procs;
    for (int i = 0; i < cars; ++i) {
      const std::string car = car_name(i);
      procs.emplace_back(
          [&, i, car] {
            while (!done.is_set()) {
              if (green.is_set()) {
                say("[%s] is running\n", car.c_str());
                done.wait(tick);  // drive on for a tick, or stop when the light shuts down
                continue;
              }
              {
                std::lock_guard g(stopped.get_lock());
                stops[i] += 1;
                stopped.set(stopped.get() + 1);
              }
              say("[%s] sees red light, waiting ......\n", car.c_str());
              green.wait();
              {
                std::lock_guard g(stopped.get_lock());
                restarts[i] += 1;
                stopped.set(stopped.get() - 1);
              }
              say("[%s] green light is on, start going ......\n", car.c_str());
            }
          },
          ipckit::ProcessOptions{.name = car});
    }
    light.start();
    for (auto& p : procs) p.start();

    // Bounded join: a car that never wakes must fail the demo, not hang it.
    const auto budget =
        tick * (cycles * (green_ticks + red_ticks) + 2) + std::chrono::milliseconds(grace_ms) * (cycles + 1) + 10s;
    const auto deadline = Clock::now() + budget;
    auto left = [&] { return std::max(deadline - Clock::now(), Clock::duration::zero()); };
    bool hung = !light.join(left());
    for (auto& p : procs) hung |= !p.join(left());
    if (hung) {
      std::printf("\nFAILED: still running after %lld ms:",
                  static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(budget).count()));
      if (light.is_alive()) std::printf(" light");
      for (auto& p : procs)
        if (p.is_alive()) std::printf(" %s", p.name().c_str());
      std::printf("\n");
      light.kill();
      for (auto& p : procs) p.kill();
      light.join();
      for (auto& p : procs) p.join();
      return 1;
    }

    bool ok = light.exitcode() == 0;
    std::printf("\n%-8s  %14s  %16s\n", "car", "stopped at red", "went on at green");
    for (int i = 0; i < cars; ++i) {
      const bool car_ok = procs[i].exitcode() == 0 && stops[i] >= 1 && restarts[i] == stops[i];
      ok = ok && car_ok;
      std::printf("%-8s  %14d  %16d%s\n", car_name(i).c_str(), stops[i], restarts[i], car_ok ? "" : "   <- FAILED");
    }
    if (!ok) {
      std::printf("FAILED: a car did not stop at red, or did not go on at green (or a process failed)\n");
      return 1;
    }
    std::printf("every car stopped at red and went on at the next green: one Event, %d processes\n", cars + 1);
    return 0;
  } catch (const ipckit::Error& e) {
    std::fprintf(stderr, "traffic_light: %s\n", e.what());
    return 1;
  }
}
