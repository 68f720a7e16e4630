/* The C API from C11: loading (and its errors), model info, threads, activation modes, tokenize/detokenize with buffer
 * sizing, forward vs forward_batch, states, sessions (generate with a callback and stop strings, fork,
 * chat, save/load continuing exactly), and NULL handling. argv[1]: a byte-level model (the demo model). */
#include <rwkv.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
#define CHECK(cond)                                                                                 \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, \
                    rwkv_last_error());                                                             \
            ++failures;                                                                             \
        }                                                                                           \
    } while (0)

typedef struct {
    char text[4096];
    size_t len;
    int calls, stop_after;
} collector;

static int collect(const char* text, size_t len, void* user) {
    collector* c = (collector*)user;
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, text, len);
        c->len += len;
        c->text[c->len] = '\0';
    }
    ++c->calls;
    return c->stop_after == 0 || c->calls < c->stop_after;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_c_api MODEL SCRATCH_DIR\n");
        return 2;
    }
    const char* path = argv[1];
    char state_file[1024], session_file[1024];
    snprintf(state_file, sizeof state_file, "%s/c.state", argv[2]);
    snprintf(session_file, sizeof session_file, "%s/c.session", argv[2]);

    CHECK(strcmp(rwkv_version(), "") != 0);
    CHECK(strcmp(rwkv_status_name(RWKV_ERROR_BUFFER_TOO_SMALL), "RWKV_ERROR_BUFFER_TOO_SMALL") == 0);

    /* Errors: a missing file names the file; NULL arguments are invalid. */
    rwkv_model* model = NULL;
    CHECK(rwkv_model_load("/nonexistent/model.pth", NULL, &model) == RWKV_ERROR);
    CHECK(strstr(rwkv_last_error(), "/nonexistent/model.pth") != NULL);
    CHECK(model == NULL);
    CHECK(rwkv_model_load(NULL, NULL, &model) == RWKV_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(rwkv_last_error(), "model_path is NULL") != NULL);

    CHECK(rwkv_model_load(path, NULL, &model) == RWKV_OK);
    if (!model) return 1;
    CHECK(strcmp(rwkv_last_error(), "") == 0);
    rwkv_model_info info;
    CHECK(rwkv_model_get_info(model, &info) == RWKV_OK);
    CHECK(info.generation == 6 && info.vocab_size == 256 && info.n_layer > 0);
    CHECK(strcmp(info.tokenizer, "bytes") == 0);
    CHECK(rwkv_model_set_threads(model, 0) == RWKV_ERROR_INVALID_ARGUMENT);
    CHECK(rwkv_model_set_threads(model, 1) == RWKV_OK);
    CHECK(rwkv_model_get_info(model, &info) == RWKV_OK && info.threads == 1);

    /* Tokenize / detokenize, with the size protocol. */
    int32_t ids[64];
    size_t n = 0;
    CHECK(rwkv_tokenize(model, "Hello", (size_t)-1, NULL, 0, &n) == RWKV_ERROR_BUFFER_TOO_SMALL && n == 5);
    CHECK(rwkv_tokenize(model, "Hello", 5, ids, 64, &n) == RWKV_OK && n == 5 && ids[0] == 'H');
    char text[16];
    size_t len = 0;
    CHECK(rwkv_detokenize(model, ids, n, text, 2, &len) == RWKV_ERROR_BUFFER_TOO_SMALL && len == 5);
    CHECK(rwkv_detokenize(model, ids, n, text, sizeof text, &len) == RWKV_OK && len == 5);
    CHECK(memcmp(text, "Hello", 5) == 0);
    int32_t bad = 300;
    CHECK(rwkv_detokenize(model, &bad, 1, text, sizeof text, &len) == RWKV_ERROR);
    CHECK(strstr(rwkv_last_error(), "300") != NULL);

    /* forward on two states equals forward_batch on copies of them. */
    const size_t V = (size_t)info.vocab_size;
    float* single = malloc(2 * V * sizeof(float));
    float* batched = malloc(2 * V * sizeof(float));
    rwkv_state *a = NULL, *b = NULL, *a2 = NULL, *b2 = NULL;
    CHECK(rwkv_state_new(model, &a) == RWKV_OK && rwkv_state_new(model, &b) == RWKV_OK);
    CHECK(rwkv_forward(model, a, ids, 3, NULL) == RWKV_OK);
    CHECK(rwkv_forward(model, b, ids + 1, 4, NULL) == RWKV_OK);
    CHECK(rwkv_state_copy(a, &a2) == RWKV_OK && rwkv_state_copy(b, &b2) == RWKV_OK);
    const int32_t next[2] = {'x', 'y'};
    CHECK(rwkv_forward(model, a, next, 1, single) == RWKV_OK);
    CHECK(rwkv_forward(model, b, next + 1, 1, single + V) == RWKV_OK);
    rwkv_state* pair[2] = {a2, b2};
    CHECK(rwkv_forward_batch(model, pair, next, 2, batched) == RWKV_OK);
    float worst = 0.0f;
    for (size_t i = 0; i < 2 * V; ++i) worst = fmaxf(worst, fabsf(single[i] - batched[i]));
    CHECK(worst < 1e-4f);
    CHECK(rwkv_forward(model, a, &bad, 1, single) == RWKV_ERROR);
    CHECK(strstr(rwkv_last_error(), "300") != NULL);

    /* Activation modes. The model is bf16: bf16 inputs move the logits a little; int8 touches only
     * block formats, so here it changes nothing; exact again gives the exact logits back. */
    rwkv_activations mode = RWKV_ACTIVATIONS_INT8;
    CHECK(rwkv_model_get_activations(model, &mode) == RWKV_OK && mode == RWKV_ACTIVATIONS_EXACT);
    CHECK(rwkv_model_set_activations(model, 7) == RWKV_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(rwkv_last_error(), "got 7") != NULL);
    CHECK(rwkv_model_set_activations(NULL, RWKV_ACTIVATIONS_EXACT) == RWKV_ERROR_INVALID_ARGUMENT);
    CHECK(rwkv_model_get_activations(model, NULL) == RWKV_ERROR_INVALID_ARGUMENT);
    {
        float* probe = malloc(4 * V * sizeof(float));
        const rwkv_activations modes[4] = {RWKV_ACTIVATIONS_EXACT, RWKV_ACTIVATIONS_BF16, RWKV_ACTIVATIONS_INT8,
                                           RWKV_ACTIVATIONS_EXACT};
        for (int m = 0; m < 4; ++m) {
            rwkv_state* p = NULL;
            CHECK(rwkv_model_set_activations(model, modes[m]) == RWKV_OK);
            CHECK(rwkv_model_get_activations(model, &mode) == RWKV_OK && mode == modes[m]);
            CHECK(rwkv_state_copy(a2, &p) == RWKV_OK);
            CHECK(rwkv_forward(model, p, next, 1, probe + (size_t)m * V) == RWKV_OK);
            rwkv_state_free(p);
        }
        float bf16_diff = 0.0f, int8_diff = 0.0f, exact_diff = 0.0f;
        for (size_t i = 0; i < V; ++i) {
            bf16_diff = fmaxf(bf16_diff, fabsf(probe[V + i] - probe[i]));
            int8_diff = fmaxf(int8_diff, fabsf(probe[2 * V + i] - probe[i]));
            exact_diff = fmaxf(exact_diff, fabsf(probe[3 * V + i] - probe[i]));
        }
        CHECK(bf16_diff > 0.0f && bf16_diff < 0.5f);
        CHECK(int8_diff == 0.0f && exact_diff == 0.0f);
        free(probe);
    }
    CHECK(rwkv_state_save(a, state_file) == RWKV_OK);
    CHECK(rwkv_state_load(b, state_file) == RWKV_OK);
    CHECK(rwkv_state_load(b, "/nonexistent/s.state") == RWKV_ERROR);
    rwkv_state_free(a), rwkv_state_free(b), rwkv_state_free(a2), rwkv_state_free(b2);

    /* Sessions. */
    rwkv_sampling sampling;
    rwkv_sampling_default(&sampling);
    CHECK(sampling.top_p == 0.85);
    sampling.temperature = 1.0;
    sampling.seed = 42;
    rwkv_session* s = NULL;
    CHECK(rwkv_session_new(model, &sampling, &s) == RWKV_OK);
    CHECK(rwkv_session_generate(s, 5, NULL, 0, NULL, NULL, NULL) == RWKV_ERROR);
    CHECK(strstr(rwkv_last_error(), "prompt") != NULL);
    CHECK(rwkv_session_prompt(s, "The cat", (size_t)-1) == RWKV_OK);
    collector c1 = {{0}, 0, 0, 3};
    size_t tokens = 0;
    rwkv_stop_reason reason;
    CHECK(rwkv_session_generate_ex(s, 50, NULL, 0, collect, &c1, &tokens, &reason) == RWKV_OK);
    CHECK(c1.calls == 3 && reason == RWKV_STOP_CALLBACK && tokens == 3);

    const char* stops[1] = {"e"};
    collector c2 = {{0}, 0, 0, 0};
    CHECK(rwkv_session_generate_ex(s, 200, stops, 1, collect, &c2, &tokens, &reason) == RWKV_OK);
    CHECK(strchr(c2.text, 'e') == NULL);

    /* Save, then the saved session and a fork continue exactly like the original. */
    rwkv_session *fork = NULL, *restored = NULL;
    CHECK(rwkv_session_save(s, session_file) == RWKV_OK);
    CHECK(rwkv_session_fork(s, &fork) == RWKV_OK);
    rwkv_sampling other;
    rwkv_sampling_default(&other);
    CHECK(rwkv_session_new(model, &other, &restored) == RWKV_OK);
    CHECK(rwkv_session_load(restored, session_file) == RWKV_OK);
    collector o = {{0}, 0, 0, 0}, f = {{0}, 0, 0, 0}, r = {{0}, 0, 0, 0};
    CHECK(rwkv_session_generate(s, 40, NULL, 0, collect, &o, NULL) == RWKV_OK);
    CHECK(rwkv_session_generate(fork, 40, NULL, 0, collect, &f, NULL) == RWKV_OK);
    CHECK(rwkv_session_generate(restored, 40, NULL, 0, collect, &r, NULL) == RWKV_OK);
    CHECK(o.len > 0 && strcmp(o.text, f.text) == 0 && strcmp(o.text, r.text) == 0);
    uint64_t p1 = 0, p2 = 0;
    CHECK(rwkv_session_position(s, &p1) == RWKV_OK && rwkv_session_position(restored, &p2) == RWKV_OK && p1 == p2);
    CHECK(rwkv_session_load(restored, state_file) == RWKV_OK); /* a bare state file is accepted too */
    CHECK(rwkv_session_load(restored, "/nonexistent/x.session") == RWKV_ERROR);

    /* Chat, reset, bad sampling. */
    collector ch = {{0}, 0, 0, 0};
    CHECK(rwkv_session_reset(s) == RWKV_OK);
    CHECK(rwkv_session_chat(s, "Tell me a fortune.", (size_t)-1, 60, collect, &ch) == RWKV_OK);
    CHECK(strstr(ch.text, "\n\n") == NULL);
    CHECK(rwkv_session_chat(s, "  ", (size_t)-1, 60, NULL, NULL) == RWKV_ERROR);
    other.top_p = 2.0;
    CHECK(rwkv_session_set_sampling(s, &other) == RWKV_ERROR);
    CHECK(strstr(rwkv_last_error(), "top_p") != NULL);
    CHECK(rwkv_session_prompt(NULL, "x", 1) == RWKV_ERROR_INVALID_ARGUMENT);

    /* Sessions outlive the model handle (they share its weights). */
    rwkv_model_free(model);
    collector after = {{0}, 0, 0, 0};
    CHECK(rwkv_session_generate(fork, 10, NULL, 0, collect, &after, NULL) == RWKV_OK && after.len > 0);

    rwkv_session_free(s), rwkv_session_free(fork), rwkv_session_free(restored);
    free(single), free(batched);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("C API: all checks passed\n");
    return 0;
}
