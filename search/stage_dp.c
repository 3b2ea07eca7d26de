/* stage_dp.c: see stage_dp.h (being written). */
#include "stage_dp.h"
