/* rwkv.h — the C API of the rwkv library (librwkv.so, CMake target rwkv::c).
 *
 * For embedding RWKV-5/6 models in programs written in C or any language with a C FFI (Python
 * ctypes, Rust, Go, ...). Valid C11 and C++. Built on rwkv::AnyModel and rwkv::Session.
 *
 *   rwkv_model* model;
 *   if (rwkv_model_load("model.pth", "rwkv_vocab_v20230424.txt", &model) != RWKV_OK) {
 *       fprintf(stderr, "%s\n", rwkv_last_error());
 *       return 1;
 *   }
 *   rwkv_session* s;
 *   rwkv_session_new(model, NULL, &s);
 *   rwkv_session_prompt(s, "The best thing about", (size_t)-1);
 *   rwkv_session_generate(s, 100, NULL, 0, print_text, NULL, NULL);
 *   rwkv_session_free(s);
 *   rwkv_model_free(model);
 *
 * Conventions:
 * - Every function that can fail returns an rwkv_status; RWKV_OK is 0. On failure,
 *   rwkv_last_error() describes what went wrong (the file, tensor or value), for the calling thread.
 *   No C++ exception ever crosses this boundary. Outputs are written only on success.
 * - Text is UTF-8 bytes with an explicit length; pass (size_t)-1 as the length of a NUL-terminated
 *   string. Token ids are int32_t.
 * - A model may be used by many threads at once (each with its own states / sessions); one state or
 *   session must not be used by two threads at the same time.
 * - Handles are freed by their _free function (NULL is accepted); a session or state keeps the model's
 *   weights alive, so the model handle may be freed before them.
 */
#ifndef RWKV_H
#define RWKV_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define RWKV_API __declspec(dllexport)
#else
#define RWKV_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rwkv_status {
    RWKV_OK = 0,
    RWKV_ERROR = 1,                  /* the library refused: bad file, bad token id, wrong model, ... */
    RWKV_ERROR_INVALID_ARGUMENT = 2, /* a NULL handle or pointer, or a value out of range */
    RWKV_ERROR_BUFFER_TOO_SMALL = 3, /* the needed size is stored in the size output */
    RWKV_ERROR_OUT_OF_MEMORY = 4,
    RWKV_ERROR_INTERNAL = 5 /* anything else (a bug: please report) */
} rwkv_status;

typedef struct rwkv_model rwkv_model;
typedef struct rwkv_state rwkv_state;
typedef struct rwkv_session rwkv_session;

/* Description of the calling thread's last failure ("" if none); valid until that thread's next call. */
RWKV_API const char* rwkv_last_error(void);
/* A fixed name for a status ("RWKV_OK", ...). */
RWKV_API const char* rwkv_status_name(rwkv_status status);
/* The library version, e.g. "0.1.0". */
RWKV_API const char* rwkv_version(void);

/* ---- models ------------------------------------------------------------------------------------- */

typedef struct rwkv_model_info {
    int generation; /* 5 (x052, Eagle) or 6 (x060, Finch) */
    int n_layer, n_embd, n_head, head_size, vocab_size;
    int threads;             /* threads used by forward */
    const char* weight_type; /* e.g. "float32", "stored: BF16 (+F32)"; valid while the model lives */
    const char* tokenizer;   /* "world" or "bytes" */
} rwkv_model_info;

/* Loads any supported checkpoint. vocab_path: the World vocabulary (rwkv_vocab_v20230424.txt), or NULL
 * for byte-level (256-token) models. */
RWKV_API rwkv_status rwkv_model_load(const char* model_path, const char* vocab_path, rwkv_model** out);
RWKV_API void rwkv_model_free(rwkv_model* model);
RWKV_API rwkv_status rwkv_model_get_info(const rwkv_model* model, rwkv_model_info* out);
/* Threads used by forward (n >= 1; the calling thread counts). Shared by every session of the model. */
RWKV_API rwkv_status rwkv_model_set_threads(rwkv_model* model, int n_threads);

/* Numeric mode of the matrix products' inputs (rwkv::Model::set_bf16_activations / set_int8_activations).
 * The two opt-in modes are faster and move logits slightly, so EXACT is the default. */
typedef enum rwkv_activations {
    RWKV_ACTIVATIONS_EXACT = 0, /* fp32 inputs everywhere: matches the reference implementation */
    RWKV_ACTIVATIONS_BF16 = 1,  /* bf16 matrices: inputs rounded to bf16, prefill and decoding (~1e-2) */
    RWKV_ACTIVATIONS_INT8 = 2   /* block-format matrices (Q8_0, Q4_0, ..., Q6_K): inputs quantized to int8
                                   per 32 values when decoding; max |logit change| up to ~0.6 */
} rwkv_activations;
/* Sets the mode (an rwkv_activations value, passed as int so that any value a caller sends is defined)
 * for every session and state of the model (like the thread count: not while a forward of this model is
 * running). A mode that touches none of the model's formats is accepted and changes nothing.
 * RWKV_ERROR_INVALID_ARGUMENT for a value outside the enum. */
RWKV_API rwkv_status rwkv_model_set_activations(rwkv_model* model, int mode);
RWKV_API rwkv_status rwkv_model_get_activations(const rwkv_model* model, rwkv_activations* out);

/* Text -> ids. Writes up to `capacity` ids and the count to *n_ids; RWKV_ERROR_BUFFER_TOO_SMALL (with
 * *n_ids = the count needed) when they do not fit. ids may be NULL when capacity is 0. */
RWKV_API rwkv_status rwkv_tokenize(const rwkv_model* model, const char* text, size_t text_len, int32_t* ids,
                                   size_t capacity, size_t* n_ids);
/* Ids -> raw bytes (a multi-byte character may be split between calls; end of text decodes to nothing).
 * Writes up to `capacity` bytes, no terminator, and the length to *len; RWKV_ERROR_BUFFER_TOO_SMALL
 * (with *len = the length needed) when they do not fit. An id the vocabulary does not define fails. */
RWKV_API rwkv_status rwkv_detokenize(const rwkv_model* model, const int32_t* ids, size_t n_ids, char* text,
                                     size_t capacity, size_t* len);

/* ---- states and forward passes ------------------------------------------------------------------- */

/* A recurrent state (the model's initial one). */
RWKV_API rwkv_status rwkv_state_new(const rwkv_model* model, rwkv_state** out);
RWKV_API void rwkv_state_free(rwkv_state* state);
RWKV_API rwkv_status rwkv_state_copy(const rwkv_state* state, rwkv_state** out);
RWKV_API rwkv_status rwkv_state_reset(rwkv_state* state);
/* A state file (State::save format: shape header, checksum); loading one of another shape fails. */
RWKV_API rwkv_status rwkv_state_save(const rwkv_state* state, const char* path);
RWKV_API rwkv_status rwkv_state_load(rwkv_state* state, const char* path);

/* Feeds n_ids >= 1 tokens to `state`; writes the logits after the last one to `logits` (vocab_size
 * floats) unless it is NULL. A bad id fails and leaves the state untouched. */
RWKV_API rwkv_status rwkv_forward(const rwkv_model* model, rwkv_state* state, const int32_t* ids, size_t n_ids,
                                  float* logits);
/* One token for each of `batch` sequences (distinct states); logits: batch x vocab_size floats, row b for
 * sequence b, or NULL. */
RWKV_API rwkv_status rwkv_forward_batch(const rwkv_model* model, rwkv_state* const* states, const int32_t* ids,
                                        size_t batch, float* logits);

/* ---- sessions: generation with a sampler --------------------------------------------------------- */

typedef struct rwkv_sampling {
    double temperature;       /* >= 0; 0 = greedy */
    double top_p;             /* [0, 1] */
    int top_k;                /* >= 0; 0 = off */
    double presence_penalty;  /* subtracted once from every token generated so far */
    double frequency_penalty; /* times the token's decayed count */
    double penalty_decay;     /* [0, 1], counts are multiplied by it at every token */
    uint64_t seed;
} rwkv_sampling;

/* The defaults: temperature 1, top_p 0.85, top_k 0, no penalties, decay 0.996, seed 0. */
RWKV_API void rwkv_sampling_default(rwkv_sampling* out);

typedef enum rwkv_stop_reason {
    RWKV_STOP_MAX_TOKENS = 0,
    RWKV_STOP_END_OF_TEXT = 1,
    RWKV_STOP_STOP_STRING = 2,
    RWKV_STOP_CALLBACK = 3
} rwkv_stop_reason;

/* Receives generated text in whole UTF-8 characters (not NUL-terminated). Return nonzero to continue,
 * 0 to stop. */
typedef int (*rwkv_text_callback)(const char* text, size_t len, void* user_data);

/* sampling: NULL for the defaults. */
RWKV_API rwkv_status rwkv_session_new(const rwkv_model* model, const rwkv_sampling* sampling, rwkv_session** out);
RWKV_API void rwkv_session_free(rwkv_session* session);
/* An independent copy (own state, logits, sampler; shared weights). */
RWKV_API rwkv_status rwkv_session_fork(const rwkv_session* session, rwkv_session** out);
RWKV_API rwkv_status rwkv_session_reset(rwkv_session* session);
RWKV_API rwkv_status rwkv_session_set_sampling(rwkv_session* session, const rwkv_sampling* sampling);
/* Tokens fed since the start (prompt and generated). */
RWKV_API rwkv_status rwkv_session_position(const rwkv_session* session, uint64_t* out);
/* Feeds text. */
RWKV_API rwkv_status rwkv_session_prompt(rwkv_session* session, const char* text, size_t text_len);
/* Generates up to max_tokens tokens after the prompt, streaming text to `callback` (may be NULL).
 * stop: n_stop NUL-terminated stop strings (never emitted), or NULL. n_tokens / reason: outputs or NULL.
 * Fails when nothing was prompted yet. */
RWKV_API rwkv_status rwkv_session_generate(rwkv_session* session, size_t max_tokens, const char* const* stop,
                                           size_t n_stop, rwkv_text_callback callback, void* user_data,
                                           size_t* n_tokens);
/* Like rwkv_session_generate, and stores why it stopped. */
RWKV_API rwkv_status rwkv_session_generate_ex(rwkv_session* session, size_t max_tokens, const char* const* stop,
                                              size_t n_stop, rwkv_text_callback callback, void* user_data,
                                              size_t* n_tokens, rwkv_stop_reason* reason);
/* One World-format chat turn ("User: <message>\n\nAssistant:" ... up to the blank line); the reply is
 * streamed without its leading space. */
RWKV_API rwkv_status rwkv_session_chat(rwkv_session* session, const char* message, size_t message_len,
                                       size_t max_tokens, rwkv_text_callback callback, void* user_data);
/* Everything needed to continue exactly: state, last logits, sampler settings, RNG and counts,
 * position, and the model's fingerprint (a file from another model is refused). */
RWKV_API rwkv_status rwkv_session_save(const rwkv_session* session, const char* path);
RWKV_API rwkv_status rwkv_session_load(rwkv_session* session, const char* path);

#ifdef __cplusplus
}
#endif

#endif /* RWKV_H */
