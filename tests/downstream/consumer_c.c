/* A C consumer of the installed librwkv.so (target rwkv::c): load a model, generate a few tokens. */
#include <rwkv.h>

#include <stdio.h>

static int print(const char* text, size_t len, void* user) {
    (void)user;
    return fwrite(text, 1, len, stdout) == len;
}

int main(int argc, char** argv) {
    rwkv_model* model;
    rwkv_session* session;
    if (argc < 2 || rwkv_model_load(argv[1], NULL, &model) != RWKV_OK) {
        fprintf(stderr, "error: %s\n", rwkv_last_error());
        return 1;
    }
    if (rwkv_session_new(model, NULL, &session) != RWKV_OK || rwkv_session_prompt(session, "The", 3) != RWKV_OK ||
        rwkv_session_generate(session, 20, NULL, 0, print, NULL, NULL) != RWKV_OK) {
        fprintf(stderr, "error: %s\n", rwkv_last_error());
        return 1;
    }
    printf("\n");
    rwkv_session_free(session);
    rwkv_model_free(model);
    return 0;
}
