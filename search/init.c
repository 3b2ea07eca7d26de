/* init.c: the start-up of the search layer (search.h, st_search_init): the libraries' error hooks,
 * installed once before anything uses them (STYLE.md rule 5). */
#include "search/search.h"

void st_search_init(void) {
    st__graph_init();
    st__ilp_init();
}
