/*
 * tapegrad_c.h: the C API of tapegrad (C11; usable from C++, Rust, Go, Zig, Swift, ... through any C FFI).
 *
 * Everything a host program needs to run and train tapegrad's models without C++: contexts, tensors, the
 * exact and approximate attention node on host buffers, GPT models (load, tokenize, generate, score, train,
 * save). The guide is docs/embedding.md; the implementation is the library's capi/ folder.
 *
 * Rules that hold for every function below
 *   - Every function returns a tg_status (TG_OK = 0 on success), except the few documented as returning a
 *     version or a message. On failure nothing is written to the output arguments (unless said otherwise)
 *     and the message of the error is readable with tg_context_last_error(ctx).
 *   - No C++ exception, abort() or exit() ever leaves the library: every failure, an allocation failure
 *     included, becomes a status code.
 *   - Handles are opaque. A handle made by tg_X_create/load is released by tg_X_free (NULL is accepted and
 *     ignored). Using a handle after freeing it is undefined behaviour, as with free().
 *   - Threads: a context owns its worker threads (its own oneTBB task arena with the thread count chosen at
 *     creation), its random generator and its log callback; nothing a context does is visible to another.
 *     Different contexts may be used from different host threads at the same time. One context, and each
 *     tensor, model or optimizer handle, must be used by one host thread at a time (no internal locking).
 *     Handles are not tied to the context that made them: any context may operate on any handle.
 *   - Sizes and counts are int64_t (shapes, token counts) or size_t (byte and element counts of host
 *     buffers); booleans are int32_t (0 false, anything else true). Strings are UTF-8; text inputs come
 *     with an explicit length and need no terminating NUL.
 *
 * Stability (the promise the version numbers keep)
 *   TG_API_VERSION_MAJOR changes when anything breaks source or binary compatibility. Within one major
 *   version, a newer library only ADDS: new functions, new status codes, new enum values, and new fields at
 *   the END of the option structs. Each option struct starts with `struct_size`, set by its tg_X_init
 *   function to sizeof(struct) as the caller's header knew it, so an older program keeps working with a newer
 *   library (the missing fields take their defaults). Existing functions, their arguments, the values of
 *   existing constants and the layout of existing struct fields never change within a major version.
 *   Error messages are for people: their wording may change at any time; branch on the status code.
 *   Before 1.0 (major 0) the minor version plays the role of the major one.
 */
#ifndef TAPEGRAD_C_H
#define TAPEGRAD_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions ------------------------------------------------------------------------------------------- */

#define TG_API_VERSION_MAJOR 0
#define TG_API_VERSION_MINOR 1
/* One number for comparisons: major * 10000 + minor * 100 + patch. */
#define TG_API_VERSION (TG_API_VERSION_MAJOR * 10000 + TG_API_VERSION_MINOR * 100 + 0)

/* The TG_API_VERSION the library was built with (compare with the header's to catch a mismatched .so). */
int32_t tg_version(void);
/* The library's release as text, e.g. "0.1.0" (a static string, never freed). */
const char* tg_version_string(void);

/* ---- status codes ---------------------------------------------------------------------------------------- */

typedef int32_t tg_status;
enum {
    TG_OK = 0,
    TG_ERR_INVALID_ARGUMENT = 1, /* a NULL handle or pointer, a value out of range, an id outside the vocabulary */
    TG_ERR_SHAPE = 2,            /* shapes or sizes that do not fit together */
    TG_ERR_IO = 3,               /* a file or folder missing, unreadable, malformed or not writable */
    TG_ERR_OOM = 4,              /* memory could not be allocated */
    TG_ERR_BUFFER_TOO_SMALL = 5, /* an output buffer is too small; the needed size was written where documented */
    TG_ERR_INTERNAL = 6          /* a bug in tapegrad: please report it with the message */
};
/* "TG_OK", "TG_ERR_SHAPE", ... ("TG_ERR_UNKNOWN" for a value this version does not know). Static string. */
const char* tg_status_name(tg_status status);

/* ---- contexts ---------------------------------------------------------------------------------------------- */

typedef struct tg_context tg_context;

enum { TG_LOG_DEBUG = 0, TG_LOG_INFO = 1, TG_LOG_WARNING = 2, TG_LOG_ERROR = 3 };
/* Receives the library's messages (attention mode choices, loaded checkpoints, every error at TG_LOG_ERROR).
 * Called on the thread that made the call; `message` is valid only during the call. */
typedef void (*tg_log_fn)(void* user, int32_t level, const char* message);

typedef struct tg_context_options {
    uint32_t struct_size; /* sizeof(tg_context_options); set by tg_context_options_init */
    int32_t num_threads;  /* worker threads of this context; 0: every core of the machine */
    uint64_t seed;        /* seed of the context's random generator (model init, dropout, sampling) */
    tg_log_fn log;        /* NULL (the default): silent */
    void* log_user;       /* passed to log */
} tg_context_options;

/* Fills the defaults: all cores, seed 0, silent. */
tg_status tg_context_options_init(tg_context_options* options);
/* options may be NULL (the defaults). */
tg_status tg_context_create(const tg_context_options* options, tg_context** out);
tg_status tg_context_free(tg_context* ctx);
/* The message of the last failed call made with `ctx` ("" if none). With ctx == NULL: the last failure on the
 * calling thread of a call that had no context to report to (e.g. tg_context_create, or a NULL ctx). The text
 * stays valid until the next failing call on the same context (or thread). Never NULL. */
const char* tg_context_last_error(const tg_context* ctx);
tg_status tg_context_num_threads(tg_context* ctx, int32_t* out);
/* Reseeds the context's generator (its stream restarts). */
tg_status tg_context_set_seed(tg_context* ctx, uint64_t seed);
tg_status tg_context_set_log(tg_context* ctx, tg_log_fn log, void* user);

/* ---- tensors ------------------------------------------------------------------------------------------------- */

typedef struct tg_tensor tg_tensor;

typedef int32_t tg_dtype;
enum { TG_FLOAT32 = 0, TG_FLOAT64 = 1, TG_INT32 = 2, TG_INT64 = 3 };
#define TG_MAX_DIMS 8 /* the C API's limit on dimensions (the library has none) */

/* Called once when the library no longer needs a borrowed buffer (see tg_tensor_borrow). */
typedef void (*tg_release_fn)(void* user, void* data);

/* A new tensor of `shape` (ndim entries, 0 <= ndim <= TG_MAX_DIMS, each >= 0) holding a COPY of `data`, whose
 * size must be exactly nbytes = numel * element size. data == NULL (with nbytes 0) gives zeros. */
tg_status tg_tensor_create(tg_context* ctx, tg_dtype dtype, const int64_t* shape, int32_t ndim, const void* data,
                           size_t nbytes, tg_tensor** out);
/* A tensor that uses `data` in place (no copy): the buffer must hold nbytes = numel * element size, be aligned
 * to the element size, stay valid and unchanged until release(user, data) is called (release may be NULL).
 * release is called exactly once, when the last tensor using the buffer is freed: not necessarily by
 * tg_tensor_free of this handle, since results of view-like operations may share it. If this call fails,
 * release is NOT called: the buffer is still the caller's. */
tg_status tg_tensor_borrow(tg_context* ctx, tg_dtype dtype, const int64_t* shape, int32_t ndim, void* data,
                           size_t nbytes, tg_release_fn release, void* user, tg_tensor** out);
tg_status tg_tensor_free(tg_tensor* tensor);

tg_status tg_tensor_dtype(tg_context* ctx, const tg_tensor* tensor, tg_dtype* out);
tg_status tg_tensor_ndim(tg_context* ctx, const tg_tensor* tensor, int32_t* out);
/* Writes the ndim sizes to shape[0..ndim); capacity is the number of entries shape can hold
 * (TG_ERR_BUFFER_TOO_SMALL if below ndim). */
tg_status tg_tensor_shape(tg_context* ctx, const tg_tensor* tensor, int64_t* shape, int32_t capacity);
tg_status tg_tensor_numel(tg_context* ctx, const tg_tensor* tensor, int64_t* out);
/* Copies the elements in row-major order into `out`, converted to `dtype`; nbytes must be at least
 * numel * size of dtype (TG_ERR_BUFFER_TOO_SMALL otherwise). */
tg_status tg_tensor_read(tg_context* ctx, const tg_tensor* tensor, tg_dtype dtype, void* out, size_t nbytes);

/* A handful of operations (new tensors; inputs unchanged). Elementwise ones broadcast like NumPy. */
tg_status tg_tensor_add(tg_context* ctx, const tg_tensor* a, const tg_tensor* b, tg_tensor** out);
tg_status tg_tensor_mul(tg_context* ctx, const tg_tensor* a, const tg_tensor* b, tg_tensor** out);
tg_status tg_tensor_matmul(tg_context* ctx, const tg_tensor* a, const tg_tensor* b, tg_tensor** out);
tg_status tg_tensor_softmax(tg_context* ctx, const tg_tensor* x, int64_t dim, tg_tensor** out);
tg_status tg_tensor_gelu(tg_context* ctx, const tg_tensor* x, tg_tensor** out); /* tanh approximation */
tg_status tg_tensor_sum(tg_context* ctx, const tg_tensor* x, tg_tensor** out);  /* of all elements: shape [] */
/* A tensor of the same elements in another shape (a view when possible: it then shares the data). */
tg_status tg_tensor_reshape(tg_context* ctx, const tg_tensor* x, const int64_t* shape, int32_t ndim,
                            tg_tensor** out);

/* ---- attention on host buffers ---------------------------------------------------------------------------------- */
/* The attention node of tapegrad (docs/attention.md, docs/approximate-attention.md):
 *     O = softmax(scale · Q Kᵀ + M) V        M = −∞ above the diagonal when causal
 * computed exactly (fused kernels) or through the degree-g polynomial of exp (arXiv 2408.13233). All buffers
 * are contiguous [B, H, T, D] of float or double (the dtype argument), B·H·T·D elements each, D in [1, 256]. */

/* TG_ATTENTION_AUTO: approx_backward where it is measured to pay and be accurate, exact elsewhere (each
 * choice is reported to the context's log). */
enum { TG_ATTENTION_EXACT = 0, TG_ATTENTION_APPROX_BACKWARD = 1, TG_ATTENTION_APPROX = 2, TG_ATTENTION_AUTO = 3 };
enum { TG_GRADIENT_CONSISTENT = 0, TG_GRADIENT_PLUGIN = 1 };

typedef struct tg_attention_options {
    uint32_t struct_size; /* sizeof(tg_attention_options); set by tg_attention_options_init */
    int32_t mode;         /* TG_ATTENTION_EXACT (default), _APPROX_BACKWARD (exact forward, polynomial
                             backward) or _APPROX (polynomial forward and its exact gradient) */
    int32_t degree;       /* polynomial degree g of the approximate modes: 2 (default) or 4 */
    int32_t gradient;     /* formula of APPROX_BACKWARD: TG_GRADIENT_CONSISTENT (default) or _PLUGIN */
    int32_t causal;       /* 1 (default): query i sees keys j <= i; 0: every key */
    double scale;         /* 0 (default): 1/sqrt(D) */
} tg_attention_options;

tg_status tg_attention_options_init(tg_attention_options* options);
/* O from Q, K, V. options may be NULL (the defaults). */
tg_status tg_attention_forward(tg_context* ctx, const tg_attention_options* options, tg_dtype dtype, int64_t B,
                               int64_t H, int64_t T, int64_t D, const void* q, const void* k, const void* v,
                               void* o);
/* dQ, dK, dV given dO (the gradient of a loss with respect to O), by the mode's backward rule. The forward pass
 * is recomputed from Q, K, V; o may be NULL, or receives O as a by-product. */
tg_status tg_attention_backward(tg_context* ctx, const tg_attention_options* options, tg_dtype dtype, int64_t B,
                                int64_t H, int64_t T, int64_t D, const void* q, const void* k, const void* v,
                                const void* d_o, void* o, void* dq, void* dk, void* dv);

/* ---- GPT models -------------------------------------------------------------------------------------------------- */

typedef struct tg_gpt tg_gpt;

typedef struct tg_gpt_config {
    uint32_t struct_size;    /* sizeof(tg_gpt_config); set by tg_gpt_config_init */
    int64_t block_size;      /* longest sequence T (default 64) */
    int64_t n_layer;         /* default 2 */
    int64_t n_head;          /* default 2 */
    int64_t n_embd;          /* C, a multiple of n_head (default 64) */
    double dropout;          /* in [0, 1) (default 0) */
    int32_t attention;       /* TG_ATTENTION_* of every layer (default exact) */
    int32_t degree;          /* polynomial degree of the approximate modes (default 2) */
    int32_t qk_layernorm;    /* QK-LayerNorm (default 0) */
    int32_t rope;            /* rotary positions instead of learned ones (default 0) */
    /* The tokenizer, as the "tokenizer" JSON of a checkpoint's config.json (any kind the library reads, e.g.
     * {"kind":"byte","vocab_size":256}); NULL (the default): byte level. The vocabulary size follows from it.
     * When reading a model's config (tg_gpt_get_config), this is NULL: use tg_gpt_vocab_size. */
    const char* tokenizer_json;
} tg_gpt_config;

tg_status tg_gpt_config_init(tg_gpt_config* config);

/* A new model with GPT-2's random initialisation drawn from the context's generator. */
tg_status tg_gpt_create(tg_context* ctx, const tg_gpt_config* config, tg_gpt** out);
/* Loads a checkpoint folder written by `tg-gpt train` or tg_gpt_save (config.json + model.safetensors; when
 * present, optimizer.safetensors and state.json are read by tg_adamw_create). TG_ERR_IO names the problem. */
tg_status tg_gpt_load(tg_context* ctx, const char* dir, tg_gpt** out);
tg_status tg_gpt_free(tg_gpt* model);
/* The model's shape (tokenizer_json is set to NULL). */
tg_status tg_gpt_get_config(tg_context* ctx, const tg_gpt* model, tg_gpt_config* out);
tg_status tg_gpt_vocab_size(tg_context* ctx, const tg_gpt* model, int64_t* out);
/* Optimizer updates the model has had (from its checkpoint, plus tg_gpt_train_step calls). */
tg_status tg_gpt_step(tg_context* ctx, const tg_gpt* model, int64_t* out);

/* Text -> token ids with the model's tokenizer. Writes up to `capacity` ids to `ids` and the number of ids to
 * *count; with ids == NULL only counts. If capacity < the count: TG_ERR_BUFFER_TOO_SMALL, *count set. */
tg_status tg_gpt_tokenize(tg_context* ctx, const tg_gpt* model, const char* text, size_t length, int64_t* ids,
                          size_t capacity, size_t* count);
/* Token ids -> text, NUL-terminated. *length receives the text's length without the NUL; `text` needs
 * *length + 1 bytes (TG_ERR_BUFFER_TOO_SMALL otherwise, *length set; text may be NULL to ask). An id outside
 * [0, vocab) is TG_ERR_INVALID_ARGUMENT. */
tg_status tg_gpt_detokenize(tg_context* ctx, const tg_gpt* model, const int64_t* ids, size_t count, char* text,
                            size_t capacity, size_t* length);

typedef struct tg_sampling_options {
    uint32_t struct_size; /* sizeof(tg_sampling_options); set by tg_sampling_options_init */
    double temperature;   /* > 0 (default 1); lower is greedier */
    int64_t top_k;        /* sample among the k likeliest tokens; 0 (default): all */
    int32_t use_seed;     /* 0 (default): the seed is drawn from the context's generator; 1: `seed` is used */
    uint64_t seed;
} tg_sampling_options;

tg_status tg_sampling_options_init(tg_sampling_options* options);

/* Called with each new token as soon as it is drawn, and the text it completes (whole UTF-8 characters only:
 * may be empty while a character is unfinished; not NUL-terminated). Return 0 to go on, anything else to stop.
 * If bytes of an unfinished character remain after the last token, it is called once more with token -1 and
 * those bytes, so the concatenated texts always equal the detokenized tokens. */
typedef int32_t (*tg_token_fn)(void* user, int64_t token, const char* text, size_t length);

/* Continues `prompt` (prompt_count >= 1 ids; longer than block_size: only its last block_size ids are seen) by
 * up to max_new_tokens tokens. The number of new tokens goes to *out_count (may be NULL) and the first
 * out_capacity of them to `out` (may be NULL). on_token may be NULL. A stop requested by on_token is not an
 * error: the tokens drawn so far are the result. */
tg_status tg_gpt_generate(tg_context* ctx, tg_gpt* model, const int64_t* prompt, size_t prompt_count,
                          int64_t max_new_tokens, const tg_sampling_options* options, tg_token_fn on_token,
                          void* user, int64_t* out, size_t out_capacity, size_t* out_count);

/* Next-token logits (float) for B sequences of T ids (tokens holds B·T ids, row-major; 1 <= T <= block_size):
 * writes B·T·V floats to logits, V = the vocabulary size; capacity is logits' length in floats. */
tg_status tg_gpt_logits(tg_context* ctx, tg_gpt* model, const int64_t* tokens, int64_t B, int64_t T, float* logits,
                        size_t capacity);

/* The log-likelihood of a text under the model, in nats: the sum over its tokens t = 1..n−1 of
 * log p(token t | the tokens before it), the text cut into windows of at most block_size predictions. Its
 * negative divided by *predicted is the mean cross-entropy. Needs a text of at least 2 tokens. */
tg_status tg_gpt_score(tg_context* ctx, tg_gpt* model, const char* text, size_t length, double* log_likelihood,
                       int64_t* predicted);

/* ---- training --------------------------------------------------------------------------------------------------- */

typedef struct tg_optimizer tg_optimizer;

typedef struct tg_adamw_options {
    uint32_t struct_size; /* sizeof(tg_adamw_options); set by tg_adamw_options_init */
    double lr;            /* default 3e-4 */
    double beta1, beta2;  /* default 0.9, 0.999 */
    double eps;           /* default 1e-8 */
    double weight_decay;  /* default 0 */
    double grad_clip;     /* clip the global gradient norm to this; 0: no clipping (default 1) */
} tg_adamw_options;

tg_status tg_adamw_options_init(tg_adamw_options* options);
/* An AdamW optimizer over every parameter of `model`; options may be NULL (the defaults). If the model was
 * loaded from a checkpoint that holds an optimizer state, training resumes from it (moments and step counts). */
tg_status tg_adamw_create(tg_context* ctx, tg_gpt* model, const tg_adamw_options* options, tg_optimizer** out);
tg_status tg_optimizer_free(tg_optimizer* optimizer);
tg_status tg_optimizer_set_lr(tg_context* ctx, tg_optimizer* optimizer, double lr);

/* One optimisation step on B windows of T + 1 ids each (tokens holds B·(T+1) ids, row-major): window b is the
 * input tokens[b][0..T) and the targets tokens[b][1..T]. Forward, backward, clipping, update; the mean
 * cross-entropy before the update goes to *loss (may be NULL). The optimizer must be made for this model. */
tg_status tg_gpt_train_step(tg_context* ctx, tg_gpt* model, tg_optimizer* optimizer, const int64_t* tokens,
                            int64_t B, int64_t T, float* loss);

/* Writes a checkpoint folder that `tg-gpt sample|eval` (and tg_gpt_load) read. With an optimizer, its state is
 * saved for resuming; with NULL, a fresh optimizer state is written. */
tg_status tg_gpt_save(tg_context* ctx, const tg_gpt* model, const tg_optimizer* optimizer, const char* dir);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TAPEGRAD_C_H */
