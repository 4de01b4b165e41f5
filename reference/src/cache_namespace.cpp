// The namespace and its journal: names and sizes committed to the metadata
// blocks of the simulated device ("SPNS1 <length>\n" then one line per file).
#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "cache_model.h"

namespace syncprobe::ref {

Inode& PageCache::State::inode(uint64_t ino) {
  auto& slot = inodes[ino];
  if (!slot) {
    slot = std::make_unique<Inode>(frames);
    slot->ino = ino;
    slot->is_dir = ino == kRootIno;
    slot->raw = ino == kRawIno;
    slot->size = slot->raw ? kRawDeviceBytes : committed_size(ino);
  }
  return *slot;
}

Inode* PageCache::State::lookup(const std::string& path) {
  auto it = names.find(path);
  if (it == names.end()) return nullptr;
  return &inode(it->second);
}

uint64_t PageCache::State::committed_size(uint64_t ino) const {
  auto it = loaded_sizes.find(ino);
  return it == loaded_sizes.end() ? 0 : it->second;
}

std::string PageCache::State::serialize_namespace() const {
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
    body += "f ";
    number(ino);
    body += ' ';
    number(it != inodes.end() ? it->second->size : committed_size(ino));
    body += ' ';
    body += path;
    body += '\n';
  }
  return "SPNS1 " + std::to_string(body.size()) + "\n" + body;
}

IoResult PageCache::State::commit_metadata() {
  const std::string text = serialize_namespace();
  const uint64_t blocks = (text.size() + kBlockSize - 1) / kBlockSize;
  if (blocks > kMetadataBlocks) return {ENOSPC, false};
  std::byte buf[kBlockSize];
  for (uint64_t b = 0; b < blocks; ++b) {
    const size_t n = std::min<size_t>(kBlockSize, text.size() - b * kBlockSize);
    std::memcpy(buf, text.data() + b * kBlockSize, n);
    std::memset(buf + n, 0, kBlockSize - n);
    if (IoResult r = device.write(b, buf); !r.ok()) return r;
  }
  if (IoResult r = device.flush(); !r.ok()) return r;
  journal_dirty = false;
  for (auto& [ino, in] : inodes) {
    in->meta_dirty = in->size_dirty = false;
    loaded_sizes[ino] = in->size;
  }
  return {};
}

IoResult PageCache::State::mount() {
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
    }
  }
  return {};
}

}  // namespace syncprobe::ref
