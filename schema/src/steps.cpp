#include "syncprobe/steps.h"

#include <array>
#include <charconv>

namespace syncprobe {
namespace {

using namespace std::string_view_literals;

constexpr std::array kOpenFlags = {"create"sv, "truncate"sv, "direct"sv, "sync"sv,
                                   "dsync"sv,  "rdonly"sv,   "directory"sv, "nocreate"sv};
constexpr std::array kSfrFlags = {"wait_before"sv, "write"sv, "wait_after"sv};
constexpr std::array kRanges = {"data"sv, "metadata"sv, "device"sv, "free"sv, "journal"sv, "libfiu"sv};
constexpr std::array kFiuPoints = {"posix/io/sync/fsync"sv, "posix/io/sync/fdatasync"sv,
                                   "posix/io/rw/pwrite"sv, "posix/io/rw/write"sv};
constexpr std::array kOps = {"write"sv, "read"sv, "flush"sv};
constexpr std::array kModes = {"error"sv, "drop"sv, "hang"sv};
constexpr std::array kWhenFull = {"error"sv, "queue"sv};
constexpr std::array kShutdownFlush = {"sync"sv, "log"sv, "none"sv};
constexpr std::array kRules = {"R1"sv, "R2"sv, "R3"sv, "R4"sv, "R5"sv, "R6"sv, "R7"sv};

constexpr ArgSpec kFd{"fd", ArgType::name, true, "", "descriptor name, bound by open"};

constexpr std::array kOpenArgs = {
    ArgSpec{"fd", ArgType::name, true, "", "name to bind the new descriptor to"},
    ArgSpec{"file", ArgType::path, false, "f", "file to open, relative to the filesystem root"},
    ArgSpec{"flags", ArgType::choice_list, false, "", "open flags (default: read-write, create)",
            kOpenFlags},
};
constexpr std::array kFdArgs = {kFd};
constexpr std::array kWriteArgs = {
    kFd,
    ArgSpec{"off", ArgType::size, false, "0", "file offset in bytes (4K, 1M suffixes allowed)"},
    ArgSpec{"len", ArgType::size, false, "4K", "bytes to write", {}, kMaxStepBytes},
    ArgSpec{"tag", ArgType::tag, true, "", "data tag written (reads report it back)"},
};
constexpr std::array kReadArgs = {
    kFd,
    ArgSpec{"off", ArgType::size, false, "0", "file offset in bytes"},
    ArgSpec{"len", ArgType::size, false, "4K", "bytes to read", {}, kMaxStepBytes},
};
constexpr std::array kSfrArgs = {
    kFd,
    ArgSpec{"off", ArgType::size, false, "0", "start of the range"},
    ArgSpec{"len", ArgType::size, false, "0", "length of the range (0: to end of file)"},
    ArgSpec{"flags", ArgType::choice_list, false, "wait_before,write,wait_after",
            "SYNC_FILE_RANGE_* flags", kSfrFlags},
};
constexpr std::array kStatArgs = {
    ArgSpec{"file", ArgType::path, false, "f", "file to stat"},
};
constexpr std::array kRenameArgs = {
    ArgSpec{"from", ArgType::path, true, "", "existing name"},
    ArgSpec{"to", ArgType::path, true, "", "new name"},
};
constexpr std::array kUnlinkArgs = {
    ArgSpec{"file", ArgType::path, true, "", "file to remove"},
};
constexpr std::array kFaultArgs = {
    ArgSpec{"range", ArgType::choice, false, "device",
            "where: 'data' (a file's data blocks), 'metadata' (all but the case's file data), "
            "'free' (space the filesystem has not allocated: what an append gets), 'journal' "
            "(the journal or log only), 'device', 'libfiu' (no device: libfiu fails the "
            "programs' calls in front of the kernel, docs/apps.md)",
            kRanges},
    ArgSpec{"file", ArgType::path, false, "f", "file whose data blocks fail, for range=data"},
    ArgSpec{"io", ArgType::choice, false, "write", "device operation that fails", kOps},
    ArgSpec{"mode", ArgType::choice, false, "error",
            "error: fail with errno; drop: acknowledge and discard; hang: never complete", kModes},
    ArgSpec{"errno", ArgType::string, false, "EIO", "errno for mode=error (EIO, ENOSPC, ENXIO...)"},
    ArgSpec{"count", ArgType::integer, false, "",
            "operations that fail before the fault expires (absent: until heal); range=libfiu: only 1 "
            "(one call of each process fails, libfiu's onetime)"},
    ArgSpec{"point", ArgType::choice, false, "",
            "range=libfiu: the libfiu failure point of the programs' calls (required there)",
            kFiuPoints},
    ArgSpec{"percent", ArgType::integer, false, "",
            "range=libfiu: chance in percent that a call fails (absent: every call)", {}, 100},
};
constexpr std::array kThinArgs = {
    ArgSpec{"headroom", ArgType::size, false, "0", "bytes that may still be allocated"},
    ArgSpec{"when_full", ArgType::choice, false, "error",
            "error: ENOSPC (error_if_no_space); queue: writes wait for growth", kWhenFull},
};
constexpr std::array kGrowArgs = {
    ArgSpec{"by", ArgType::size, false, "64M", "bytes added to the pool"},
};
constexpr std::array kMemArgs = {
    ArgSpec{"bytes", ArgType::size, true, "", "cap on memory held by pages in error"},
};
constexpr std::array kCacheArgs = {
    ArgSpec{"bytes", ArgType::size, true, "", "memory the page cache may use"},
};
constexpr std::array kReadBackArgs = {
    ArgSpec{"file", ArgType::path, false, "f", "file to read from stable storage"},
    ArgSpec{"off", ArgType::size, false, "0", "file offset"},
    ArgSpec{"len", ArgType::size, false, "4K", "bytes to read", {}, kMaxStepBytes},
};

constexpr std::array kPrograms = {"sqlite"sv, "qemu"sv, "postgres"sv, "redis"sv, "lmdb"sv};
constexpr std::array kAppActions = {"init"sv, "put"sv, "get"sv, "check"sv, "scan"sv, "checkpoint"sv, "restart"sv};
constexpr std::array kAppArgs = {
    ArgSpec{"program", ArgType::choice, true, "",
            "program driven (docs/apps.md); the step needs capability app:<program>", kPrograms},
    ArgSpec{"action", ArgType::choice, true, "",
            "init: create the store; put: write key=value and wait for the program's "
            "acknowledgement; get: read a key back; scan: list every key and value (finds corrupted "
            "keys); check: the program's own consistency check; checkpoint: the program writes "
            "its data files (postgres CHECKPOINT); restart: stop the program as a crash would "
            "and start it again (servers)",
            kAppActions},
    ArgSpec{"file", ArgType::path, false, "app", "the program's file (database, image), "
            "relative to the filesystem root"},
    ArgSpec{"variant", ArgType::string, false, "",
            "program settings: sqlite 'rollback' or 'wal'; qemu 'raw' or 'qcow2' with "
            "',cache=writeback' or ',cache=none' (and ',keep': one qemu-io kept running); postgres "
            "'data_sync_retry=off' or '=on'"},
    ArgSpec{"key", ArgType::string, false, "", "key for put/get (qemu: a 4 KiB block number)"},
    ArgSpec{"value", ArgType::string, false, "", "value for put (qemu: a byte, 1..255)"},
};
constexpr std::array kShutdownArgs = {
    ArgSpec{"flush", ArgType::choice, false, "log",
            "what is written first: 'sync' (the whole filesystem, GOING_FLAGS_DEFAULT), 'log' (the "
            "journal only, LOGFLUSH), 'none' (nothing, NOLOGFLUSH)",
            kShutdownFlush},
};

constexpr std::array<ArgSpec, 0> kNoArgs{};

constexpr std::array kSteps = {
    StepSpec{StepKind::open, "open", "open(2) a file and bind the descriptor to a name", kOpenArgs,
             true, ""},
    StepSpec{StepKind::close, "close", "close(2) a descriptor", kFdArgs, true, ""},
    StepSpec{StepKind::pwrite, "pwrite", "pwrite(2) tagged data", kWriteArgs, true, ""},
    StepSpec{StepKind::pread, "pread", "pread(2) and report which tag came back", kReadArgs, true,
             ""},
    StepSpec{StepKind::fsync, "fsync", "fsync(2) a descriptor", kFdArgs, true, ""},
    StepSpec{StepKind::fdatasync, "fdatasync", "fdatasync(2) a descriptor", kFdArgs, true, ""},
    StepSpec{StepKind::sync_file_range, "sync_file_range", "sync_file_range(2) on a descriptor",
             kSfrArgs, true, "sync_file_range"},
    StepSpec{StepKind::msync, "msync",
             "write tagged data through a shared mapping, then msync(MS_SYNC)", kWriteArgs, true,
             "mmap"},
    StepSpec{StepKind::syncfs, "syncfs", "syncfs(2) the filesystem of a descriptor", kFdArgs, true,
             "syncfs"},
    StepSpec{StepKind::sync, "sync", "sync(2)", kNoArgs, true, ""},
    StepSpec{StepKind::stat, "stat", "stat(2) a file (must not consume a writeback error)",
             kStatArgs, true, ""},
    StepSpec{StepKind::rename, "rename", "rename(2)", kRenameArgs, true, "metadata"},
    StepSpec{StepKind::unlink, "unlink", "unlink(2)", kUnlinkArgs, true, "metadata"},
    StepSpec{StepKind::drop_caches, "drop_caches", "evict clean pages and unused inodes (echo 3 > drop_caches)",
             kNoArgs, false, "drop-caches"},
    StepSpec{StepKind::writeback, "writeback", "one pass of background writeback", kNoArgs, false,
             "writeback"},
    StepSpec{StepKind::fault, "fault", "make the device fail, drop or hang operations", kFaultArgs,
             false, "fault"},
    StepSpec{StepKind::heal, "heal", "remove every fault", kNoArgs, false, "fault"},
    StepSpec{StepKind::thin_limit, "thin_limit",
             "thin pool: only `headroom` more bytes may be allocated", kThinArgs, false,
             "thin-pool"},
    StepSpec{StepKind::grow, "grow", "thin pool: add space", kGrowArgs, false, "thin-pool"},
    StepSpec{StepKind::memory_limit, "memory_limit", "cap the memory held by pages in error",
             kMemArgs, false, "memory-limit"},
    StepSpec{StepKind::cache_limit, "cache_limit",
             "memory pressure: cap all cached pages; past it clean pages are evicted, oldest "
             "first, and dirty ones written back",
             kCacheArgs, false, "cache-limit"},
    StepSpec{StepKind::remount, "remount", "unmount cleanly and mount again", kNoArgs, false,
             "remount"},
    StepSpec{StepKind::power_cut, "power_cut",
             "lose everything not on stable storage, then mount again", kNoArgs, false,
             "power-cut"},
    StepSpec{StepKind::read_back, "read_back",
             "what stable storage holds for a file: closes every descriptor, remounts, reads",
             kReadBackArgs, false, "read-back"},
    StepSpec{StepKind::app, "app",
             "run one action of a real program (sqlite3, qemu-io, a PostgreSQL server) on the "
             "filesystem; "
             "its output, exit status and the value read back are the evidence",
             kAppArgs, false, ""},
    StepSpec{StepKind::mmap_read, "mmap_read",
             "read through a shared mapping and report which tag came back, which pages were "
             "resident (mincore) and any signal (SIGBUS)",
             kReadArgs, true, "mmap-read"},
    StepSpec{StepKind::shutdown, "shutdown",
             "shut the filesystem down with dirty data in the cache (XFS_IOC_GOINGDOWN, "
             "EXT4_IOC_SHUTDOWN); every call fails until a remount",
             kShutdownArgs, false, "shutdown"},
};

constexpr std::array kCommon = {
    ArgSpec{"proc", ArgType::name, false, "a", "process the step runs in (in-process steps)"},
    ArgSpec{"probe", ArgType::string, false, "", "label the classifier reads this step by"},
    ArgSpec{"rule", ArgType::choice, false, "", "rule this step gives evidence for (R1..R7)",
            kRules},
    ArgSpec{"expect", ArgType::string, false, "",
            "conforming outcome: ok, error, an errno name, or honest (needs rule)"},
    ArgSpec{"expect_tag", ArgType::string, false, "",
            "conforming data read: a tag, zero, mixed, or @probe (the tag that step read)"},
    ArgSpec{"proof", ArgType::string, false, "",
            "for expect=honest: probe of a later read_back that must show expect_tag "
            "if this step succeeded"},
    ArgSpec{"note", ArgType::string, false, "", "free text shown beside the step in reports"},
};

}  // namespace

std::span<const StepSpec> step_table() { return kSteps; }
std::span<const ArgSpec> common_args() { return kCommon; }

const StepSpec* find_step(std::string_view name) {
  for (const auto& s : kSteps)
    if (s.name == name) return &s;
  return nullptr;
}

const StepSpec& step_spec(StepKind kind) {
  for (const auto& s : kSteps)
    if (s.kind == kind) return s;
  return kSteps[0];  // unreachable: every kind is in the table
}

const ArgSpec* find_arg(const StepSpec& spec, std::string_view name) {
  for (const auto& a : spec.args)
    if (a.name == name) return &a;
  return nullptr;
}

bool parse_size(std::string_view text, uint64_t& out) {
  if (text.empty()) return false;
  uint64_t mult = 1;
  switch (text.back()) {
    case 'K': case 'k': mult = 1ull << 10; break;
    case 'M': case 'm': mult = 1ull << 20; break;
    case 'G': case 'g': mult = 1ull << 30; break;
    default: break;
  }
  if (mult != 1) text.remove_suffix(1);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) return false;
  if (v > UINT64_MAX / mult) return false;
  out = v * mult;
  return true;
}

uint64_t arg_max(const ArgSpec& a) {
  if (a.max) return a.max;
  return a.type == ArgType::integer ? kMaxCount : kMaxSize;
}

std::string size_text(uint64_t bytes) {
  for (auto [shift, suffix] : {std::pair{40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}})
    if (bytes >= (uint64_t{1} << shift) && bytes % (uint64_t{1} << shift) == 0)
      return std::to_string(bytes >> shift) + suffix;
  return std::to_string(bytes) + " bytes";
}

std::string_view to_string(ArgType t) {
  switch (t) {
    case ArgType::string: return "string";
    case ArgType::name: return "name";
    case ArgType::path: return "path";
    case ArgType::size: return "size";
    case ArgType::integer: return "integer";
    case ArgType::tag: return "tag";
    case ArgType::choice: return "choice";
    case ArgType::choice_list: return "list";
  }
  return "?";
}

}  // namespace syncprobe
