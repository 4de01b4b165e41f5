#pragma once
// A seeded random driver of the reference through its whole API, writing one
// line per operation: what was asked, what it returned, a hash of any bytes
// read, and the cache's counters afterwards. trace_test.cpp compares the
// lines' hashes with those of an earlier implementation. Two "processes"
// hold descriptions, as the runner's cases do; the lines (and the JSON of
// fault details) are written as the runner's Storage adapter wrote them when
// the golden hashes were taken.
#include <cerrno>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/errno_names.h"
#include "syncprobe/ref/file_system.h"

namespace syncprobe::ref::testing {

inline constexpr size_t kTraceBlock = 100;  // operations per hash

inline uint64_t fnv1a(const void* data, size_t n, uint64_t h = 14695981039346656037ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

inline std::vector<uint64_t> block_hashes(const std::vector<std::string>& lines) {
  std::vector<uint64_t> out((lines.size() + kTraceBlock - 1) / kTraceBlock,
                            14695981039346656037ull);
  for (size_t i = 0; i < lines.size(); ++i)
    out[i / kTraceBlock] = fnv1a(lines[i].data(), lines[i].size() + 1, out[i / kTraceBlock]);
  return out;
}

class TraceDriver {
 public:
  TraceDriver(const std::string& policy, uint64_t seed) : fs_(make_policy(policy)), rng_(seed) {}

  std::vector<std::string> run(int ops) {
    std::vector<std::string> lines;
    for (int i = 0; i < ops; ++i) {
      std::string line = std::to_string(i) + " " + step(i);
      const CacheStats st = fs_.stats();
      line += " | c" + std::to_string(st.cached_pages) + " d" + std::to_string(st.dirty_pages) +
              " e" + std::to_string(st.error_pages) + " h" + std::to_string(st.error_bytes_held) +
              " x" + std::to_string(st.discarded_error_pages) + " w" +
              std::to_string(st.writeback_errors) + " i" + std::to_string(fs_.injected_hits()) +
              " " + fs_.layer();
      if (i % 10 == 9)
        line += " " + nlohmann::json{{"writeback_errors", st.writeback_errors},
                                     {"discarded_error_pages", st.discarded_error_pages},
                                     {"evicted_under_pressure", st.evicted_pages},
                                     {"error_bytes_held", st.error_bytes_held},
                                     {"device_writes", st.device_writes},
                                     {"device_flushes", st.device_flushes}}
                          .dump();
      lines.push_back(std::move(line));
    }
    return lines;
  }

 private:
  int pick(int n) { return int(rng_() % uint64_t(n)); }
  bool chance(int percent) { return pick(100) < percent; }

  static std::string res(const SysResult& r) {
    if (r.hung) return "hung";
    if (!r.ok()) return "-1 " + errno_name(r.err);
    return std::to_string(r.ret);
  }

  const char* proc_name() { return pick(3) ? "a" : "b"; }
  std::string path() {
    static const char* const paths[] = {"f0", "f1", "f2", "f3", "f0", "f1", ".", "@device", "d/x"};
    return paths[pick(int(std::size(paths)))];
  }
  std::string file_path() { return "f" + std::to_string(pick(4)); }

  // A description of `p`, or a bad one now and then.
  Handle fd_of(const std::string& p) {
    auto& v = fds_[p];
    if (v.empty() || chance(3)) return Handle{};
    return v[size_t(pick(int(v.size())))];
  }

  // Offsets: mostly the first 8 pages, sometimes unaligned, the end of a
  // 64 MiB file, or unused raw-device blocks.
  uint64_t offset() {
    const int k = pick(100);
    if (k < 60) return uint64_t(pick(8)) * kPageSize;
    if (k < 85) return uint64_t(pick(8 * int(kPageSize)));
    if (k < 93) return kBlocksPerFile * kPageSize - uint64_t(pick(3)) * kPageSize;
    return (kMetadataBlocks + uint64_t(pick(16))) * kPageSize;
  }
  uint64_t length() {
    const int k = pick(100);
    if (k < 50) return kPageSize;
    if (k < 70) return 2 * kPageSize;
    return 1 + uint64_t(pick(3 * int(kPageSize)));
  }

  std::string step(int i) {
    const std::string p = proc_name();
    // Processes left without descriptors (power cut, read-back) open again soon.
    const int k = fds_[p].size() < 2 && chance(60) ? 0 : pick(1000);
    if (k < 110) {
      const std::string where = path();
      OpenFlags f;
      f.create = chance(85);
      f.truncate = chance(8);
      f.direct = chance(8);
      f.sync = chance(5);
      f.dsync = chance(5);
      f.read_only = chance(10);
      f.directory = where == "." ? chance(70) : chance(3);
      Handle h;
      SysResult r = where == "@device" ? fs_.open_device(f, h) : fs_.open(where, f, h);
      if (r.ok()) fds_[p].push_back(h);
      return p + " open " + where + " c" + std::to_string(f.create) + "t" +
             std::to_string(f.truncate) + "d" + std::to_string(f.direct) + "s" +
             std::to_string(f.sync) + "y" + std::to_string(f.dsync) + "r" +
             std::to_string(f.read_only) + "D" + std::to_string(f.directory) + " -> " +
             (r.ok() ? "fd" : res(r));
    }
    if (k < 160) {
      const Handle fd = fd_of(p);
      SysResult r = fs_.close(fd);
      if (r.ok()) std::erase(fds_[p], fd);
      return p + " close " + (fd == Handle{} ? "bad" : "fd") + " -> " + res(r);
    }
    if (k < 420) {
      const Handle fd = fd_of(p);
      const uint64_t off = offset(), len = length();
      std::vector<std::byte> data(len);
      const uint32_t v = ++version_;
      for (size_t j = 0; j < len; ++j) data[j] = std::byte((v * 131 + j * 7 + (j >> 12)) & 0xff);
      SysResult r = fs_.pwrite(fd, data, off);
      return p + " pwrite " + std::to_string(off) + "+" + std::to_string(len) + " v" +
             std::to_string(v) + " -> " + res(r);
    }
    if (k < 560) {
      const Handle fd = fd_of(p);
      const uint64_t off = offset(), len = length();
      std::vector<std::byte> out(len, std::byte{0xee});
      SysResult r = fs_.pread(fd, out, off);
      std::string h;
      if (r.ok()) h = " #" + std::to_string(fnv1a(out.data(), size_t(r.ret)));
      return p + " pread " + std::to_string(off) + "+" + std::to_string(len) + " -> " + res(r) + h;
    }
    if (k < 650) return p + " fsync -> " + res(fs_.fsync(fd_of(p), false));
    if (k < 690) return p + " fdatasync -> " + res(fs_.fsync(fd_of(p), true));
    if (k < 710) {
      SyncRangeFlags f{chance(50), chance(85), chance(70)};
      const uint64_t off = offset(), len = chance(20) ? 0 : length();
      return p + " sync_file_range " + std::to_string(off) + "+" + std::to_string(len) + " " +
             std::to_string(f.wait_before) + std::to_string(f.write) +
             std::to_string(f.wait_after) + " -> " +
             res(fs_.sync_file_range(fd_of(p), off, len, f));
    }
    if (k < 725) {
      const uint64_t off = uint64_t(pick(6 * int(kPageSize))), len = 1 + uint64_t(pick(6000));
      std::vector<std::byte> data(len, std::byte(++version_ & 0xff));
      return p + " msync " + std::to_string(off) + "+" + std::to_string(len) + " -> " +
             res(fs_.msync_write(fd_of(p), data, off));
    }
    if (k < 740) return p + " syncfs -> " + res(fs_.syncfs(fd_of(p)));
    if (k < 750) return p + " sync -> " + res(fs_.sync());
    if (k < 765) {
      const std::string where = path();
      Attr a;
      SysResult r = fs_.getattr(where, a);
      if (r.ok()) r = SysResult::success(int64_t(a.size));
      return p + " stat " + where + " -> " + res(r);
    }
    if (k < 780) {
      const std::string a = file_path(), b = file_path();
      return p + " rename " + a + " " + b + " -> " + res(fs_.rename(a, b));
    }
    if (k < 790) {
      const std::string a = file_path();
      return p + " unlink " + a + " -> " + res(fs_.unlink(a));
    }
    if (k < 850) return fault();
    if (k < 895) return std::string("heal -> ") + res(fs_.heal());
    if (k < 925) return std::string("drop_caches -> ") + res(fs_.drop_caches());
    if (k < 945) return std::string("writeback -> ") + res(fs_.writeback());
    if (k < 955) {
      SysResult r = fs_.remount();
      return std::string("remount -> ") + res(r);
    }
    if (k < 962) {
      SysResult r = fs_.power_cut();
      fds_.clear();
      return std::string("power_cut -> ") + res(r);
    }
    if (k < 972) {
      const std::string where = chance(90) ? file_path() : "@device";
      const uint64_t off = offset(), len = length();
      ReadBack rb = fs_.read_back(where, off, len, where == "@device");
      fds_.clear();
      return "read_back " + where + " " + std::to_string(off) + "+" + std::to_string(len) +
             " -> " + res(rb.result) + " #" + std::to_string(fnv1a(rb.data.data(), rb.data.size()));
    }
    if (k < 980) {
      const uint64_t room = uint64_t(pick(12)) * kPageSize;
      const FaultMode m = chance(70) ? FaultMode::error : FaultMode::hang;
      SysResult r = fs_.thin_limit(room, m);
      nlohmann::json d{{"allocated_blocks", fs_.device().allocated_blocks()},
                       {"capacity_blocks", *fs_.device().capacity_blocks()},
                       {"when_full", m == FaultMode::hang ? "queue" : "error"}};
      return "thin_limit " + std::to_string(room) + " -> " + res(r) + " " + d.dump();
    }
    if (k < 986) {
      SysResult r = fs_.grow(uint64_t(pick(8)) * kPageSize);
      nlohmann::json d;
      if (r.ok()) d["capacity_blocks"] = *fs_.device().capacity_blocks();
      return "grow -> " + res(r) + " " + d.dump();
    }
    // Limits cannot be lifted: set late in the sequence so that most of it runs without.
    if (i > 2500 && k < 993) {
      const uint64_t b = uint64_t(1 + pick(8)) * kPageSize;
      return "memory_limit " + std::to_string(b) + " -> " + res(fs_.memory_limit(b));
    }
    if (i > 3200) {
      const uint64_t b = uint64_t(4 + pick(40)) * kPageSize;
      return "cache_limit " + std::to_string(b) + " -> " + res(fs_.cache_limit(b));
    }
    return "nothing";
  }

  std::string fault() {
    FaultPlace place;
    FaultRule rule;
    const int w = pick(10);
    place.where = w < 5 ? FaultPlace::Where::data
                  : w < 8 ? FaultPlace::Where::device
                          : FaultPlace::Where::metadata;
    place.path = file_path();
    const int o = pick(10);
    rule.op = o < 6 ? FaultOp::write : o < 8 ? FaultOp::read : FaultOp::flush;
    const int m = pick(20);
    rule.mode = m < 16 ? FaultMode::error : m < 19 ? FaultMode::drop : FaultMode::hang;
    static const int errs[] = {EIO, EIO, ENOSPC, ENXIO, 0};
    rule.err = errs[pick(5)];
    if (chance(50)) rule.count = uint32_t(1 + pick(5));
    FaultRule got;
    SysResult r = fs_.fault(place, rule, got);
    nlohmann::json d;
    if (r.ok()) {
      auto ranges = nlohmann::json::array();
      for (const auto& x : got.ranges) ranges.push_back({x.offset, x.length});
      d["ranges"] = ranges;
      d["invert"] = got.invert;
      d["io"] = std::string(to_string(got.op));
      d["mode"] = std::string(to_string(got.mode));
      if (got.mode == FaultMode::error) d["errno"] = errno_name(got.err);
      if (got.count) d["count"] = *got.count;
    }
    return "fault w" + std::to_string(w) + " " + place.path + " -> " + res(r) + " " + d.dump();
  }

  FileSystem fs_;
  std::mt19937_64 rng_;
  std::map<std::string, std::vector<Handle>> fds_;
  uint32_t version_ = 0;
};

inline std::vector<std::string> run_trace(const std::string& policy, uint64_t seed, int ops) {
  return TraceDriver(policy, seed).run(ops);
}

}  // namespace syncprobe::ref::testing
