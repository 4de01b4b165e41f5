// Random sequences of operations and faults under `proposed`, with a printed
// seed (set SYNCPROBE_SEED to replay one). Checked properties:
//   R2: after a power cut, every page a successful fsync covered (the version
//       its descriptor last read or wrote there) holds that version or a
//       newer one on the device;
//   R3: an fsync succeeds only if every page the descriptor wrote still holds
//       what it wrote last (or newer): data discarded under it means failure.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>

#include "test_rig.h"

namespace syncprobe::ref::testing {
namespace {

constexpr int kFiles = 3;
constexpr int kPages = 6;

// Versions are tags "v<N>" with N increasing over the whole run.
int version_of(const std::string& tag) {
  return tag.size() > 1 && tag[0] == 'v' ? std::atoi(tag.c_str() + 1) : 0;
}

struct Desc {
  std::string proc;
  int fd = -1;
  int file = 0;
  std::map<int, int> wrote;    // page -> last version written through it
  std::map<int, int> seen;     // page -> last version read or written through it
};

void run_once(uint64_t seed, int steps) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto pick = [&](int n) { return int(rng() % uint64_t(n)); };
  Rig rig("proposed");
  std::vector<Desc> descs;
  std::map<std::pair<int, int>, int> durable;  // (file, page) -> version fsync covered
  int next_version = 1;
  auto file_name = [](int f) { return "f" + std::to_string(f); };
  auto open_desc = [&] {
    Desc d;
    d.proc = pick(2) ? "a" : "b";
    d.file = pick(kFiles);
    SysResult r = rig.proc(d.proc).open(file_name(d.file), {});
    ASSERT_TRUE(r.ok());
    d.fd = int(r.ret);
    descs.push_back(d);
  };
  for (int i = 0; i < 4; ++i) open_desc();
  for (int step = 0; step < steps; ++step) {
    const int op = pick(100);
    Desc& d = descs[size_t(pick(int(descs.size())))];
    const int page = pick(kPages);
    if (op < 35) {  // pwrite one page
      const std::string tag = "v" + std::to_string(next_version++);
      ASSERT_TRUE(rig.write(d.fd, tag, uint64_t(page) * 4096, 4096, d.proc).ok());
      d.wrote[page] = d.seen[page] = version_of(tag);
    } else if (op < 50) {  // pread
      std::string tag = rig.read(d.fd, uint64_t(page) * 4096, 4096, d.proc);
      if (tag.rfind("-1", 0) != 0) d.seen[page] = version_of(tag);
    } else if (op < 70) {  // fsync
      SysResult r = rig.proc(d.proc).fsync(d.fd);
      ASSERT_FALSE(r.hung);
      if (r.ok()) {
        for (const auto& [p, version] : d.seen) {
          int& dur = durable[{d.file, p}];
          dur = std::max(dur, version);
        }
        for (const auto& [p, version] : d.wrote) {
          const std::string now = rig.read(d.fd, uint64_t(p) * 4096, 4096, d.proc);
          ASSERT_GE(version_of(now), version)
              << "R3: fsync succeeded but page " << p << " of " << file_name(d.file)
              << " lost what this descriptor wrote";
          d.seen[p] = version_of(now);
        }
      }
    } else if (op < 78) {  // a fault: data of one file or the whole device
      FaultPlace place;
      place.where = pick(3) ? FaultPlace::Where::data : FaultPlace::Where::device;
      place.path = file_name(pick(kFiles));
      FaultRule rule, got;
      rule.op = pick(5) ? FaultOp::write : FaultOp::flush;
      rule.err = pick(3) ? EIO : ENOSPC;
      if (pick(2)) rule.count = uint32_t(1 + pick(4));
      SysResult r = rig.fs.fault(place, rule, got);
      ASSERT_TRUE(r.ok() || r.err == ENOENT);  // ENOENT: the file is not created yet
    } else if (op < 86) {
      rig.heal();
    } else if (op < 90) {
      ASSERT_TRUE(rig.fs.drop_caches().ok());
    } else if (op < 93) {
      ASSERT_TRUE(rig.fs.writeback().ok());
    } else if (op < 96) {  // close and reopen
      ASSERT_TRUE(rig.proc(d.proc).close(d.fd).ok());
      d = Desc{};
      d.proc = pick(2) ? "a" : "b";
      d.file = pick(kFiles);
      SysResult r = rig.proc(d.proc).open(file_name(d.file), {});
      ASSERT_TRUE(r.ok());
      d.fd = int(r.ret);
    } else if (pick(2)) {
      ASSERT_TRUE(rig.fs.memory_limit(uint64_t(1 + pick(6)) * 4096).ok());
    } else {  // memory pressure: clean pages evicted, dirty ones written back
      ASSERT_TRUE(rig.fs.cache_limit(uint64_t(2 + pick(8)) * 4096).ok());
    }
  }
  rig.heal();
  ASSERT_TRUE(rig.fs.power_cut().ok());
  for (const auto& [key, version] : durable) {
    if (version == 0) continue;
    const auto [file, page] = key;
    const std::string tag = rig.disk(file_name(file), uint64_t(page) * 4096, 4096);
    EXPECT_GE(version_of(tag), version)
        << "R2: " << file_name(file) << " page " << page << " was covered by a successful "
        << "fsync at v" << version << " but the device holds " << tag;
  }
}

TEST(RandomProposed, SuccessfulFsyncMeansDurableAndDiscardedMeansFailure) {
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("SYNCPROBE_SEED")) seed = std::strtoull(s, nullptr, 10);
  std::printf("random_test seed: %llu (replay with SYNCPROBE_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  for (int round = 0; round < 200; ++round) {
    run_once(seed + uint64_t(round), 300);
    if (::testing::Test::HasFailure()) return;
  }
}

// The property is not vacuous: linux-4.17 breaks R2 on the same kind of
// sequence (a page is marked clean after its write fails).
TEST(RandomProposed, TheCheckCatchesLinux) {
  Rig rig("linux-4.17");
  int a = rig.open();
  rig.fail_data("f", EIO, 1);
  ASSERT_TRUE(rig.write(a, "v1", 0, 4096).ok());
  EXPECT_EQ(rig.fsync(a), EIO);
  EXPECT_EQ(rig.fsync(a), 0) << "success though v1 never reached the device";
  ASSERT_TRUE(rig.fs.power_cut().ok());
  EXPECT_LT(version_of(rig.disk("f", 0, 4096)), 1);
}

}  // namespace
}  // namespace syncprobe::ref::testing
