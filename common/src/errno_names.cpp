#include "syncprobe/errno_names.h"

#include <cerrno>
#include <cstdio>

#include "syncprobe/sysresult.h"

namespace syncprobe {
namespace {

struct ErrnoName {
  int value;
  std::string_view name;
};

// The errnos a storage probe can meet. Order matters only for lookups by
// value, where the first name wins (EAGAIN before EWOULDBLOCK).
constexpr ErrnoName kErrnos[] = {
    {EPERM, "EPERM"},     {ENOENT, "ENOENT"},   {EINTR, "EINTR"},       {EIO, "EIO"},
    {ENXIO, "ENXIO"},     {E2BIG, "E2BIG"},     {EBADF, "EBADF"},       {EAGAIN, "EAGAIN"},
    {ENOMEM, "ENOMEM"},   {EACCES, "EACCES"},   {EFAULT, "EFAULT"},     {EBUSY, "EBUSY"},
    {EEXIST, "EEXIST"},   {EXDEV, "EXDEV"},     {ENODEV, "ENODEV"},     {ENOTDIR, "ENOTDIR"},
    {EISDIR, "EISDIR"},   {EINVAL, "EINVAL"},   {ENFILE, "ENFILE"},     {EMFILE, "EMFILE"},
    {ETXTBSY, "ETXTBSY"}, {EFBIG, "EFBIG"},     {ENOSPC, "ENOSPC"},     {ESPIPE, "ESPIPE"},
    {EROFS, "EROFS"},     {EMLINK, "EMLINK"},   {EPIPE, "EPIPE"},       {ERANGE, "ERANGE"},
    {ENAMETOOLONG, "ENAMETOOLONG"}, {ENOSYS, "ENOSYS"}, {ENOTEMPTY, "ENOTEMPTY"},
    {ENODATA, "ENODATA"}, {ETIME, "ETIME"},     {ENOLINK, "ENOLINK"},   {EBADMSG, "EBADMSG"},
    {EOVERFLOW, "EOVERFLOW"}, {EOPNOTSUPP, "EOPNOTSUPP"}, {ENOTSUP, "ENOTSUP"},
    {ENOTCONN, "ENOTCONN"}, {ETIMEDOUT, "ETIMEDOUT"}, {ESTALE, "ESTALE"}, {EDQUOT, "EDQUOT"},
    {ECANCELED, "ECANCELED"}, {EUCLEAN, "EUCLEAN"}, {EREMOTEIO, "EREMOTEIO"},
    {ENOMEDIUM, "ENOMEDIUM"}, {EWOULDBLOCK, "EWOULDBLOCK"},
};

}  // namespace

std::string errno_name(int err) {
  if (err == 0) return "";
  for (const auto& e : kErrnos)
    if (e.value == err) return std::string(e.name);
  return "E" + std::to_string(err);
}

std::optional<int> errno_from_name(std::string_view name) {
  for (const auto& e : kErrnos)
    if (e.name == name) return e.value;
  return std::nullopt;
}

std::string describe(const SysResult& r) {
  if (r.hung) return "hung";
  if (r.ret < 0) return std::to_string(r.ret) + " " + errno_name(r.err);
  return std::to_string(r.ret);
}

}  // namespace syncprobe
