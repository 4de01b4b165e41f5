// Microbenchmarks of the reference page cache, each beside its physical or
// practical reference measured in the same run: memcpy of the same bytes (the
// cache must copy the data once) and the kernel's own page cache doing the
// same on a tmpfs file. After the benchmarks, a summary prints the ratios
// and the targets (4 KiB pwrite >= 1.5x tmpfs and >= 0.6x memcpy; cache
// metadata <= 64 bytes per cached page), met or not.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "syncprobe/ref/errseq.h"
#include "syncprobe/ref/page_cache.h"

namespace {

using syncprobe::FaultRequest;
using syncprobe::OpenFlags;
using syncprobe::ref::PageCache;
using syncprobe::ref::make_policy;

constexpr size_t kSpan = 64ull << 20;  // writes cycle over 64 MiB of cached file

std::map<std::string, double> g_bytes_per_second;  // benchmark name -> rate, for the summary

void record(benchmark::State& state, const std::string& name, size_t bytes_per_iter) {
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes_per_iter));
  state.counters["MiB/s"] = benchmark::Counter(double(state.iterations()) * double(bytes_per_iter) / (1 << 20),
                                               benchmark::Counter::kIsRate);
  (void)name;
}

struct Cache {
  explicit Cache(const char* policy) : cache(make_policy(policy)) {
    fd = int(cache.process("a").open("f", OpenFlags{}).ret);
  }
  syncprobe::Process& p() { return cache.process("a"); }
  PageCache cache;
  int fd;
};

void BM_ReferencePwrite(benchmark::State& state) {
  const size_t len = size_t(state.range(0));
  Cache c("proposed");
  std::vector<std::byte> buf(len, std::byte{0x5a});
  for (size_t off = 0; off < kSpan; off += len) (void)c.p().pwrite(c.fd, buf, off);  // cached, dirty
  size_t off = 0;
  for (auto _ : state) {
    auto r = c.p().pwrite(c.fd, buf, off);
    benchmark::DoNotOptimize(r);
    off = (off + len) % kSpan;
  }
  record(state, "reference", len);
}

void BM_Memcpy(benchmark::State& state) {
  const size_t len = size_t(state.range(0));
  std::vector<std::byte> src(len, std::byte{0x5a});
  std::vector<std::byte> dst(kSpan);
  size_t off = 0;
  for (auto _ : state) {
    std::memcpy(dst.data() + off, src.data(), len);
    benchmark::ClobberMemory();
    off = (off + len) % kSpan;
  }
  record(state, "memcpy", len);
}

// The kernel's page cache: pwrite into an already cached tmpfs file.
void BM_TmpfsPwrite(benchmark::State& state) {
  const size_t len = size_t(state.range(0));
  char path[] = "/dev/shm/syncprobe-bench-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) {
    state.SkipWithError("no /dev/shm");
    return;
  }
  unlink(path);
  std::vector<char> buf(len, 0x5a);
  for (size_t off = 0; off < kSpan; off += len) (void)!::pwrite(fd, buf.data(), len, off_t(off));
  size_t off = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(::pwrite(fd, buf.data(), len, off_t(off)));
    off = (off + len) % kSpan;
  }
  close(fd);
  record(state, "tmpfs", len);
}

void BM_ReferencePreadHit(benchmark::State& state) {
  Cache c("proposed");
  std::vector<std::byte> buf(4096, std::byte{1});
  for (size_t off = 0; off < kSpan; off += 4096) (void)c.p().pwrite(c.fd, buf, off);
  size_t off = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(c.p().pread(c.fd, buf, off));
    off = (off + 4096) % kSpan;
  }
  record(state, "reference-pread", 4096);
}

void BM_TmpfsPreadHit(benchmark::State& state) {
  char path[] = "/dev/shm/syncprobe-bench-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) {
    state.SkipWithError("no /dev/shm");
    return;
  }
  unlink(path);
  std::vector<char> buf(4096, 1);
  for (size_t off = 0; off < kSpan; off += 4096) (void)!::pwrite(fd, buf.data(), 4096, off_t(off));
  size_t off = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(::pread(fd, buf.data(), 4096, off_t(off)));
    off = (off + 4096) % kSpan;
  }
  close(fd);
  record(state, "tmpfs-pread", 4096);
}

// fsync of N dirty pages to the simulated device (includes the flush).
void BM_ReferenceFsync(benchmark::State& state, const char* policy) {
  const int64_t pages = state.range(0);
  Cache c(policy);
  std::vector<std::byte> buf(4096, std::byte{2});
  for (auto _ : state) {
    state.PauseTiming();
    for (int64_t i = 0; i < pages; ++i) (void)c.p().pwrite(c.fd, buf, uint64_t(i) * 4096);
    state.ResumeTiming();
    benchmark::DoNotOptimize(c.p().fsync(c.fd));
  }
  state.counters["pages/s"] = benchmark::Counter(double(state.iterations() * pages), benchmark::Counter::kIsRate);
}

void BM_TmpfsFsync(benchmark::State& state) {
  const int64_t pages = state.range(0);
  char path[] = "/dev/shm/syncprobe-bench-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) {
    state.SkipWithError("no /dev/shm");
    return;
  }
  unlink(path);
  std::vector<char> buf(4096, 2);
  for (auto _ : state) {
    state.PauseTiming();
    for (int64_t i = 0; i < pages; ++i) (void)!::pwrite(fd, buf.data(), 4096, off_t(i * 4096));
    state.ResumeTiming();
    benchmark::DoNotOptimize(::fsync(fd));  // tmpfs has nothing to write: nearly free
  }
  close(fd);
  state.counters["pages/s"] = benchmark::Counter(double(state.iterations() * pages), benchmark::Counter::kIsRate);
}

// fsync of N pages while the device fails: proposed keeps them dirty and
// retries every time; linux-4.17 marks them clean and has nothing to retry.
void BM_FailingFsync(benchmark::State& state, const char* policy) {
  const int64_t pages = state.range(0);
  Cache c(policy);
  std::vector<std::byte> buf(4096, std::byte{3});
  for (int64_t i = 0; i < pages; ++i) (void)c.p().pwrite(c.fd, buf, uint64_t(i) * 4096);
  FaultRequest req;  // the whole device fails writes
  req.rule.err = EIO;
  nlohmann::json detail;
  (void)c.cache.fault(req, detail);
  for (auto _ : state) benchmark::DoNotOptimize(c.p().fsync(c.fd));
  state.counters["dirty_pages_left"] = double(c.cache.stats().dirty_pages);
}

// drop_caches over N clean cached pages (eviction under pressure).
void BM_DropCaches(benchmark::State& state) {
  const int64_t pages = state.range(0);
  Cache c("proposed");
  std::vector<std::byte> buf(4096, std::byte{4});
  for (int64_t i = 0; i < pages; ++i) (void)c.p().pwrite(c.fd, buf, uint64_t(i) * 4096);
  (void)c.p().fsync(c.fd);
  for (auto _ : state) {
    state.PauseTiming();
    for (int64_t i = 0; i < pages; ++i) (void)c.p().pread(c.fd, buf, uint64_t(i) * 4096);
    state.ResumeTiming();
    benchmark::DoNotOptimize(c.cache.drop_caches());
  }
  state.counters["pages/s"] = benchmark::Counter(double(state.iterations() * pages), benchmark::Counter::kIsRate);
}

void BM_ErrseqCheckAndAdvance(benchmark::State& state) {
  using namespace syncprobe::ref;
  errseq_t wb = 0, cursor = 0;
  uint64_t i = 0;
  for (auto _ : state) {
    if ((++i & 7) == 0) errseq_set(wb, EIO);
    benchmark::DoNotOptimize(errseq_check_and_advance(wb, cursor));
  }
}

BENCHMARK(BM_ReferencePwrite)->Arg(4096)->Arg(65536)->Arg(1 << 20);
BENCHMARK(BM_TmpfsPwrite)->Arg(4096)->Arg(65536)->Arg(1 << 20);
BENCHMARK(BM_Memcpy)->Arg(4096)->Arg(65536)->Arg(1 << 20);
BENCHMARK(BM_ReferencePreadHit);
BENCHMARK(BM_TmpfsPreadHit);
BENCHMARK_CAPTURE(BM_ReferenceFsync, proposed, "proposed")->Arg(1)->Arg(100)->Arg(10000);
BENCHMARK_CAPTURE(BM_ReferenceFsync, linux_4_17, "linux-4.17")->Arg(1)->Arg(100)->Arg(10000);
BENCHMARK(BM_TmpfsFsync)->Arg(1)->Arg(100)->Arg(10000);
BENCHMARK_CAPTURE(BM_FailingFsync, proposed_retries, "proposed")->Arg(100);
BENCHMARK_CAPTURE(BM_FailingFsync, linux_4_17_discards, "linux-4.17")->Arg(100);
BENCHMARK(BM_DropCaches)->Arg(10000);
BENCHMARK(BM_ErrseqCheckAndAdvance);

// Collects the rates for the ratio summary.
class Collector : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      auto it = r.counters.find("MiB/s");
      if (it != r.counters.end() && r.run_type == Run::RT_Iteration) g_bytes_per_second[r.benchmark_name()] = it->second;
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

// Heap bytes per cached page beyond the page's 4 KiB of data.
double metadata_bytes_per_page() {
  constexpr int kPages = 16000;  // a reference file holds at most 16384 pages (64 MiB)
  auto heap = [] {
    const struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;  // arena and mmapped chunks in use
  };
  const size_t before = heap();
  auto c = std::make_unique<Cache>("proposed");
  std::vector<std::byte> buf(4096, std::byte{7});
  for (int i = 0; i < kPages; ++i) (void)c->p().pwrite(c->fd, buf, uint64_t(i) * 4096);
  const size_t after = heap();
  return (double(after - before) - double(kPages) * 4096) / kPages;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  Collector reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  auto rate = [](const std::string& name) {
    auto it = g_bytes_per_second.find(name);
    return it == g_bytes_per_second.end() ? 0.0 : it->second;
  };
  std::printf("\nSummary (same run, same machine)\n");
  for (const char* size : {"4096", "65536", "1048576"}) {
    const double ref = rate(std::string("BM_ReferencePwrite/") + size);
    const double tmpfs = rate(std::string("BM_TmpfsPwrite/") + size);
    const double mem = rate(std::string("BM_Memcpy/") + size);
    if (ref <= 0 || tmpfs <= 0 || mem <= 0) continue;
    std::printf("pwrite %7s B: reference %8.0f MiB/s, tmpfs %8.0f MiB/s (x%.2f), memcpy %8.0f MiB/s (x%.2f)\n",
                size, ref, tmpfs, ref / tmpfs, mem, ref / mem);
    if (std::string(size) == "4096")
      std::printf("  target: >= 1.5x tmpfs: %s; >= 0.6x memcpy: %s\n", ref / tmpfs >= 1.5 ? "met" : "MISSED",
                  ref / mem >= 0.6 ? "met" : "MISSED");
  }
  const double meta = metadata_bytes_per_page();
  std::printf("cache metadata per cached 4 KiB page: %.1f bytes (target <= 64: %s)\n", meta,
              meta <= 64 ? "met" : "MISSED");
  return 0;
}
