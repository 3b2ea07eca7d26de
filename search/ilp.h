/* ilp.h: the operator-level sharding ILP (issue 4), as an abstract problem.
 *
 * Nodes are operators (or merged follow-sets of operators), each with a few candidate shardings
 * ("strategies"); every strategy has a cost (seconds) and a memory (bytes per device). Edges carry
 * a resharding cost for each (producer strategy, consumer strategy) pair. The solver picks exactly
 * one strategy per node minimising  sum node cost + sum edge cost  subject to  sum node memory <=
 * mem_limit  (Zheng et al. OSDI'22, Alpa, section 4.2: one-hot s_i, linearised edge variables
 * e_ij with sum_j e_ij = s_i, sum_i e_ij = s_j). search/ilp.c is the only file that includes glpk.h.
 *
 * Node and edge costs may carry a multiplicity already (a tied transformer block's node stands
 * for all its layers): the solver does not care. */
#ifndef STRATA_SEARCH_ILP_H
#define STRATA_SEARCH_ILP_H

#include "search/search.h"

typedef struct st_ilp_edge {
    int u, v;           /* node indices, u != v */
    const double *cost; /* nstrat[u] x nstrat[v], row-major: cost[i * nstrat[v] + j] (>= 0) */
} st_ilp_edge;

typedef struct st_ilp {
    int n;                    /* nodes (>= 1) */
    const int *nstrat;        /* strategies per node (>= 1 each) */
    const double *const *cost; /* cost[i][s] >= 0, may be INFINITY (strategy forbidden) */
    const double *const *mem;  /* mem[i][s] >= 0; NULL = no memory constraint */
    double mem_limit;          /* bytes; <= 0 = no memory constraint */
    int nedges;
    const st_ilp_edge *edges;
    double time_limit_s;       /* <= 0 = none; on expiry the incumbent is returned with its gap */
} st_ilp;

typedef struct st_ilp_result {
    double objective;   /* cost of the returned assignment */
    double bound;       /* best lower bound known (= objective when optimal) */
    double gap;         /* (objective - bound) / max(objective, tiny), 0 when optimal */
    int optimal;        /* 1: proven optimal; 0: time limit hit, incumbent returned */
    int rows, cols;     /* size of the ILP as given to GLPK */
    int binaries;       /* integer (binary) columns among cols */
    double solve_time_s;
    double mem_bytes;   /* memory of the returned assignment */
} st_ilp_result;

/* Solves p. choice (p->n entries) receives the strategy index of each node. Returns 0;
 * ST_ENOPLAN when no assignment fits the memory limit (err says which limit and by how much:
 * the least memory any assignment needs versus the limit), or when every assignment has an
 * infinite cost; ST_ENOPLAN also when the time limit expires before any feasible assignment is
 * found (err says so); ST_EINVAL for a malformed problem (err names it). */
int st_ilp_solve(const st_ilp *p, int *choice, st_ilp_result *r, st_error *err);

/* Exhaustive search over every assignment (tests only: the product of nstrat must be small).
 * Same contract as st_ilp_solve; r->optimal = 1. */
int st_ilp_brute(const st_ilp *p, int *choice, st_ilp_result *r, st_error *err);

/* Tests only. 1 (default): st_ilp_solve reduces the problem exactly before GLPK (search/ilp.c);
 * 0: GLPK gets the plain formulation; 2: every stage runs, LP column generation included, and
 * the answer must come from GLPK on what the reductions left (never from the heuristic
 * incumbent), so that a reduction that removed too much fails the brute-force comparison. */
extern int st__ilp_reduce;

#endif
