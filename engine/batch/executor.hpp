#pragma once
// The extension's private oneTBB arena. Engram never touches the host's TBB settings
// (no tbb::global_control): all parallel work runs inside this arena.
// ENGRAM_THREADS=N in the environment caps its concurrency (default: all cores).
#include <tbb/task_arena.h>

namespace engram::engine {

tbb::task_arena& default_arena();
int default_arena_threads() noexcept;

} // namespace engram::engine
