/* names.c: the spelling of every enum in files and on the command line, in one table each, so
 * that parsing and printing cannot disagree. */
#include "src/core/core.h"

#include <string.h>

#define NAME_TABLE(type, fn_name, fn_parse, ...)                                                   \
    static const char *const fn_name##_tab[] = {__VA_ARGS__};                                      \
    const char *fn_name(type v) {                                                                  \
        size_t n = sizeof fn_name##_tab / sizeof fn_name##_tab[0];                                 \
        return ((size_t)v < n) ? fn_name##_tab[v] : "?";                                           \
    }                                                                                              \
    int fn_parse(const char *s, type *out) {                                                       \
        size_t n = sizeof fn_name##_tab / sizeof fn_name##_tab[0];                                 \
        for (size_t i = 0; s && i < n; i++)                                                        \
            if (strcmp(s, fn_name##_tab[i]) == 0) {                                                \
                *out = (type)i;                                                                    \
                return 0;                                                                          \
            }                                                                                      \
        return ST_EINVAL;                                                                          \
    }

/* no "fp4": Blackwell's fp4 GEMMs need a block scale, and the two formats (NVIDIA's nvfp4, OCP's mxfp4)
 * differ in block size and scale type, so the name says which */
NAME_TABLE(st_dtype, st_dtype_name, st_dtype_parse, "fp32", "tf32", "fp16", "bf16", "fp8", "mxfp8", "nvfp4")
NAME_TABLE(st_activation, st_activation_name, st_activation_parse, "gelu", "relu", "swiglu")
NAME_TABLE(st_norm, st_norm_name, st_norm_parse, "layernorm", "rmsnorm")
NAME_TABLE(st_position, st_position_name, st_position_parse, "learned", "rope", "alibi")
NAME_TABLE(st_recompute, st_recompute_name, st_recompute_parse, "none", "selective", "full", "op")
NAME_TABLE(st_offload, st_offload_name, st_offload_parse, "none", "optimizer", "params")
NAME_TABLE(st_schedule, st_schedule_name, st_schedule_parse, "gpipe", "1f1b", "interleaved", "zb", "zbv", "dualpipe")
NAME_TABLE(st_fabric, st_fabric_name, st_fabric_parse, "nvswitch", "xgmi", "pcie")
NAME_TABLE(st_attention, st_attention_name, st_attention_parse, "flash", "unfused", "fa2", "cudnn")
NAME_TABLE(st_kernels, st_kernels_name, st_kernels_parse, "fused", "eager", "compile")
/* Megatron-LM's --cp-comm-type spellings */
NAME_TABLE(st_cp_comm, st_cp_comm_name, st_cp_comm_parse, "p2p", "all_gather", "a2a")
NAME_TABLE(st_opclass, st_opclass_name, st_opclass_parse, "gemm", "bgemm", "softmax", "norm",
           "elementwise", "embedding", "loss", "attention")
NAME_TABLE(st_coll, st_coll_name, st_coll_parse, "none", "allreduce", "allgather", "reducescatter",
           "alltoall", "broadcast", "sendrecv")

double st_dtype_bytes(st_dtype d) {
    switch (d) {
    case ST_DT_FP32:
    case ST_DT_TF32: return 4;
    case ST_DT_FP16:
    case ST_DT_BF16: return 2;
    case ST_DT_FP8: return 1; /* one fp32 scale per tensor: nothing per element */
    /* OCP Microscaling Formats (MX) v1.0: an E8M0 scale byte per block of 32 e4m3 values */
    case ST_DT_MXFP8: return 1 + 1.0 / 32;
    /* NVFP4 (Transformer Engine docs, "NVFP4"; arXiv 2509.25149 Sec. 2): e2m1 values, half a byte
     * each, an E4M3 scale byte per block of 16, and one fp32 scale per tensor (nothing per element) */
    case ST_DT_NVFP4: return 0.5 + 1.0 / 16;
    default: return 2;
    }
}

int st_dtype_quantised(st_dtype d) { return d == ST_DT_FP8 || d == ST_DT_MXFP8 || d == ST_DT_NVFP4; }

st_dtype st_dtype_storage(st_dtype d) { return st_dtype_quantised(d) ? ST_DT_BF16 : d; }

double st_dtype_cast_passes(st_dtype d) { return d == ST_DT_NVFP4 ? 2 : 1; }
