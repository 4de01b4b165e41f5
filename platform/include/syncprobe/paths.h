#pragma once
// Where syncprobe finds its own files. The binary knows no source directory:
// it looks beside itself in the install layout, which the build tree mirrors
// (bin/syncprobe, libexec/syncprobe/, share/syncprobe/{cases,data}).
#include <string>

namespace syncprobe {

// Directory of the running executable (/proc/self/exe), "" if unknown.
std::string self_dir();
// $SYNCPROBE_SHARE, else share/syncprobe under the executable's prefix.
std::string share_dir();
// The case catalogue: $SYNCPROBE_CASES, else share_dir()/cases.
std::string default_cases_dir();
// Data files (filesystems, kernels, capabilities): $SYNCPROBE_DATA, else share_dir()/data.
std::string data_dir();
// A helper program such as syncprobe-blockdev or syncprobe-guest: the
// environment variable SYNCPROBE_<part after the last dash, upper case>
// (SYNCPROBE_BLOCKDEV, SYNCPROBE_GUEST) if set, else libexec/syncprobe/<name>
// under the executable's prefix; "" when neither exists.
std::string helper_program(const std::string& name);
// Caches (downloaded kernels, initramfs images): $SYNCPROBE_CACHE, else
// $XDG_CACHE_HOME/syncprobe, else $HOME/.cache/syncprobe.
std::string cache_dir();

}  // namespace syncprobe
