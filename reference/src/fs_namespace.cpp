// The namespace and its journal: names and sizes committed to the metadata
// blocks of the simulated device: "SPNS1 <length>\n", "next <ino>\n", then
// one line per name in path order, "f <ino> <size> <path>" for a file and
// "d <ino> <path>" for a directory.
#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "fs_state.h"

namespace syncprobe::ref {

Inode& FileSystem::State::inode(uint64_t ino) {
  auto& slot = inodes[ino];
  if (!slot) {
    slot = std::make_unique<Inode>(frames);
    slot->ino = ino;
    slot->blocks_per_file = options.max_file_bytes / kPageSize;
    slot->is_dir = ino == kRootIno;
    slot->raw = ino == kRawIno;
    slot->size = slot->raw ? kRawDeviceBytes : committed_size(ino);
    slot->mode = slot->is_dir ? 0755 : 0644;
    slot->atime = slot->mtime = slot->ctime = now();
  }
  return *slot;
}

std::string FileSystem::State::normalize(const std::string& path) {
  size_t b = 0;
  while (b < path.size() && path[b] == '/') ++b;
  size_t e = path.size();
  while (e > b && path[e - 1] == '/') --e;
  std::string p = path.substr(b, e - b);
  return p == "." ? std::string() : p;
}

int FileSystem::State::check_parent(const std::string& p) {
  for (size_t slash = p.find('/'); slash != std::string::npos; slash = p.find('/', slash + 1)) {
    const std::string prefix = p.substr(0, slash);
    if (prefix.empty() || prefix.back() == '/') return EINVAL;  // "a//b"
    auto it = names.find(prefix);
    if (it == names.end()) return ENOENT;
    if (!inode(it->second).is_dir) return ENOTDIR;
  }
  return 0;
}

Inode* FileSystem::State::resolve(const std::string& path, int& err) {
  const std::string p = normalize(path);
  if (p.empty()) return &inode(kRootIno);
  auto it = names.find(p);
  if (it != names.end()) return &inode(it->second);
  err = check_parent(p);
  if (!err) err = ENOENT;
  return nullptr;
}

uint64_t FileSystem::State::committed_size(uint64_t ino) const {
  auto it = loaded_sizes.find(ino);
  return it == loaded_sizes.end() ? 0 : it->second;
}

std::string FileSystem::State::serialize_namespace() const {
  std::string body;
  body.reserve(32 + names.size() * 48);
  auto number = [&body](uint64_t v) {
    char buf[24];
    body.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  };
  body += "next ";
  number(next_ino);
  body += '\n';
  for (const auto& [path, ino] : names) {
    auto it = inodes.find(ino);
    if (it != inodes.end() && it->second->is_dir) {  // directories are always in core
      body += "d ";
      number(ino);
    } else {
      body += "f ";
      number(ino);
      body += ' ';
      number(it != inodes.end() ? it->second->size : committed_size(ino));
    }
    body += ' ';
    body += path;
    body += '\n';
  }
  return "SPNS1 " + std::to_string(body.size()) + "\n" + body;
}

IoResult FileSystem::State::commit_metadata() {
  const std::string text = serialize_namespace();
  const uint64_t blocks = (text.size() + kBlockSize - 1) / kBlockSize;
  if (blocks > kMetadataBlocks) return {ENOSPC, false};
  std::byte buf[kBlockSize];
  for (uint64_t b = 0; b < blocks; ++b) {
    const size_t n = std::min<size_t>(kBlockSize, text.size() - b * kBlockSize);
    std::memcpy(buf, text.data() + b * kBlockSize, n);
    std::memset(buf + n, 0, kBlockSize - n);
    if (IoResult r = device.write(b, buf); !r.ok()) return metadata_failed(r);
  }
  if (IoResult r = device.flush(); !r.ok()) return metadata_failed(r);
  journal_dirty = false;
  discard_truncated();  // the new sizes are durable: what they cut off may go
  for (auto& [ino, in] : inodes) {
    in->meta_dirty = in->size_dirty = false;
    loaded_sizes[ino] = in->size;
  }
  return {};
}

IoResult FileSystem::State::metadata_failed(IoResult r) {
  if (r.hung) return r;
  r.err = policy->delivered_errno(r.err);
  errseq_set(s_wb_err, r.err);
  enter(policy->on_metadata_error());
  return r;
}

IoResult FileSystem::State::mount() {
  fs_state = FsReaction::continues;
  inodes.clear();
  names.clear();
  loaded_sizes.clear();
  journal_dirty = false;
  std::vector<std::byte> buf(kBlockSize);
  if (IoResult r = device.read(0, buf); !r.ok()) return r;
  std::string text(reinterpret_cast<const char*>(buf.data()), kBlockSize);
  size_t len = 0;
  if (std::sscanf(text.c_str(), "SPNS1 %zu", &len) != 1) return {EUCLEAN, false};
  const size_t header = text.find('\n') + 1;
  const size_t total = header + len;
  for (uint64_t b = 1; b * kBlockSize < total; ++b) {
    if (IoResult r = device.read(b, buf); !r.ok()) return r;
    text.append(reinterpret_cast<const char*>(buf.data()), kBlockSize);
  }
  std::istringstream in(text.substr(header, len));
  std::string kind;
  while (in >> kind) {
    if (kind == "next") {
      in >> next_ino;
    } else if (kind == "f") {
      uint64_t ino = 0, size = 0;
      std::string path;
      in >> ino >> size;
      in.get();
      std::getline(in, path);
      names[path] = ino;
      loaded_sizes[ino] = size;
    } else if (kind == "d") {
      uint64_t ino = 0;
      std::string path;
      in >> ino;
      in.get();
      std::getline(in, path);
      names[path] = ino;
      inode(ino).is_dir = true;
      inode(ino).mode = 0755;
    }
  }
  return {};
}

}  // namespace syncprobe::ref

// ---- the namespace API ------------------------------------------------------------------

namespace syncprobe::ref {

namespace {
bool within(const std::string& path, const std::string& dir) {  // path is under dir/
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/';
}
// Names sort by path, so a directory's descendants follow "dir/" together.
bool has_children(FileSystem::State& s, const std::string& dir) {
  auto it = s.names.lower_bound(dir + "/");
  return it != s.names.end() && within(it->first, dir);
}
}  // namespace

SysResult FileSystem::getattr(const std::string& path, Attr& out) {
  if (s_->fs_state == FsReaction::force_unmount) return SysResult::failure(EIO);
  int err = 0;
  Inode* in = s_->resolve(path, err);
  if (!in) return SysResult::failure(err);
  out = Attr{in->ino, in->is_dir, in->is_dir ? 0 : in->size, in->mode,
             in->is_dir ? 2u : in->nlink, in->atime, in->mtime, in->ctime};
  return SysResult::success();
}

SysResult FileSystem::fgetattr(Handle h, Attr& out) {
  File* f = s_->file(h);
  if (!f) return SysResult::failure(EBADF);
  Inode* in = f->inode;
  out = Attr{in->ino, in->is_dir, in->is_dir ? 0 : in->size, in->mode,
             in->is_dir ? 2u : in->nlink, in->atime, in->mtime, in->ctime};
  return SysResult::success();
}

SysResult FileSystem::mkdir(const std::string& path, uint32_t mode) {
  State& s = *s_;
  if (int e = s.refuses(true)) return SysResult::failure(e);
  const std::string p = State::normalize(path);
  if (p.empty() || s.names.count(p)) return SysResult::failure(EEXIST);
  if (int err = s.check_parent(p)) return SysResult::failure(err);
  Inode& in = s.inode(s.next_ino++);
  in.is_dir = true;
  in.mode = mode & 07777;
  s.names[p] = in.ino;
  s.journal_dirty = true;
  return SysResult::success();
}

SysResult FileSystem::rmdir(const std::string& path) {
  State& s = *s_;
  if (int e = s.refuses(true)) return SysResult::failure(e);
  const std::string p = State::normalize(path);
  if (p.empty()) return SysResult::failure(EBUSY);
  int err = 0;
  Inode* in = s.resolve(p, err);
  if (!in) return SysResult::failure(err);
  if (!in->is_dir) return SysResult::failure(ENOTDIR);
  if (has_children(s, p)) return SysResult::failure(ENOTEMPTY);
  s.names.erase(p);
  in->nlink = 0;
  s.journal_dirty = true;
  return SysResult::success();
}

SysResult FileSystem::unlink(const std::string& path) {
  State& s = *s_;
  if (int e = s.refuses(true)) return SysResult::failure(e);
  const std::string p = State::normalize(path);
  auto it = s.names.find(p);
  if (it == s.names.end()) {
    int err = p.empty() ? EISDIR : s.check_parent(p);
    return SysResult::failure(err ? err : ENOENT);
  }
  Inode& in = s.inode(it->second);
  if (in.is_dir) return SysResult::failure(EISDIR);
  s.names.erase(it);
  in.nlink = 0;
  in.ctime = now();
  s.journal_dirty = true;
  s.forget_if_orphan(in);
  return SysResult::success();
}

SysResult FileSystem::rename(const std::string& from, const std::string& to) {
  State& s = *s_;
  if (int e = s.refuses(true)) return SysResult::failure(e);
  const std::string f = State::normalize(from), t = State::normalize(to);
  if (f.empty() || t.empty()) return SysResult::failure(EBUSY);
  auto it = s.names.find(f);
  if (it == s.names.end()) {
    const int err = s.check_parent(f);
    return SysResult::failure(err ? err : ENOENT);
  }
  if (int err = s.check_parent(t)) return SysResult::failure(err);
  const uint64_t ino = it->second;
  Inode& src = s.inode(ino);
  auto target = s.names.find(t);
  if (target != s.names.end() && target->second != ino) {
    Inode& dst = s.inode(target->second);
    if (src.is_dir && !dst.is_dir) return SysResult::failure(ENOTDIR);
    if (!src.is_dir && dst.is_dir) return SysResult::failure(EISDIR);
    if (dst.is_dir) {
      if (has_children(s, t)) return SysResult::failure(ENOTEMPTY);
    }
  }
  if (src.is_dir && within(t, f)) return SysResult::failure(EINVAL);  // into itself
  if (target != s.names.end() && target->second != ino) {
    Inode& dst = s.inode(target->second);
    dst.nlink = 0;  // replaced: its open descriptions keep it
    s.forget_if_orphan(dst);
  }
  s.names.erase(f);
  s.names[t] = ino;
  if (src.is_dir) {  // the subtree moves with it
    std::vector<std::pair<std::string, uint64_t>> moved;
    for (auto c = s.names.lower_bound(f + "/"); c != s.names.end() && within(c->first, f);) {
      moved.emplace_back(t + c->first.substr(f.size()), c->second);
      c = s.names.erase(c);
    }
    for (auto& [name, child] : moved) s.names[name] = child;
  }
  src.ctime = now();
  s.journal_dirty = true;
  return SysResult::success();
}

SysResult FileSystem::readdir(const std::string& path, std::vector<DirEntry>& out) {
  State& s = *s_;
  int err = 0;
  Inode* in = s.resolve(path, err);
  if (!in) return SysResult::failure(err);
  if (!in->is_dir) return SysResult::failure(ENOTDIR);
  const std::string p = State::normalize(path);
  const std::string prefix = p.empty() ? std::string() : p + "/";
  out.clear();
  for (auto it = s.names.lower_bound(prefix); it != s.names.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    const std::string rest = it->first.substr(prefix.size());
    if (rest.find('/') != std::string::npos) continue;
    out.push_back({rest, it->second, s.inode(it->second).is_dir});
  }
  in->atime = now();
  return SysResult::success();
}

SysResult FileSystem::truncate(const std::string& path, uint64_t size) {
  if (int e = s_->refuses(true)) return SysResult::failure(e);
  int err = 0;
  Inode* in = s_->resolve(path, err);
  if (!in) return SysResult::failure(err);
  if (in->is_dir) return SysResult::failure(EISDIR);
  if ((size + kPageSize - 1) / kPageSize > in->max_pages()) return SysResult::failure(EFBIG);
  return from_io(s_->truncate_inode(*in, size));
}

SysResult FileSystem::chmod(const std::string& path, uint32_t mode) {
  if (int e = s_->refuses(true)) return SysResult::failure(e);
  int err = 0;
  Inode* in = s_->resolve(path, err);
  if (!in) return SysResult::failure(err);
  in->mode = mode & 07777;
  in->ctime = now();
  return SysResult::success();
}

SysResult FileSystem::utimens(const std::string& path, std::optional<timespec> atime,
                              std::optional<timespec> mtime) {
  if (int e = s_->refuses(true)) return SysResult::failure(e);
  int err = 0;
  Inode* in = s_->resolve(path, err);
  if (!in) return SysResult::failure(err);
  if (atime) in->atime = *atime;
  if (mtime) in->mtime = *mtime;
  in->ctime = now();
  return SysResult::success();
}

}  // namespace syncprobe::ref
