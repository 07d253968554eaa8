// Clang thread-safety annotations (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html):
// state guarded by a Mutex says so (GUARDED_BY), functions that need a lock
// held say so (REQUIRES), and a clang build with -Wthread-safety checks every
// access at compile time (tools/check_thread_safety.py, run by ctest). Under
// GCC they expand to nothing. Macros only; no state.
#pragma once

#if defined(__clang__)
#define PAGODA_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define PAGODA_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) PAGODA_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY PAGODA_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) PAGODA_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) PAGODA_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) PAGODA_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) PAGODA_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) PAGODA_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define EXCLUDES(...) PAGODA_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS PAGODA_THREAD_ANNOTATION(no_thread_safety_analysis)
