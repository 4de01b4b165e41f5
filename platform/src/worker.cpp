// syncprobe-worker: a case process's syscall worker, exec'd (rather than
// only forked) when a process-level injector must be in front of its calls:
// libfiu's preload reaches only a program that is exec'd (docs/apps.md).
#include "posix_wire.h"

int main(int argc, char** argv) { return syncprobe::posix_wire::exec_worker_main(argc, argv); }
