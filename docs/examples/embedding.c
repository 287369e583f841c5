/* docs/embedding.md: a complete C host program. It makes a small GPT, trains it for a moment on one
 * sentence, and streams a completion, through the C API alone. Every call returns a status; the check
 * prints the context's last error and gives up. */
#include <tapegrad/tapegrad_c.h>

#include <stdio.h>
#include <string.h>

#define TRY(call) do { tg_status s_ = (call); if (s_ != TG_OK) { \
    fprintf(stderr, "%s: %s\n", tg_status_name(s_), tg_context_last_error(ctx)); return 1; } } while (0)

static int32_t print_piece(void* user, int64_t token, const char* text, size_t length) {
    (void)user; (void)token;
    fwrite(text, 1, length, stdout);
    return 0; /* 0: go on; anything else stops the generation */
}

int main(void) {
    tg_context* ctx = NULL;
    tg_context_options options;
    tg_context_options_init(&options);
    options.num_threads = 2;  /* this context's own threads */
    options.seed = 1;         /* and its own random stream */
    TRY(tg_context_create(&options, &ctx));

    tg_gpt_config config;  /* the defaults: 2 layers, 2 heads, C = 64, T = 64, bytes as tokens */
    tg_gpt_config_init(&config);
    tg_gpt* model = NULL;
    tg_optimizer* opt = NULL;
    TRY(tg_gpt_create(ctx, &config, &model));
    TRY(tg_adamw_create(ctx, model, NULL, &opt));  /* AdamW, lr 3e-4, clipping at 1 */
    TRY(tg_optimizer_set_lr(ctx, opt, 3e-3));

    const char* text = "the cat sat on the mat. the cat sat on the mat. the cat sat on the mat.";
    int64_t ids[128];
    size_t n = 0;
    TRY(tg_gpt_tokenize(ctx, model, text, strlen(text), ids, 128, &n));
    float loss = 0;
    for (int step = 0; step < 60; ++step) {  /* 4 windows of 32 + 1 tokens per step */
        const int64_t T = 32;
        int64_t batch[4 * 33];
        for (int b = 0; b < 4; ++b) memcpy(batch + b * 33, ids + (b * 9 + step) % (n - T), 33 * sizeof(int64_t));
        TRY(tg_gpt_train_step(ctx, model, opt, batch, 4, T, &loss));
    }
    printf("loss after 60 steps: %.3f\nthe cat", loss);
    tg_sampling_options sampling;
    tg_sampling_options_init(&sampling);
    sampling.temperature = 0.5;
    TRY(tg_gpt_generate(ctx, model, ids, 7, 40, &sampling, print_piece, NULL, NULL, 0, NULL));
    printf("\n");

    tg_optimizer_free(opt);
    tg_gpt_free(model);
    tg_context_free(ctx);
    return 0;
}
