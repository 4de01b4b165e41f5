#pragma once
// SIGINT/SIGTERM handling for runs. The handler only records the signal;
// the runner stops after the current step's target has cleaned up (targets
// tear down their mounts, devices and daemons in destructors), writes what it
// has, and exits 130. Blocking waits see EINTR (no SA_RESTART) and should
// check interrupted().
namespace syncprobe {

// The harness origin of a call given up because of the signal
// (SysResult::harness_failure(kInterrupted)): the case was cut short
// (CaseResult::cut_short) and is not kept.
inline constexpr char kInterrupted[] = "interrupted";

void install_interrupt_handlers();
bool interrupted();
int interrupt_signal();  // the signal received, 0 if none

}  // namespace syncprobe
