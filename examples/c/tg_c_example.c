/*
 * tg-c-example: a host program written in C11 that uses tapegrad only through its C API
 * (include/tapegrad/tapegrad_c.h, guide in docs/embedding.md).
 *
 *   tg-c-example --ckpt DIR --prompt TEXT [--tokens N] [--temperature X] [--top-k K] [--seed S] [--threads P]
 *                [--finetune FILE [--steps N] [--batch B] [--seq T] [--lr LR] [--out DIR]]
 *
 * Loads a checkpoint written by `tg-gpt train` (or by tg_gpt_save), optionally fine-tunes it for a few steps
 * on the text of FILE (printing the loss of each step, and saving the result to --out), then streams a
 * completion of the prompt token by token. Bad arguments or a failing call: a message on stderr, exit 2.
 */
#include <tapegrad/tapegrad_c.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char* ckpt;
    const char* prompt;
    const char* finetune;
    const char* out;
    long long tokens, top_k, steps, batch, seq;
    double temperature, lr;
    unsigned long long seed;
    int threads, has_seed;
} Args;

static int usage(const char* message) {
    fprintf(stderr, "tg-c-example: %s\n"
                    "usage: tg-c-example --ckpt DIR --prompt TEXT [--tokens N] [--temperature X] [--top-k K]\n"
                    "                    [--seed S] [--threads P] [--finetune FILE [--steps N] [--batch B]\n"
                    "                    [--seq T] [--lr LR] [--out DIR]]\n", message);
    return 2;
}

/* A number from argv, or -1 after a message (the caller exits 2). */
static int parse_number(const char* flag, const char* text, double* value) {
    char* end = NULL;
    errno = 0;
    *value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0') {
        fprintf(stderr, "tg-c-example: %s expects a number, got '%s'\n", flag, text);
        return -1;
    }
    return 0;
}

static int is_number_flag(const char* flag) {
    static const char* const flags[] = {"--tokens", "--top-k", "--steps", "--batch", "--seq",
                                        "--temperature", "--lr", "--threads", "--seed"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; ++i) {
        if (strcmp(flag, flags[i]) == 0) return 1;
    }
    return 0;
}

static int parse_args(int argc, char** argv, Args* a) {
    for (int i = 1; i < argc; ++i) {
        const char* flag = argv[i];
        if (i + 1 >= argc) return usage("every option takes a value");
        const char* value = argv[++i];
        double x = 0;
        if (strcmp(flag, "--ckpt") == 0) a->ckpt = value;
        else if (strcmp(flag, "--prompt") == 0) a->prompt = value;
        else if (strcmp(flag, "--finetune") == 0) a->finetune = value;
        else if (strcmp(flag, "--out") == 0) a->out = value;
        else if (!is_number_flag(flag)) {
            fprintf(stderr, "tg-c-example: unknown option %s\n", flag);
            return 2;
        } else if (parse_number(flag, value, &x) != 0) return 2;
        else if (strcmp(flag, "--tokens") == 0) a->tokens = (long long)x;
        else if (strcmp(flag, "--top-k") == 0) a->top_k = (long long)x;
        else if (strcmp(flag, "--steps") == 0) a->steps = (long long)x;
        else if (strcmp(flag, "--batch") == 0) a->batch = (long long)x;
        else if (strcmp(flag, "--seq") == 0) a->seq = (long long)x;
        else if (strcmp(flag, "--temperature") == 0) a->temperature = x;
        else if (strcmp(flag, "--lr") == 0) a->lr = x;
        else if (strcmp(flag, "--threads") == 0) a->threads = (int)x;
        else { /* --seed */
            a->seed = (unsigned long long)x;
            a->has_seed = 1;
        }
    }
    if (a->ckpt == NULL) return usage("--ckpt is required");
    if (a->prompt == NULL) return usage("--prompt is required");
    if (a->tokens < 0 || a->steps < 1 || a->batch < 1 || a->seq < 1 || a->threads < 0) {
        return usage("--tokens must be >= 0; --steps, --batch and --seq >= 1; --threads >= 0");
    }
    return 0;
}

/* The whole file in a malloc'd buffer (NUL-terminated), its size in *size; NULL after a message. */
static char* read_file(const char* path, size_t* size) {
    FILE* f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "tg-c-example: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char* text = NULL;
    size_t used = 0, capacity = 0, got = 0;
    do {
        if (used + 4096 + 1 > capacity) {
            capacity = 2 * capacity + 4096 + 1;
            char* bigger = realloc(text, capacity);
            if (bigger == NULL) {
                free(text);
                fclose(f);
                fprintf(stderr, "tg-c-example: out of memory reading %s\n", path);
                return NULL;
            }
            text = bigger;
        }
        got = fread(text + used, 1, 4096, f);
        used += got;
    } while (got > 0);
    fclose(f);
    text[used] = '\0';
    *size = used;
    return text;
}

/* A failed call: its message, and exit status 2 for main. */
static int fail(tg_context* ctx, const char* what, tg_status status) {
    fprintf(stderr, "tg-c-example: %s failed (%s): %s\n", what, tg_status_name(status), tg_context_last_error(ctx));
    return 2;
}

/* Streams each piece of text as soon as its token is drawn. */
static int32_t print_token(void* user, int64_t token, const char* text, size_t length) {
    (void)user;
    (void)token;
    fwrite(text, 1, length, stdout);
    fflush(stdout);
    return 0; /* go on */
}

/* Fine-tunes on the text of args->finetune: each step takes `batch` windows of seq + 1 tokens at evenly
 * spread starts that shift from step to step, so every step sees other text. */
static int finetune(tg_context* ctx, tg_gpt* model, const Args* a) {
    size_t size = 0;
    char* text = read_file(a->finetune, &size);
    if (text == NULL) return 2;
    size_t count = 0;
    tg_status s = tg_gpt_tokenize(ctx, model, text, size, NULL, 0, &count);
    int64_t* ids = s == TG_OK ? malloc((count > 0 ? count : 1) * sizeof(int64_t)) : NULL;
    if (s == TG_OK && ids == NULL) s = TG_ERR_OOM;
    if (s == TG_OK) s = tg_gpt_tokenize(ctx, model, text, size, ids, count, &count);
    free(text);
    if (s != TG_OK) {
        free(ids);
        return fail(ctx, "tokenizing the fine-tuning text", s);
    }
    const size_t window = (size_t)a->seq + 1;
    if (count < window) {
        free(ids);
        fprintf(stderr, "tg-c-example: %s has %zu tokens, fewer than --seq + 1 = %zu\n", a->finetune, count, window);
        return 2;
    }
    tg_adamw_options opt_options;
    tg_adamw_options_init(&opt_options);
    opt_options.lr = a->lr;
    tg_optimizer* opt = NULL;
    s = tg_adamw_create(ctx, model, &opt_options, &opt);
    int64_t* batch = s == TG_OK ? malloc((size_t)a->batch * window * sizeof(int64_t)) : NULL;
    if (s == TG_OK && batch == NULL) s = TG_ERR_OOM;
    const size_t starts = count - window + 1; /* possible window starts */
    for (long long step = 0; s == TG_OK && step < a->steps; ++step) {
        for (long long b = 0; b < a->batch; ++b) {
            const size_t start = (size_t)((b * (long long)starts / a->batch + step * 7919) % (long long)starts);
            memcpy(batch + (size_t)b * window, ids + start, window * sizeof(int64_t));
        }
        float loss = 0;
        s = tg_gpt_train_step(ctx, model, opt, batch, a->batch, a->seq, &loss);
        if (s == TG_OK) fprintf(stderr, "finetune step %lld/%lld: loss %.4f\n", step + 1, a->steps, loss);
    }
    if (s == TG_OK && a->out != NULL) {
        s = tg_gpt_save(ctx, model, opt, a->out);
        if (s == TG_OK) fprintf(stderr, "saved %s\n", a->out);
    }
    free(batch);
    free(ids);
    tg_optimizer_free(opt);
    return s == TG_OK ? 0 : fail(ctx, "fine-tuning", s);
}

/* Streams a completion of the prompt. */
static int complete(tg_context* ctx, tg_gpt* model, const Args* a) {
    const size_t length = strlen(a->prompt);
    size_t count = 0;
    tg_status s = tg_gpt_tokenize(ctx, model, a->prompt, length, NULL, 0, &count);
    if (s != TG_OK) return fail(ctx, "tokenizing the prompt", s);
    if (count == 0) {
        fprintf(stderr, "tg-c-example: the prompt is empty\n");
        return 2;
    }
    int64_t* prompt = malloc(count * sizeof(int64_t));
    if (prompt == NULL) return fail(ctx, "allocating the prompt", TG_ERR_OOM);
    s = tg_gpt_tokenize(ctx, model, a->prompt, length, prompt, count, &count);
    tg_sampling_options sampling;
    tg_sampling_options_init(&sampling);
    sampling.temperature = a->temperature;
    sampling.top_k = a->top_k;
    sampling.use_seed = a->has_seed;
    sampling.seed = a->seed;
    if (s == TG_OK) {
        fputs(a->prompt, stdout);
        s = tg_gpt_generate(ctx, model, prompt, count, a->tokens, &sampling, print_token, NULL, NULL, 0, NULL);
        fputc('\n', stdout);
    }
    free(prompt);
    return s == TG_OK ? 0 : fail(ctx, "generating", s);
}

int main(int argc, char** argv) {
    Args a = {.tokens = 100, .steps = 10, .batch = 4, .seq = 64, .temperature = 0.8, .lr = 1e-4};
    int status = parse_args(argc, argv, &a);
    if (status != 0) return status;
    if (tg_version() / 100 != TG_API_VERSION / 100) {
        fprintf(stderr, "tg-c-example: built for the C API %d but the library is %d\n", TG_API_VERSION, tg_version());
        return 2;
    }

    tg_context_options options;
    tg_context_options_init(&options);
    options.num_threads = a.threads;
    tg_context* ctx = NULL;
    tg_status s = tg_context_create(&options, &ctx);
    if (s != TG_OK) return fail(NULL, "creating the context", s);

    tg_gpt* model = NULL;
    s = tg_gpt_load(ctx, a.ckpt, &model);
    if (s != TG_OK) status = fail(ctx, "loading the checkpoint", s);
    if (status == 0 && a.finetune != NULL) status = finetune(ctx, model, &a);
    if (status == 0) status = complete(ctx, model, &a);

    tg_gpt_free(model);
    tg_context_free(ctx);
    return status;
}
