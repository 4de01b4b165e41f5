#pragma once
// One guest boot under QEMU: three virtio disks (scratch, input, output),
// the console to a file, a watchdog that ends a guest that stops reporting.
// The guest's reports are the output disk's lines (guest_protocol.h).
#include <chrono>
#include <string>
#include <vector>

namespace syncprobe {
class Ledger;
}

namespace syncprobe::vm {

struct BootSpec {
  std::string vmlinuz, initrd;
  std::string dir;          // scratch directory for the disks and logs (created)
  std::string input;        // the input disk's content (guest_protocol.h)
  std::string append;       // extra kernel command line
  int memory_mb = 1024;
  int cpus = 1;
  std::chrono::seconds quiet_limit{300};  // no new line for this long ends the guest
  bool verbose = false;
  std::string label;  // for progress messages
  Ledger* ledger = nullptr;  // QEMU is recorded here before it runs (a killed run's QEMU is ended by the next run)
};

struct BootResult {
  std::vector<std::string> lines;  // complete lines of the output disk
  std::string ended;               // "" when the guest powered off; else why it was stopped
  std::string accelerator;         // "kvm" or "tcg"
  double boot_s = 0;               // until the first line: kernel, initramfs, modules
  double wall_s = 0;               // the whole boot
  std::string console_path;        // the console log (in dir)
};

// Boots and waits. KVM when /dev/kvm works (or SYNCPROBE_ACCEL=kvm|tcg says
// so); a KVM boot that produces nothing falls back to TCG. Ends QEMU on
// interruption and watchdog; never leaves it running.
BootResult boot_guest(const BootSpec& spec);

// A -drive argument for the image at `path` with `options` after it. QEMU
// splits -drive at commas and reads ",," as one comma in a value, so every
// comma of the path is doubled: a scratch root named "x,format=qcow2" stays
// a file name instead of adding options.
std::string drive_arg(const std::string& path, const std::string& options);

// The accelerator boot_guest tries first.
std::string preferred_accelerator();

}  // namespace syncprobe::vm
