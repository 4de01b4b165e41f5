#include "syncprobe/clock.h"
#include "syncprobe/executor.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include "syncprobe/interrupt.h"

namespace syncprobe {

CaseResult error_result(const Target& t, const Case& c, const std::string& why) {
  CaseResult r = new_result(t, c);
  r.status = CaseStatus::error;
  r.reason = why;
  return r;
}

CaseResult unavailable_result(const Target& t, const Case& c, const std::string& why) {
  CaseResult r = error_result(t, c, "target unavailable: " + why);
  r.status = CaseStatus::skipped;
  return r;
}

bool execute(const Plan& plan, const RunContext& ctx, const ResultSink& sink) {
  std::mutex sink_mu;
  std::atomic<bool> internal_failure{false};
  auto store = [&](const CaseResult& r) {
    std::lock_guard lock(sink_mu);
    sink(r);
  };
  const auto& cases = plan.cases;
  auto halted = [&] { return interrupted() || (plan.stop && plan.stop()); };
  auto done = [&](const Target& t, const Case& c) { return plan.done && plan.done(t, c); };
  // One target, case by case, so results appear as they come.
  auto run_target = [&](Target& t) {
    const Availability a = t.availability();
    for (const Case* c : cases) {
      if (halted()) return;
      if (done(t, *c)) continue;
      if (!a.available) {
        store(unavailable_result(t, *c, a.reason));
        continue;
      }
      if (auto skipped = skip_if_unsupported(t, *c)) {
        store(*skipped);
        continue;
      }
      try {
        store(t.run(*c, ctx));
      } catch (const std::exception& e) {
        internal_failure = true;
        store(error_result(t, *c, std::string("internal failure: ") + e.what()));
      }
    }
  };

  std::vector<Target*> modelled;
  std::map<std::string, std::vector<Target*>> batches;
  std::vector<std::string> batch_order;
  for (Target* t : plan.targets) {
    if (!t->uses_machine()) {
      modelled.push_back(t);
    } else {
      const std::string key = t->batch_key();
      if (!batches.count(key)) batch_order.push_back(key);
      batches[key].push_back(t);
    }
  }
  {
    std::atomic<size_t> next{0};
    std::vector<std::thread> pool;
    for (int j = 0; j < std::max(1, plan.jobs); ++j)
      pool.emplace_back([&] {
        for (size_t i = next++; i < modelled.size(); i = next++) run_target(*modelled[i]);
      });
    for (auto& th : pool) th.join();
  }
  // Batches that bring their own machine (a VM guest each) run side by side
  // on isolated_jobs threads; the others one at a time, after them.
  std::vector<std::string> isolated, shared;
  for (const auto& key : batch_order)
    (batches[key].front()->isolated_batches() ? isolated : shared).push_back(key);
  auto run_group = [&](const std::string& key) {
    auto& group = batches[key];
    if (group.size() == 1 && key == group.front()->name()) {
      run_target(*group.front());
      return;
    }
    // One setup for the whole group (a VM boot); unavailable members are
    // reported here, available ones handed to the batch.
    std::vector<Target*> ready;
    for (Target* t : group) {
      const Availability a = t->availability();
      if (a.available) {
        ready.push_back(t);
        continue;
      }
      for (const Case* c : cases) store(unavailable_result(*t, *c, a.reason));
    }
    // The cases some member still lacks (all of them unless resuming).
    std::vector<const Case*> todo;
    for (const Case* c : cases)
      if (std::any_of(ready.begin(), ready.end(), [&](Target* t) { return !done(*t, *c); })) todo.push_back(c);
    if (ready.empty() || todo.empty()) return;
    try {
      auto results = ready.front()->run_batch(ready, todo, ctx);
      for (auto& [name, list] : results)
        for (auto& r : list) store(r);
    } catch (const std::exception& e) {
      internal_failure = true;
      for (Target* t : ready)
        for (const Case* c : todo)
          if (!done(*t, *c)) store(error_result(*t, *c, std::string("internal failure: ") + e.what()));
    }
  };
  {
    std::atomic<size_t> next{0};
    std::vector<std::thread> pool;
    const int n = std::max(1, std::min(plan.isolated_jobs, int(isolated.size())));
    for (int j = 0; j < n; ++j)
      pool.emplace_back([&] {
        for (size_t i = next++; i < isolated.size() && !halted(); i = next++) run_group(isolated[i]);
      });
    for (auto& th : pool) th.join();
  }
  for (const auto& key : shared) {
    if (halted()) break;
    run_group(key);
  }
  return !internal_failure;
}

}  // namespace syncprobe
