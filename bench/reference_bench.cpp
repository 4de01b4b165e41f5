// Microbenchmarks of the reference page cache, each beside what bounds it,
// measured in the same run: memcpy of the same bytes (the cache must copy
// the data once) and the kernel's page cache on tmpfs; every reference
// figure under `proposed` and under `linux-4.17`, whose bookkeeping is
// simpler. scripts/bench-check judges the JSON output against the targets
// (docs/bench.md); this program only measures.
//
//   syncprobe_microbench [Google Benchmark flags]
//   syncprobe_microbench --profile=NAME [--profile_ops=N]
//       runs benchmark NAME's setup, then N operations through profiled_op()
//       and nothing else: under valgrind --tool=callgrind --collect-atstart=no
//       --toggle-collect='*profiled_op*' the instruction count is exactly
//       that of N operations (scripts/bench --profile does this).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "workloads.h"

namespace syncprobe::bench {
namespace {

using Factory = std::function<std::unique_ptr<Workload>()>;

struct Entry {
  std::string name;
  Factory make;
  uint64_t bytes_per_op = 0;  // for bytes_per_second
  uint64_t pages_per_op = 0;  // for pages_per_second
  // Fixed iteration count for workloads whose untimed prepare() dwarfs the
  // timed operation (0: Google Benchmark decides). Without it the suite
  // spends minutes re-dirtying pages around microseconds of fsync.
  int64_t iterations = 0;
};

const char* const kPolicies[] = {"proposed", "linux-4.17"};

std::vector<Entry> entries() {
  std::vector<Entry> e;
  for (size_t len : {size_t(4096), size_t(65536), size_t(1) << 20}) {
    const std::string n = std::to_string(len);
    for (const char* p : kPolicies)
      e.push_back({"BM_ReferencePwrite/" + std::string(p) + "/" + n,
                   [p, len] { return std::make_unique<RefPwrite>(p, len); }, len});
    e.push_back({"BM_Memcpy/" + n, [len] { return std::make_unique<Memcpy>(len, Memcpy::kInto); }, len});
    e.push_back({"BM_TmpfsPwrite/" + n, [len] { return std::make_unique<TmpfsPwrite>(len); }, len});
  }
  for (const char* p : kPolicies)
    e.push_back({"BM_ReferencePreadHit/" + std::string(p) + "/4096", [p] { return std::make_unique<RefPread>(p); }, kPage});
  e.push_back({"BM_MemcpyOut/4096", [] { return std::make_unique<Memcpy>(kPage, Memcpy::kOutOf); }, kPage});
  e.push_back({"BM_MemcpyBetween/4096", [] { return std::make_unique<Memcpy>(kPage, Memcpy::kBetween); }, kPage});
  e.push_back({"BM_TmpfsPreadHit/4096", [] { return std::make_unique<TmpfsPread>(); }, kPage});
  for (uint64_t pages : {1, 100, 10000}) {
    for (const char* p : kPolicies)
      e.push_back({"BM_ReferenceFsync/" + std::string(p) + "/" + std::to_string(pages),
                   [p, pages] { return std::make_unique<RefFsync>(p, pages, pages); }, 0, pages,
                   pages == 1 ? 100000 : pages == 100 ? 5000 : 30});
    e.push_back({"BM_TmpfsFsync/" + std::to_string(pages),
                 [pages] { return std::make_unique<TmpfsFsync>(pages); }, 0, pages});
  }
  for (const char* p : kPolicies) {
    e.push_back({"BM_ReferenceFsyncOneDirty/" + std::string(p) + "/10000",
                 [p] { return std::make_unique<RefFsync>(p, 1, 10000); }, 0, 1, 100000});
    e.push_back({"BM_FailingFsync/" + std::string(p) + "/100",
                 [p] { return std::make_unique<RefFailingFsync>(p, 100); }});
    e.push_back({"BM_DropCaches/" + std::string(p) + "/10000",
                 [p] { return std::make_unique<RefDropCaches>(p, 10000); }, 0, 10000, 60});
  }
  e.push_back({"BM_ErrseqCheckAndAdvance", [] { return std::make_unique<Errseq>(); }});
  return e;
}

void run(benchmark::State& state, const Entry& entry) {
  std::unique_ptr<Workload> w = entry.make();
  if (!w->error().empty()) {
    state.SkipWithError(w->error().c_str());
    return;
  }
  if (w->prepares()) {
    for (auto _ : state) {
      state.PauseTiming();
      w->prepare();
      state.ResumeTiming();
      w->timed_op();
    }
  } else {
    for (auto _ : state) w->timed_op();
  }
  if (entry.bytes_per_op) state.SetBytesProcessed(int64_t(state.iterations() * entry.bytes_per_op));
  if (entry.pages_per_op)
    state.counters["pages_per_second"] =
        benchmark::Counter(double(state.iterations() * entry.pages_per_op), benchmark::Counter::kIsRate);
}

// Heap bytes the cache holds per cached 4 KiB page beyond the page's data
// (whose frames are mapped apart, see frame_pool.h), over 16,000 pages of
// one file; and the frames mapped but not yet used, per page.
void BM_CacheMetadata(benchmark::State& state, const char* policy) {
  constexpr uint64_t kPages = 16000;  // a reference file holds at most 16,384 pages
  auto heap = [] {
    const struct mallinfo2 m = mallinfo2();
    return double(m.uordblks + m.hblkhd);  // arena and mmapped chunks in use
  };
  for (auto _ : state) {
    const double before = heap();
    auto f = std::make_unique<RefFile>(policy);
    Aligned buf(kPage, 7);
    f->write_pages(kPages, buf.span(0, kPage));
    const double after = heap();
    const ref::CacheStats st = f->fs().stats();
    state.counters["bytes_per_page"] = (after - before) / double(kPages);
    state.counters["unused_frame_bytes_per_page"] =
        (double(st.frame_bytes_reserved) - double(kPages * kPage)) / double(kPages);
  }
}

// Two workloads side by side: batches of 64 operations of each (2 for a
// workload with a setup per operation, which stays untimed), alternating
// (and alternating which goes first), each batch timed on the monotonic
// clock. Counters: a_ns and b_ns, the median time per operation of each;
// b_over_a, the median over batch pairs of b's time over a's - how fast a
// is relative to b, measured under the same conditions moment by moment,
// so that the load of a shared machine cancels out (a preempted batch is an
// outlier the median ignores).
using PairFactory = std::function<std::pair<std::unique_ptr<Workload>, std::unique_ptr<Workload>>()>;

void BM_Pair(benchmark::State& state, PairFactory make) {
  auto [a, b] = make();
  for (Workload* w : {a.get(), b.get()})
    if (!w->error().empty()) {
      state.SkipWithError(w->error().c_str());
      return;
    }
  constexpr int kBatch = 64, kPreparedBatch = 2;
  std::vector<double> ta, tb, ratio;
  auto batch = [](Workload& w) {
    if (w.prepares()) {  // a large operation: each after its own setup, only the operation timed
      double ns = 0;
      for (int i = 0; i < kPreparedBatch; ++i) {
        w.prepare();
        const auto t0 = std::chrono::steady_clock::now();
        w.timed_op();
        ns += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
      }
      return ns / kPreparedBatch;
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kBatch; ++i) w.timed_op();
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / kBatch;
  };
  bool a_first = true;
  for (auto _ : state) {
    double x, y;
    if (a_first) {
      x = batch(*a);
      y = batch(*b);
    } else {
      y = batch(*b);
      x = batch(*a);
    }
    a_first = !a_first;
    ta.push_back(x);
    tb.push_back(y);
    ratio.push_back(y / x);
  }
  auto median = [](std::vector<double>& v) {
    std::nth_element(v.begin(), v.begin() + ptrdiff_t(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  state.counters["a_ns"] = median(ta);
  state.counters["b_ns"] = median(tb);
  state.counters["b_over_a"] = median(ratio);
}

[[gnu::noinline]] void profiled_op(Workload& w) { w.timed_op(); }

int profile(const std::string& name, uint64_t ops) {
  for (const Entry& e : entries()) {
    if (e.name != name) continue;
    std::unique_ptr<Workload> w = e.make();
    if (!w->error().empty()) {
      std::fprintf(stderr, "profile: %s cannot run here: %s\n", name.c_str(), w->error().c_str());
      return 1;
    }
    for (uint64_t i = 0; i < ops; ++i) {
      if (w->prepares()) w->prepare();
      profiled_op(*w);
    }
    std::printf("profile: %s: %llu operations\n", name.c_str(), static_cast<unsigned long long>(ops));
    return 0;
  }
  std::fprintf(stderr, "profile: no benchmark named '%s' (list them with --benchmark_list_tests)\n",
               name.c_str());
  return 2;
}

}  // namespace
}  // namespace syncprobe::bench

int main(int argc, char** argv) {
  using namespace syncprobe::bench;
  std::string profile_name;
  uint64_t profile_ops = 1000;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--profile=", 10) == 0) profile_name = argv[i] + 10;
    else if (std::strncmp(argv[i], "--profile_ops=", 14) == 0) profile_ops = std::strtoull(argv[i] + 14, nullptr, 10);
    else rest.push_back(argv[i]);
  }
  if (!profile_name.empty()) return profile(profile_name, profile_ops);

  static const std::vector<Entry> table = entries();
  for (const Entry& e : table) {
    auto* b = benchmark::RegisterBenchmark(e.name.c_str(), run, std::cref(e));
    if (e.iterations) b->Iterations(e.iterations);
  }
  for (const char* p : kPolicies)
    benchmark::RegisterBenchmark(("BM_CacheMetadata/" + std::string(p)).c_str(), BM_CacheMetadata, p)
        ->Iterations(1);
  // a: the reference, b: what it is held against.
  auto pair = [](const std::string& name, PairFactory f) {
    benchmark::RegisterBenchmark(name.c_str(), BM_Pair, std::move(f));
  };
  using Two = std::pair<std::unique_ptr<Workload>, std::unique_ptr<Workload>>;
  for (size_t len : {size_t(4096), size_t(65536), size_t(1) << 20})
    pair("BM_Pair/proposed-vs-linux-4.17/pwrite/" + std::to_string(len), [len] {
      return Two(std::make_unique<RefPwrite>("proposed", len), std::make_unique<RefPwrite>("linux-4.17", len));
    });
  pair("BM_Pair/proposed-vs-linux-4.17/pread/4096", [] {
    return Two(std::make_unique<RefPread>("proposed"), std::make_unique<RefPread>("linux-4.17"));
  });
  // The same instructions under both policies (callgrind, docs/bench.md), so
  // separate loops differ only by the machine's moment: compared interleaved.
  // (drop_caches is not: as a pair, the first workload made ran 1.8x slower
  // than the second even with one policy on both sides.)
  pair("BM_Pair/proposed-vs-linux-4.17/fsync/10000", [] {
    return Two(std::make_unique<RefFsync>("proposed", 10000, 10000),
               std::make_unique<RefFsync>("linux-4.17", 10000, 10000));
  });
  for (const char* p : kPolicies) {
    const std::string pol = p;
    benchmark::RegisterBenchmark(("BM_Pair/pwrite-vs-memcpy/" + pol + "/4096").c_str(), BM_Pair,
                                 PairFactory([p] {
                                   return std::pair<std::unique_ptr<Workload>, std::unique_ptr<Workload>>(
                                       std::make_unique<RefPwrite>(p, kPage),
                                       std::make_unique<Memcpy>(kPage, Memcpy::kInto));
                                 }));
    benchmark::RegisterBenchmark(("BM_Pair/pread-vs-memcpy/" + pol + "/4096").c_str(), BM_Pair,
                                 PairFactory([p] {
                                   return std::pair<std::unique_ptr<Workload>, std::unique_ptr<Workload>>(
                                       std::make_unique<RefPread>(p),
                                       std::make_unique<Memcpy>(kPage, Memcpy::kOutOf));
                                 }));
  }
  int n = int(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
