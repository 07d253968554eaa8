// Includes <immintrin.h> when AVX-512F is enabled. GCC 12.2 reports false
// -Wmaybe-uninitialized / -Wuninitialized warnings inside its own AVX-512
// headers (GCC PR 105593, `__m512 __Y = __Y;`); they are silenced for the
// header's lines only. No declarations of its own.
#pragma once

#if defined(__AVX512F__)
#pragma GCC diagnostic push
#if !defined(__clang__)  // GCC-only warning (clang would warn that it is unknown)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
