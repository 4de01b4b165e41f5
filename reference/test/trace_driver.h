#pragma once
// A seeded random driver of the reference through its whole API, writing one
// line per operation: what was asked, what it returned, a hash of any bytes
// read, and the cache's counters afterwards. trace_test.cpp compares the
// lines' hashes with those of an earlier implementation.
#include <cerrno>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "syncprobe/errno_names.h"
#include "syncprobe/ref/page_cache.h"

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
  TraceDriver(const std::string& policy, uint64_t seed)
      : cache_(make_policy(policy)), rng_(seed) {}

  std::vector<std::string> run(int ops) {
    std::vector<std::string> lines;
    for (int i = 0; i < ops; ++i) {
      std::string line = std::to_string(i) + " " + step(i);
      const CacheStats st = cache_.stats();
      line += " | c" + std::to_string(st.cached_pages) + " d" + std::to_string(st.dirty_pages) +
              " e" + std::to_string(st.error_pages) + " h" + std::to_string(st.error_bytes_held) +
              " x" + std::to_string(st.discarded_error_pages) + " w" +
              std::to_string(st.writeback_errors) + " i" + std::to_string(cache_.injected_hits()) +
              " " + cache_.layer();
      if (i % 10 == 9) line += " " + cache_.environment()["counters"].dump();
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

  // A descriptor of `p`, or a bad one now and then.
  int fd_of(const std::string& p) {
    auto& v = fds_[p];
    if (v.empty() || chance(3)) return 999;
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
    Process& proc = cache_.process(p);
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
      SysResult r = proc.open(where, f);
      if (r.ok()) fds_[p].push_back(int(r.ret));
      return p + " open " + where + " c" + std::to_string(f.create) + "t" +
             std::to_string(f.truncate) + "d" + std::to_string(f.direct) + "s" +
             std::to_string(f.sync) + "y" + std::to_string(f.dsync) + "r" +
             std::to_string(f.read_only) + "D" + std::to_string(f.directory) + " -> " +
             (r.ok() ? "fd" : res(r));
    }
    if (k < 160) {
      const int fd = fd_of(p);
      SysResult r = proc.close(fd);
      if (r.ok()) std::erase(fds_[p], fd);
      return p + " close " + (fd == 999 ? "bad" : "fd") + " -> " + res(r);
    }
    if (k < 420) {
      const int fd = fd_of(p);
      const uint64_t off = offset(), len = length();
      std::vector<std::byte> data(len);
      const uint32_t v = ++version_;
      for (size_t j = 0; j < len; ++j) data[j] = std::byte((v * 131 + j * 7 + (j >> 12)) & 0xff);
      SysResult r = proc.pwrite(fd, data, off);
      return p + " pwrite " + std::to_string(off) + "+" + std::to_string(len) + " v" +
             std::to_string(v) + " -> " + res(r);
    }
    if (k < 560) {
      const int fd = fd_of(p);
      const uint64_t off = offset(), len = length();
      std::vector<std::byte> out(len, std::byte{0xee});
      SysResult r = proc.pread(fd, out, off);
      std::string h;
      if (r.ok()) h = " #" + std::to_string(fnv1a(out.data(), size_t(r.ret)));
      return p + " pread " + std::to_string(off) + "+" + std::to_string(len) + " -> " + res(r) + h;
    }
    if (k < 650) return p + " fsync -> " + res(proc.fsync(fd_of(p)));
    if (k < 690) return p + " fdatasync -> " + res(proc.fdatasync(fd_of(p)));
    if (k < 710) {
      SyncFileRangeFlags f{chance(50), chance(85), chance(70)};
      const uint64_t off = offset(), len = chance(20) ? 0 : length();
      return p + " sync_file_range " + std::to_string(off) + "+" + std::to_string(len) + " " +
             std::to_string(f.wait_before) + std::to_string(f.write) +
             std::to_string(f.wait_after) + " -> " +
             res(proc.sync_file_range(fd_of(p), off, len, f));
    }
    if (k < 725) {
      const uint64_t off = uint64_t(pick(6 * int(kPageSize))), len = 1 + uint64_t(pick(6000));
      std::vector<std::byte> data(len, std::byte(++version_ & 0xff));
      return p + " msync " + std::to_string(off) + "+" + std::to_string(len) + " -> " +
             res(proc.msync_write(fd_of(p), data, off));
    }
    if (k < 740) return p + " syncfs -> " + res(proc.syncfs(fd_of(p)));
    if (k < 750) return p + " sync -> " + res(proc.sync());
    if (k < 765) {
      const std::string where = path();
      return p + " stat " + where + " -> " + res(proc.stat(where));
    }
    if (k < 780) {
      const std::string a = file_path(), b = file_path();
      return p + " rename " + a + " " + b + " -> " + res(proc.rename(a, b));
    }
    if (k < 790) {
      const std::string a = file_path();
      return p + " unlink " + a + " -> " + res(proc.unlink(a));
    }
    if (k < 850) return fault();
    if (k < 895) return std::string("heal -> ") + res(cache_.heal());
    if (k < 925) return std::string("drop_caches -> ") + res(cache_.drop_caches());
    if (k < 945) return std::string("writeback -> ") + res(cache_.writeback());
    if (k < 955) {
      SysResult r = cache_.remount();
      return std::string("remount -> ") + res(r);
    }
    if (k < 962) {
      SysResult r = cache_.power_cut();
      fds_.clear();
      return std::string("power_cut -> ") + res(r);
    }
    if (k < 972) {
      const std::string where = chance(90) ? file_path() : "@device";
      const uint64_t off = offset(), len = length();
      ReadBack rb = cache_.read_back(where, off, len);
      fds_.clear();
      return "read_back " + where + " " + std::to_string(off) + "+" + std::to_string(len) +
             " -> " + res(rb.result) + " #" + std::to_string(fnv1a(rb.data.data(), rb.data.size()));
    }
    if (k < 980) {
      nlohmann::json d;
      const uint64_t room = uint64_t(pick(12)) * kPageSize;
      const FaultMode m = chance(70) ? FaultMode::error : FaultMode::hang;
      SysResult r = cache_.thin_limit(room, m, d);
      return "thin_limit " + std::to_string(room) + " -> " + res(r) + " " + d.dump();
    }
    if (k < 986) {
      nlohmann::json d;
      SysResult r = cache_.grow(uint64_t(pick(8)) * kPageSize, d);
      return "grow -> " + res(r) + " " + d.dump();
    }
    // Limits cannot be lifted: set late in the sequence so that most of it runs without.
    if (i > 2500 && k < 993) {
      const uint64_t b = uint64_t(1 + pick(8)) * kPageSize;
      return "memory_limit " + std::to_string(b) + " -> " + res(cache_.memory_limit(b));
    }
    if (i > 3200) {
      const uint64_t b = uint64_t(4 + pick(40)) * kPageSize;
      return "cache_limit " + std::to_string(b) + " -> " + res(cache_.cache_limit(b));
    }
    return "nothing";
  }

  std::string fault() {
    FaultRequest req;
    const int w = pick(10);
    req.where = w < 5 ? FaultRequest::Where::data
                : w < 8 ? FaultRequest::Where::device
                        : FaultRequest::Where::metadata;
    req.file = file_path();
    const int o = pick(10);
    req.rule.op = o < 6 ? FaultOp::write : o < 8 ? FaultOp::read : FaultOp::flush;
    const int m = pick(20);
    req.rule.mode = m < 16 ? FaultMode::error : m < 19 ? FaultMode::drop : FaultMode::hang;
    static const int errs[] = {EIO, EIO, ENOSPC, ENXIO, 0};
    req.rule.err = errs[pick(5)];
    if (chance(50)) req.rule.count = uint32_t(1 + pick(5));
    nlohmann::json d;
    SysResult r = cache_.fault(req, d);
    return "fault w" + std::to_string(w) + " " + req.file + " -> " + res(r) + " " + d.dump();
  }

  PageCache cache_;
  std::mt19937_64 rng_;
  std::map<std::string, std::vector<int>> fds_;
  uint32_t version_ = 0;
};

inline std::vector<std::string> run_trace(const std::string& policy, uint64_t seed, int ops) {
  return TraceDriver(policy, seed).run(ops);
}

}  // namespace syncprobe::ref::testing
