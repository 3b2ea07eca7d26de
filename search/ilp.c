/* ilp.c: see ilp.h (being written). */
#include "ilp.h"
