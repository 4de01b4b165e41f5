#include "syncprobe/fs_regions.h"

#include <fcntl.h>
#include <linux/fsmap.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <regex>
#include <sstream>

#include "syncprobe/command.h"
#include "syncprobe/linux_fs.h"

namespace syncprobe::fs_regions {
namespace {

using namespace std::chrono_literals;

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

bool free_ranges(const std::string& root, uint64_t device_bytes, const std::vector<ByteRange>& also_used,
                 std::vector<ByteRange>& out, std::string& why) {
  Fd f{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (f.fd < 0) {
    why = root + ": " + std::strerror(errno);
    return false;
  }
  constexpr unsigned kRecs = 256;
  std::vector<char> buf(fsmap_sizeof(kRecs));
  auto* head = reinterpret_cast<fsmap_head*>(buf.data());
  head->fmh_count = kRecs;
  head->fmh_keys[1].fmr_device = UINT32_MAX;
  head->fmh_keys[1].fmr_physical = UINT64_MAX;
  head->fmh_keys[1].fmr_owner = UINT64_MAX;
  head->fmh_keys[1].fmr_offset = UINT64_MAX;
  head->fmh_keys[1].fmr_flags = UINT32_MAX;
  std::vector<ByteRange> used = also_used;
  for (;;) {
    if (ioctl(f.fd, FS_IOC_GETFSMAP, head) < 0) {
      why = std::string("FS_IOC_GETFSMAP: ") + std::strerror(errno);
      return false;
    }
    if (head->fmh_entries == 0) break;
    for (unsigned i = 0; i < head->fmh_entries; ++i) {
      const fsmap& r = head->fmh_recs[i];
      // ext4 has no reverse map: it reports allocated blocks it cannot
      // attribute as FMR_OWN_UNKNOWN -- file data and the journal, but on
      // 5.10 also the preallocation after a small file (the 2 MiB from its
      // first block), which is where its next append lands. Files' blocks
      // come from FIEMAP below and the journal from the caller, so
      // "unknown" counts as free here.
      const bool special = r.fmr_flags & FMR_OF_SPECIAL_OWNER;
      const bool free = special && (r.fmr_owner == FMR_OWN_FREE || r.fmr_owner == FMR_OWN_UNKNOWN);
      if (!free && r.fmr_length) used.push_back({r.fmr_physical, r.fmr_length});
    }
    if (head->fmh_recs[head->fmh_entries - 1].fmr_flags & FMR_OF_LAST) break;
    fsmap_advance(head);
  }
  // Data and directory blocks: ext4 does not report them to GETFSMAP.
  std::error_code ec;
  std::vector<std::string> paths = {root};
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec) || it->is_directory(ec)) paths.push_back(it->path().string());
  for (const auto& p : paths) {
    std::string ignored;  // a file removed meanwhile has no blocks to protect
    if (!fiemap_extents(p, used, ignored)) continue;
  }
  std::sort(used.begin(), used.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  uint64_t pos = 0;
  for (const auto& u : used) {
    if (u.offset > pos) out.push_back({pos, u.offset - pos});
    pos = std::max(pos, u.offset + u.length);
  }
  if (pos < device_bytes) out.push_back({pos, device_bytes - pos});
  if (out.empty()) {
    why = "no space is free";
    return false;
  }
  return true;
}

bool journal_ranges(const std::string& fs, const std::string& device, std::vector<ByteRange>& out,
                    std::string& why) {
  if (fs == "ext4") {
    // debugfs prints the journal inode's extents as "(0-4095):65536-69631";
    // the block size comes from the superblock.
    const std::vector<std::string> stat = {"debugfs", "-R", "stat <8>", device};
    CommandResult r = run_program(stat, 30s);
    const std::vector<std::string> sb = {"dumpe2fs", "-h", device};
    CommandResult s = run_program(sb, 30s);
    std::smatch m;
    if (!r.ok() || !s.ok() || !std::regex_search(s.output, m, std::regex("Block size:\\s+(\\d+)"))) {
      why = (r.ok() ? s : r).describe(r.ok() ? sb : stat);
      return false;
    }
    const uint64_t bs = std::stoull(m[1]);
    const std::regex ext("\\((\\d+)-(\\d+)\\):(\\d+)-(\\d+)");
    for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), ext);
         it != std::sregex_iterator(); ++it) {
      const uint64_t first = std::stoull((*it)[3]), last = std::stoull((*it)[4]);
      out.push_back({first * bs, (last - first + 1) * bs});
    }
    if (out.empty()) why = "debugfs showed no extents for the journal inode (an external journal?)";
    return !out.empty();
  }
  if (fs == "xfs") {
    // logstart is a filesystem block number; xfs_db converts it to bytes.
    const std::vector<std::string> sb = {"xfs_db", "-r", "-c", "sb 0", "-c",
                                         "print logstart logblocks blocksize", device};
    CommandResult r = run_program(sb, 30s);
    std::smatch a, b, c;
    if (!r.ok() || !std::regex_search(r.output, a, std::regex("logstart = (\\d+)")) ||
        !std::regex_search(r.output, b, std::regex("logblocks = (\\d+)")) ||
        !std::regex_search(r.output, c, std::regex("blocksize = (\\d+)"))) {
      why = r.describe(sb);
      return false;
    }
    if (std::stoull(a[1]) == 0) {
      why = "xfs has an external log";
      return false;
    }
    const std::vector<std::string> conv = {"xfs_db", "-r", "-c",
                                           "convert fsb " + std::string(a[1]) + " byte", device};
    CommandResult v = run_program(conv, 30s);
    std::smatch d;
    if (!v.ok() || !std::regex_search(v.output, d, std::regex("\\((\\d+)\\)"))) {
      why = v.describe(conv);
      return false;
    }
    out.push_back({std::stoull(d[1]), std::stoull(b[1]) * std::stoull(c[1])});
    return true;
  }
  why = fs + " has no journal syncprobe can locate";
  return false;
}

SysResult shutdown_ioctl(const std::string& root, ShutdownFlush flush) {
  // include/uapi/linux/fs.h has no name for it before FS_IOC_SHUTDOWN; xfs_fs.h
  // and ext4 define it as _IOR('X', 125, __u32) with these flags.
  constexpr unsigned long kGoingDown = _IOR('X', 125, uint32_t);
  uint32_t flags = flush == ShutdownFlush::sync ? 0u : flush == ShutdownFlush::log ? 1u : 2u;
  Fd f{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (f.fd < 0) return SysResult::failure(errno);
  const int r = ioctl(f.fd, kGoingDown, &flags);
  return SysResult::from_syscall(r, errno);
}

}  // namespace syncprobe::fs_regions
