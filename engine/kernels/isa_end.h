// Closes what isa_begin.h opened (the level's target); the last include of a
// kernel source. No #pragma once on purpose.
#if defined(PAGODA_ISA_TARGET_PUSHED)
#pragma GCC pop_options
#endif
