// RequestId: the number that names one request everywhere (the scheduler's
// Request, the KV manager's page tables, the API's response ids). A plain
// value type.
#pragma once

#include <cstdint>

namespace pagoda {

using RequestId = uint64_t;

}  // namespace pagoda
