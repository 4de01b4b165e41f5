#include "syncprobe/scratch.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "syncprobe/command.h"
#include "syncprobe/linux_fs.h"

namespace syncprobe {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr size_t kMaxMarker = 1 << 20;

std::string mode_text(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", unsigned(m & 07777));
  return buf;
}

std::string kind_name(Resource::Kind k) {
  switch (k) {
    case Resource::Kind::process: return "process";
    case Resource::Kind::mount: return "mount";
    case Resource::Kind::loop: return "loop";
    case Resource::Kind::dm: return "dm";
  }
  return "?";
}

std::optional<Resource::Kind> kind_from(const std::string& s) {
  for (auto k : {Resource::Kind::process, Resource::Kind::mount, Resource::Kind::loop, Resource::Kind::dm})
    if (kind_name(k) == s) return k;
  return std::nullopt;
}

// True when `path` lies strictly below `dir` and names no parent directory.
bool inside(const std::string& path, const std::string& dir) {
  if (path.rfind(dir + "/", 0) != 0) return false;
  const std::string rest = path.substr(dir.size() + 1);
  return rest.find("..") == std::string::npos && !rest.empty();
}

// Reads a small regular file under `dirfd` without following a symbolic link.
bool read_small_file(int dirfd, const char* name, std::string& out) {
  const int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st{};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || size_t(st.st_size) > kMaxMarker) {
    ::close(fd);
    return false;
  }
  out.resize(size_t(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n <= 0) break;
    done += size_t(n);
  }
  out.resize(done);
  ::close(fd);
  return true;
}

// Why `dir` (an ancestor of the scratch root) lets another user change what
// is below it, or "". It must be root's or this user's, and no one else may
// rename in it unless the sticky bit stops them. A symbolic link is judged
// by its owner here; the directories it leads to are judged on the resolved
// path (prepare_scratch_root checks both).
std::string unsafe_ancestor(const fs::path& dir) {
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0) return "";
  const bool trusted_owner = st.st_uid == 0 || st.st_uid == geteuid();
  if (S_ISLNK(st.st_mode))
    return trusted_owner ? "" : dir.string() + " is a symbolic link owned by uid " + std::to_string(st.st_uid) +
                                    ": that user decides where the run's files go";
  if (!trusted_owner)
    return dir.string() + " is owned by uid " + std::to_string(st.st_uid) + ": that user can rename what is in it";
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
    return dir.string() + " (mode " + mode_text(st.st_mode) + ", owner uid " + std::to_string(st.st_uid) +
           ") lets other users rename what is in it";
  return "";
}

// The first unsafe ancestor of `p` (not `p` itself), or "".
std::string unsafe_ancestors(const fs::path& p) {
  for (fs::path a = p.parent_path(); !a.empty(); a = a.parent_path()) {
    if (auto why = unsafe_ancestor(a); !why.empty()) return why;
    if (a == a.root_path()) break;
  }
  return "";
}

}  // namespace

std::string prepare_scratch_root(const std::string& path, bool create) {
  if (path.empty()) return "the scratch root is empty: set SYNCPROBE_SCRATCH to a directory";
  const fs::path p = fs::absolute(path).lexically_normal();
  // The path as written first, before anything is created through it: a
  // link or directory of another user on the way is refused untouched.
  if (auto why = unsafe_ancestors(p); !why.empty())
    return "the scratch root " + path + " is not safe: " + why + ". Set SYNCPROBE_SCRATCH elsewhere";
  // Create what is missing, each new level private.
  fs::path so_far;
  for (const auto& part : p) {
    if (!create) break;
    so_far /= part;
    if (::mkdir(so_far.c_str(), 0700) != 0 && errno != EEXIST)
      return "cannot create the scratch root " + path + " (" + so_far.string() + ": " + std::strerror(errno) + ")";
  }
  const int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    struct stat lst{};
    if (::lstat(p.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode))
      return "the scratch root " + path + " is a symbolic link: whoever made it decides where the run's "
             "files go. Remove it, or set SYNCPROBE_SCRATCH to a directory of your own";
    return "the scratch root " + path + " cannot be opened: " + std::strerror(errno);
  }
  struct stat st{};
  const int r = fstat(fd, &st);
  ::close(fd);
  if (r != 0) return "the scratch root " + path + " cannot be examined: " + std::strerror(errno);
  if (st.st_uid != geteuid())
    return "the scratch root " + path + " is owned by uid " + std::to_string(st.st_uid) +
           ", not by this user (uid " + std::to_string(geteuid()) +
           "): another user could swap what the run creates there. Remove it, or set "
           "SYNCPROBE_SCRATCH to a directory of your own";
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return "the scratch root " + path + " is writable by other users (mode " + mode_text(st.st_mode) +
           "): they could swap what the run creates there. Make it private (chmod 700), or set "
           "SYNCPROBE_SCRATCH to a directory of your own";
  // And the directories the path really goes through, after its links.
  std::error_code ec;
  const fs::path real = fs::canonical(p, ec);
  if (ec) return "the scratch root " + path + " cannot be resolved: " + ec.message();
  if (auto why = unsafe_ancestors(real); !why.empty())
    return "the scratch root " + path + " (" + real.string() + ") is not safe: " + why +
           ". Set SYNCPROBE_SCRATCH elsewhere";
  return "";
}

void make_private_dir(const std::string& path, bool may_exist) {
  if (::mkdir(path.c_str(), 0700) == 0) return;
  const int err = errno;
  if (err != EEXIST || !may_exist)
    throw std::runtime_error("cannot create " + path + ": " + std::strerror(err) +
                             (err == EEXIST ? " (this run did not create it; a leftover of another run "
                                              "or someone else's: remove it, or set SYNCPROBE_SCRATCH elsewhere)"
                                            : ""));
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0)
    throw std::runtime_error("cannot examine " + path + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
    throw std::runtime_error(path + " exists but is not a private directory of this user (" +
                             (S_ISLNK(st.st_mode) ? std::string("a symbolic link")
                                                  : "mode " + mode_text(st.st_mode) + ", owner uid " +
                                                        std::to_string(st.st_uid)) +
                             "); the run will not use it. Remove it");
}

RunDirectory::RunDirectory(const std::string& root, const std::string& run_id)
    : root_(root), run_id_(run_id), path_(root + "/" + run_id) {
  if (run_id.empty() || run_id.find('/') != std::string::npos || run_id[0] == '.')
    throw std::runtime_error("bad run id '" + run_id + "'");
  if (::mkdir(path_.c_str(), 0700) != 0)
    throw std::runtime_error("cannot create " + path_ + ": " + std::strerror(errno));
  const int fd = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st{};
  const bool mine = fd >= 0 && fstat(fd, &st) == 0 && st.st_uid == geteuid();
  if (fd >= 0) ::close(fd);
  if (!mine) throw std::runtime_error(path_ + " is not the directory this run created");
  write_marker();
}

RunDirectory::~RunDirectory() {
  try {
    remove();
  } catch (const std::exception&) {
    // The marker stays; the next run cleans up.
  }
}

bool RunDirectory::remove() {
  std::lock_guard lock(mu_);
  if (removed_) return true;
  for (const auto& r : held_)
    if (r.kind == Resource::Kind::process && process_is(pid_t(r.pid), r.start)) return false;
  if (!remove_tree_if_unmounted(path_)) return false;
  removed_ = true;
  return true;
}

void RunDirectory::write_marker() {
  nlohmann::json m = {{"schema", "syncprobe.run-marker/1"},
                      {"run_id", run_id_},
                      {"owner", {{"pid", getpid()}, {"start", process_start_time(getpid())}}},
                      {"resources", nlohmann::json::array()}};
  for (const auto& r : held_) {
    nlohmann::json j = {{"kind", kind_name(r.kind)}, {"what", r.what}};
    if (r.kind == Resource::Kind::process) {
      j["pid"] = r.pid;
      j["start"] = r.start;
    }
    m["resources"].push_back(j);
  }
  const std::string text = m.dump(1) + "\n";
  const std::string tmp = path_ + "/" + kMarker + ".tmp";
  // A fresh file each time (a leftover temp of a failed write is removed
  // first): never written through whatever else sits under that name.
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot write the run marker " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      throw std::runtime_error("cannot write the run marker " + tmp + ": " + std::strerror(err));
    }
    done += size_t(n);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), (path_ + "/" + kMarker).c_str()) != 0)
    throw std::runtime_error("cannot write the run marker in " + path_ + ": " + std::strerror(errno));
}

void RunDirectory::acquire(const Resource& r) {
  std::lock_guard lock(mu_);
  held_.push_back(r);
  try {
    write_marker();
  } catch (...) {
    held_.pop_back();
    throw;
  }
}

void RunDirectory::release(const Resource& r) {
  std::lock_guard lock(mu_);
  for (auto it = held_.begin(); it != held_.end(); ++it)
    if (*it == r) {
      held_.erase(it);
      try {
        write_marker();
      } catch (const std::exception&) {
        // A stale entry only makes a later run check something that is gone.
      }
      return;
    }
}

void cleanup_stale_runs(const std::string& root, std::ostream& log) {
  const int rootfd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (rootfd < 0) return;
  DIR* d = fdopendir(rootfd);
  if (!d) {
    ::close(rootfd);
    return;
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st{};
    if (fstatat(rootfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
        st.st_uid == geteuid())
      names.push_back(name);
  }
  for (const auto& name : names) {
    const int dirfd = openat(rootfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd < 0) continue;
    std::string text;
    const bool has_marker = read_small_file(dirfd, RunDirectory::kMarker, text);
    ::close(dirfd);
    if (!has_marker) continue;  // not a run's directory: not ours to touch
    nlohmann::json m;
    try {
      m = nlohmann::json::parse(text);
    } catch (const std::exception&) {
      log << "syncprobe: " << root << "/" << name << " has an unreadable run marker; left alone\n";
      continue;
    }
    if (!m.is_object() || m.value("schema", "") != "syncprobe.run-marker/1" || m.value("run_id", "") != name)
      continue;
    const auto& owner = m["owner"];
    if (!owner.is_object()) continue;
    const pid_t opid = pid_t(owner.value("pid", int64_t{0}));
    const uint64_t ostart = owner.value("start", uint64_t{0});
    if (opid == getpid() || process_is(opid, ostart)) continue;  // a live run
    const std::string dir = root + "/" + name;
    std::vector<Resource> res;
    if (m["resources"].is_array())
      for (const auto& j : m["resources"]) {
        if (!j.is_object()) continue;
        auto k = kind_from(j.value("kind", ""));
        if (!k) continue;
        Resource r;
        r.kind = *k;
        r.what = j.value("what", "");
        r.pid = j.value("pid", int64_t{0});
        r.start = j.value("start", uint64_t{0});
        res.push_back(r);
      }
    std::vector<std::string> did;
    // Suspended dm devices first, so that nothing stays stuck on them.
    for (const auto& r : res)
      if (r.kind == Resource::Kind::dm && r.what.find(name) != std::string::npos) {
        CommandResult c = run_program({"dmsetup", "resume", r.what}, 30s);
        (void)c;  // a device that is gone or not suspended: nothing to do
      }
    for (const auto& r : res)
      if (r.kind == Resource::Kind::process && process_is(pid_t(r.pid), r.start)) {
        ::kill(pid_t(r.pid), SIGKILL);
        did.push_back("killed pid " + std::to_string(r.pid) + " (" + r.what + ")");
      }
    for (int i = 0; i < 500; ++i) {  // up to 10 s for them to be gone
      bool any = false;
      for (const auto& r : res)
        if (r.kind == Resource::Kind::process && process_is(pid_t(r.pid), r.start)) any = true;
      if (!any) break;
      std::this_thread::sleep_for(20ms);
    }
    for (auto it = res.rbegin(); it != res.rend(); ++it) {
      const Resource& r = *it;
      if (r.kind == Resource::Kind::mount && inside(r.what, dir)) {
        bool mounted = false;
        for (const auto& mp : mounts_under(r.what)) mounted = mounted || mp == r.what;
        if (!mounted) continue;
        CommandResult c = run_program({"umount", r.what}, 30s);
        if (!c.ok()) c = run_program({"umount", "-l", r.what}, 30s);
        did.push_back("unmounted " + r.what);
      } else if (r.kind == Resource::Kind::dm && r.what.find(name) != std::string::npos) {
        CommandResult c = run_program({"dmsetup", "remove", "--force", r.what}, 60s);
        if (c.ok()) did.push_back("removed dm device " + r.what);
      } else if (r.kind == Resource::Kind::loop && inside(r.what, dir)) {
        std::error_code ec;
        for (const auto& dev : fs::directory_iterator("/sys/block", ec)) {
          const std::string lname = dev.path().filename().string();
          if (lname.rfind("loop", 0) != 0) continue;
          std::string backing;
          std::ifstream in(dev.path() / "loop" / "backing_file");
          std::getline(in, backing);
          if (backing != r.what) continue;
          CommandResult c = run_program({"losetup", "-d", "/dev/" + lname}, 30s);
          if (c.ok()) did.push_back("detached /dev/" + lname);
        }
      }
    }
    if (!remove_tree_if_unmounted(dir)) {
      log << "syncprobe: " << dir << " of killed run " << name
          << " still has a mount that would not go; left for the next run\n";
      continue;
    }
    log << "syncprobe: cleaned up after killed run " << name;
    for (size_t i = 0; i < did.size(); ++i) log << (i ? ", " : ": ") << did[i];
    log << "\n";
  }
  closedir(d);
}

}  // namespace syncprobe
