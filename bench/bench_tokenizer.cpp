// The `tokenizer` suite: byte-level BPE speed on a text corpus (the Debian fortunes by default).
//
//   tg-bench tokenizer [--data PATH] [--tokenizer PATH] [--vocab N] [--threads P] [--json]
//
// Without --tokenizer, a vocabulary of N tokens (default 4096) is trained on the corpus first (one "train"
// record: seconds). Then, each timed as the median of several runs after a warm-up:
//   pretokenize   GPT-2's pattern alone (nn/data/pretokenize.h), one thread
//   encode        the whole corpus, one thread (cache of repeated pieces included, as in real use)
//   encode        the whole corpus on all P threads (parallel chunks, nn/data/bpe.cpp); "same_ids" checks
//                 the ids equal the one-thread ids
//   decode        ids -> text, one thread
// Fields: mb_per_s (corpus megabytes, 10^6 bytes, per wall-clock second), mb_per_s_cpu (per CPU second of
// one thread: process CPU time / threads, see bench.h; on a machine shared with other jobs this is the
// number to quote; with P threads it is the rate of P fully busy threads, so per thread divide by P),
// tokens, bytes_per_token.

#include "bench/bench.h"

#include "core/error.h"
#include "nn/data/bpe.h"
#include "nn/data/bpe_train.h"
#include "nn/data/pretokenize.h"
#include "nn/data/text_corpus.h"
#include "nn/data/tokenizer.h"

#include <tbb/global_control.h>

#include <chrono>

namespace tg::bench {

namespace {

Record rate_record(const std::string& op, int threads, const Timing& t, std::size_t bytes) {
    Record r;
    r.set("suite", "tokenizer");
    r.set("op", op);
    r.set("threads", threads);
    r.set("ms", t.ms);
    r.set("mb_per_s", static_cast<double>(bytes) / 1e6 / (t.ms * 1e-3));
    r.set("mb_per_s_cpu", static_cast<double>(bytes) / 1e6 / (t.cpu_ms * 1e-3));
    return r;
}

}  // namespace

int run_tokenizer(const Args& args, bool json, int threads) {
    const std::string data = args.get("data", data::kDefaultCorpusPath);
    const std::string path = args.get("tokenizer", "");
    const std::int64_t vocab = args.get_int("vocab", 4096);
    if (report_unused(args, "tokenizer")) return 2;

    const data::TextCorpus corpus = data::load_text_corpus(data);
    const std::string& text = corpus.text;
    data::Tokenizer tok;
    if (path.empty()) {
        const auto start = std::chrono::steady_clock::now();
        tok = data::Tokenizer::bpe(data::train_bpe(text, {.vocab_size = vocab}));
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        Record r;
        r.set("suite", "tokenizer");
        r.set("op", "train");
        r.set("vocab", tok.vocab_size());
        r.set("bytes", static_cast<std::int64_t>(text.size()));
        r.set("seconds", seconds);
        emit(r, json);
    } else {
        tok = data::Tokenizer::load(path);
    }

    std::vector<std::int64_t> serial_ids;
    {
        tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
        std::vector<std::string_view> pieces;
        const Timing pre = median_timing([&] {
            pieces.clear();
            data::gpt2_pretokenize(text, pieces);
        }, 1, 1, 3, 0.3, 10);
        emit(rate_record("pretokenize", 1, pre, text.size()).set("pieces", static_cast<std::int64_t>(pieces.size())), json);

        const Timing enc = median_timing([&] { serial_ids = tok.encode(text); }, 1, 1, 3, 0.3, 10);
        emit(rate_record("encode", 1, enc, text.size())
                 .set("vocab", tok.vocab_size())
                 .set("tokens", static_cast<std::int64_t>(serial_ids.size()))
                 .set("bytes_per_token", static_cast<double>(text.size()) / static_cast<double>(serial_ids.size())),
             json);

        std::string back;
        const Timing dec = median_timing([&] { back = tok.decode(serial_ids); }, 1, 1, 3, 0.3, 10);
        if (back != text) throw Error("tg-bench tokenizer: decode(encode(corpus)) differs from the corpus");
        emit(rate_record("decode", 1, dec, text.size()), json);
    }
    std::vector<std::int64_t> ids;
    const Timing par = median_timing([&] { ids = tok.encode(text); }, threads, 1, 3, 0.3, 10);
    emit(rate_record("encode", threads, par, text.size()).set("same_ids", ids == serial_ids), json);
    return ids == serial_ids ? 0 : 1;
}

}  // namespace tg::bench
