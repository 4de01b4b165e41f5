#pragma once
// A small rig for driving the reference cache through the Storage API, as
// the runner does, with tagged data.
#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>

#include "syncprobe/ref/page_cache.h"
#include "syncprobe/tag.h"

namespace syncprobe::ref::testing {

struct Rig {
  explicit Rig(const std::string& policy) : cache(make_policy(policy)) {}

  Process& proc(const std::string& name = "a") { return cache.process(name); }
  int open(const std::string& file = "f", const std::string& p = "a", OpenFlags flags = {}) {
    SysResult r = proc(p).open(file, flags);
    EXPECT_TRUE(r.ok()) << "open " << file;
    return int(r.ret);
  }
  SysResult write(int fd, const std::string& tag, uint64_t off, uint64_t len,
                  const std::string& p = "a") {
    auto data = make_tagged(tag, off, len);
    return proc(p).pwrite(fd, data, off);
  }
  // The tag a read returns ("A", "old", "zero", "mixed"...), or "-1 <errno>".
  std::string read(int fd, uint64_t off, uint64_t len, const std::string& p = "a") {
    std::vector<std::byte> buf(len);
    SysResult r = proc(p).pread(fd, buf, off);
    if (!r.ok()) return "-1 " + std::to_string(r.err);
    return classify_tagged(std::span(buf).first(size_t(r.ret)), off).tag;
  }
  std::string disk(const std::string& file, uint64_t off, uint64_t len) {
    ReadBack rb = cache.read_back(file, off, len);
    if (!rb.result.ok()) return "-1 " + std::to_string(rb.result.err);
    return classify_tagged(rb.data, off).tag;
  }
  // 0 or the errno of fsync.
  int fsync(int fd, const std::string& p = "a") {
    SysResult r = proc(p).fsync(fd);
    EXPECT_FALSE(r.hung);
    return r.ok() ? 0 : r.err;
  }
  void fail_data(const std::string& file, int err, std::optional<uint32_t> count = std::nullopt) {
    FaultRequest req;
    req.where = FaultRequest::Where::data;
    req.file = file;
    req.rule.err = err;
    req.rule.count = count;
    nlohmann::json detail;
    ASSERT_TRUE(cache.fault(req, detail).ok());
  }
  void heal() { ASSERT_TRUE(cache.heal().ok()); }

  PageCache cache;
};

}  // namespace syncprobe::ref::testing
