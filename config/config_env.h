// Config from the environment, for containers and service managers:
// PAGODA_<SECTION>_<KEY>=value sets <section>.<key>, e.g.
// PAGODA_MODEL_WEIGHT_DTYPE=int8 -> model.weight_dtype=int8 and
// PAGODA_SERVER_API_KEYS='[k1, k2]' -> server.api_keys (values are YAML, as
// with --set). Sections: model, kv, scheduler, server, engine,
// structured, logging.
// Precedence: the config file, then the environment, then the command line.
// Other PAGODA_* variables (PAGODA_ISA, PAGODA_HUGE_PAGES, ...) are not
// config keys and are left alone; a variable of a config section that names
// no key is an error naming the variable (a typo must not be ignored).
// Pure function of its argument; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace pagoda {

// "section.key=value" overrides from `environment` (NAME=VALUE strings, as in
// `environ`), sorted by variable name.
Result<std::vector<std::string>> config_overrides_from_environment(const std::vector<std::string>& environment);

// The process environment as NAME=VALUE strings.
std::vector<std::string> process_environment();

}  // namespace pagoda
