// The library's version string.
#include "selfrl/version.h"

namespace selfrl {
const char* version() { return SELFRL_VERSION_STRING; }
}  // namespace selfrl
