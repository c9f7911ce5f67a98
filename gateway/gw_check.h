/*
 * gw_check - the self-test assertion of the gateway modules: unlike assert(), it is not compiled
 * away by NDEBUG, so the self-tests test in every build type.
 */
#ifndef GW_CHECK_H
#define GW_CHECK_H

#include "xws/check.h"

#define GW_CHECK(expr) XWS_CHECK(expr)

#endif
