/* rwkv.cpp's decode rate for the side-by-side campaign (tools/peer-campaign.sh), by the same
   protocol as ours_decode.cpp: rwkv_init_from_file, 8 warm-up tokens, then N tokens timed (one
   rwkv_eval each, the state updated in place). Prints tok/s. With a third argument "quantize":
   rwkv_quantize_model_file(FILE, OUT, TYPE) instead.

     rwkvcpp_decode FILE THREADS N
     rwkvcpp_decode quantize IN OUT TYPE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rwkv.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char** argv) {
    if (argc == 5 && strcmp(argv[1], "quantize") == 0)
        return rwkv_quantize_model_file(argv[2], argv[3], argv[4]) ? 0 : 1;
    if (argc != 4) {
        fprintf(stderr, "usage: rwkvcpp_decode FILE THREADS N | rwkvcpp_decode quantize IN OUT TYPE\n");
        return 2;
    }
    struct rwkv_context* ctx = rwkv_init_from_file(argv[1], (uint32_t)atoi(argv[2]), 0);
    if (!ctx) {
        fprintf(stderr, "rwkvcpp_decode: cannot load %s\n", argv[1]);
        return 1;
    }
    const int n = atoi(argv[3]);
    const uint32_t vocab = (uint32_t)rwkv_get_n_vocab(ctx);
    float* state = malloc(rwkv_get_state_len(ctx) * sizeof(float));
    float* logits = malloc(rwkv_get_logits_len(ctx) * sizeof(float));
    if (!state || !logits) return 1;
    rwkv_init_state(ctx, state);
    uint32_t tok = 1;
    for (int i = 0; i < 8; ++i, tok = (tok * 31 + 7) % vocab)
        if (!rwkv_eval(ctx, tok, state, state, logits)) return 1;
    const double t0 = now();
    for (int i = 0; i < n; ++i, tok = (tok * 31 + 7) % vocab)
        if (!rwkv_eval(ctx, tok, state, state, logits)) return 1;
    printf("%.2f\n", n / (now() - t0));
    rwkv_free(ctx);
    free(state);
    free(logits);
    return 0;
}
