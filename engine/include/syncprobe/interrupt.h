#pragma once
// SIGINT/SIGTERM handling for runs. The handler only records the signal;
// the runner stops after the current step's target has cleaned up (targets
// tear down their mounts, devices and daemons in destructors), writes what it
// has, and exits 130. Blocking waits see EINTR (no SA_RESTART) and should
// check interrupted().
namespace syncprobe {

void install_interrupt_handlers();
bool interrupted();
int interrupt_signal();  // the signal received, 0 if none

}  // namespace syncprobe
