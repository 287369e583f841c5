/*
 * The C API from C: this file is compiled as C11 with -Wall -Wextra -pedantic -Werror (tests/capi/meson.build),
 * which checks that the header is plain C, and runs a short life cycle through it with deliberate misuse at
 * every step. The thorough checks are in tests/test_capi.cpp; this one proves a C compiler and linker are
 * enough. Prints one line per failed check and exits 1 if any failed.
 */
#include <tapegrad/tapegrad_c.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                     \
        }                                                                   \
    } while (0)

static int released = 0;
static void on_release(void* user, void* data) {
    (void)data;
    *(int*)user += 1;
}

static int32_t stop_at_five(void* user, int64_t token, const char* text, size_t length) {
    (void)text;
    (void)length;
    int* seen = (int*)user;
    if (token >= 0) *seen += 1;
    return *seen >= 5;
}

int main(int argc, char** argv) {
    const char* dir = argc > 1 ? argv[1] : "tg-capi-c-test-checkpoint";
    CHECK(tg_version() == TG_API_VERSION);

    /* context */
    tg_context_options options;
    CHECK(tg_context_options_init(&options) == TG_OK);
    options.num_threads = 2;
    options.seed = 42;
    tg_context* ctx = NULL;
    CHECK(tg_context_create(&options, &ctx) == TG_OK);
    CHECK(tg_context_create(&options, NULL) == TG_ERR_INVALID_ARGUMENT);
    CHECK(strlen(tg_context_last_error(NULL)) > 0);

    /* tensors: copy, borrow, read back, misuse */
    const float values[6] = {1, 2, 3, 4, 5, 6};
    const int64_t shape[2] = {2, 3};
    tg_tensor* a = NULL;
    CHECK(tg_tensor_create(ctx, TG_FLOAT32, shape, 2, values, sizeof values, &a) == TG_OK);
    CHECK(tg_tensor_create(ctx, TG_FLOAT32, shape, 2, values, 5, &a) == TG_ERR_SHAPE);
    CHECK(strstr(tg_context_last_error(ctx), "tg_tensor_create") == tg_context_last_error(ctx));
    CHECK(tg_tensor_create(NULL, TG_FLOAT32, shape, 2, values, sizeof values, &a) == TG_ERR_INVALID_ARGUMENT);
    float* buffer = malloc(sizeof values);
    memcpy(buffer, values, sizeof values);
    tg_tensor* b = NULL;
    CHECK(tg_tensor_borrow(ctx, TG_FLOAT32, shape, 2, buffer, sizeof values, on_release, &released, &b) == TG_OK);
    tg_tensor* sum = NULL;
    CHECK(tg_tensor_add(ctx, a, b, &sum) == TG_OK);
    float out[6] = {0};
    CHECK(tg_tensor_read(ctx, sum, TG_FLOAT32, out, sizeof out) == TG_OK);
    CHECK(out[5] == 12.0f);
    CHECK(tg_tensor_read(ctx, sum, TG_FLOAT32, out, 3) == TG_ERR_BUFFER_TOO_SMALL);
    tg_tensor_free(b);
    CHECK(released == 1);
    free(buffer);
    tg_tensor_free(sum);
    tg_tensor_free(a);

    /* attention: exact and approximate backward differ a little */
    enum { B = 1, H = 1, T = 6, D = 4, N = B * H * T * D };
    double q[N], k[N], v[N], d_o[N], o[N], dq[N], dk[N], dv[N], dq2[N];
    for (int i = 0; i < N; ++i) {
        q[i] = sin(i * 0.7);
        k[i] = cos(i * 0.3);
        v[i] = sin(i * 1.3 + 0.5);
        d_o[i] = cos(i * 0.9);
    }
    tg_attention_options att;
    CHECK(tg_attention_options_init(&att) == TG_OK);
    CHECK(tg_attention_forward(ctx, &att, TG_FLOAT64, B, H, T, D, q, k, v, o) == TG_OK);
    CHECK(fabs(o[0] - v[0]) < 1e-12); /* causal: the first query sees only the first key */
    CHECK(tg_attention_backward(ctx, &att, TG_FLOAT64, B, H, T, D, q, k, v, d_o, NULL, dq, dk, dv) == TG_OK);
    att.mode = TG_ATTENTION_APPROX_BACKWARD;
    CHECK(tg_attention_backward(ctx, &att, TG_FLOAT64, B, H, T, D, q, k, v, d_o, NULL, dq2, dk, dv) == TG_OK);
    double diff = 0;
    for (int i = 0; i < N; ++i) diff += fabs(dq[i] - dq2[i]);
    CHECK(diff > 0 && diff < 1.0);
    CHECK(tg_attention_forward(ctx, &att, TG_FLOAT64, B, H, T, 0, q, k, v, o) == TG_ERR_SHAPE);

    /* a GPT: create, train a few steps, save, load, generate with a callback that stops */
    tg_gpt_config config;
    CHECK(tg_gpt_config_init(&config) == TG_OK);
    config.block_size = 16;
    config.n_layer = 1;
    config.n_head = 2;
    config.n_embd = 16;
    tg_gpt* model = NULL;
    CHECK(tg_gpt_create(ctx, &config, &model) == TG_OK);
    tg_optimizer* opt = NULL;
    tg_adamw_options adamw;
    CHECK(tg_adamw_options_init(&adamw) == TG_OK);
    adamw.lr = 1e-2;
    CHECK(tg_adamw_create(ctx, model, &adamw, &opt) == TG_OK);
    const char* text = "abcabcabcabcabcabcabcabcabcabcabcabcabc";
    int64_t ids[64];
    size_t count = 0;
    CHECK(tg_gpt_tokenize(ctx, model, text, strlen(text), ids, 64, &count) == TG_OK);
    CHECK(count == strlen(text));
    float first = 0, loss = 0;
    for (int step = 0; step < 20; ++step) {
        CHECK(tg_gpt_train_step(ctx, model, opt, ids + step % 3, 2, 8, &loss) == TG_OK);
        if (step == 0) first = loss;
    }
    CHECK(loss < first);
    CHECK(tg_gpt_train_step(ctx, model, opt, ids, 2, 99, &loss) == TG_ERR_SHAPE);
    CHECK(tg_gpt_save(ctx, model, opt, dir) == TG_OK);
    tg_optimizer_free(opt);
    tg_gpt_free(model);

    model = NULL;
    CHECK(tg_gpt_load(ctx, "/no/such/checkpoint", &model) == TG_ERR_IO);
    CHECK(tg_gpt_load(ctx, dir, &model) == TG_OK);
    int64_t step = 0;
    CHECK(tg_gpt_step(ctx, model, &step) == TG_OK);
    CHECK(step == 20);
    int seen = 0;
    int64_t generated[32];
    size_t n = 0;
    CHECK(tg_gpt_generate(ctx, model, ids, 3, 30, NULL, stop_at_five, &seen, generated, 32, &n) == TG_OK);
    CHECK(n == 5 && seen == 5);
    char completion[64];
    size_t length = 0;
    CHECK(tg_gpt_detokenize(ctx, model, generated, n, completion, sizeof completion, &length) == TG_OK);
    CHECK(length == 5);
    double ll = 0;
    int64_t predicted = 0;
    CHECK(tg_gpt_score(ctx, model, text, strlen(text), &ll, &predicted) == TG_OK);
    CHECK(ll < 0 && predicted == (int64_t)strlen(text) - 1);
    CHECK(tg_gpt_generate(ctx, NULL, ids, 3, 30, NULL, NULL, NULL, NULL, 0, NULL) == TG_ERR_INVALID_ARGUMENT);
    tg_gpt_free(model);
    tg_context_free(ctx);

    if (failures > 0) {
        fprintf(stderr, "test_capi_c: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_capi_c: all checks passed (completion after training: \"%s\")\n", completion);
    return 0;
}
