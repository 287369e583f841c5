// Token shards and the memory-mapped data path (nn/data/token_shard, token_source, bits_per_byte;
// core/mapped_file, core/file_io's AtomicFileWriter): the file format round trip at both widths, every way a
// file can be wrong (truncated, padded, foreign, another version, another tokenizer, ids out of range), the
// mapped loader giving exactly the batches of the in-memory path (also across a saved and restored state),
// errors of the background loader reaching the caller, and bits per byte on a case checked by hand.

#include "core/file_io.h"
#include "core/mapped_file.h"
#include "nn/data/bits_per_byte.h"
#include "nn/data/text_batches.h"
#include "nn/data/token_shard.h"
#include "nn/data/token_source.h"
#include "nn/data/tokenizer.h"

#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>
#include <vector>

using namespace tg;
using namespace tg::data;
using namespace tg::testing;

namespace {

namespace fs = std::filesystem;

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Pseudo-random ids in [0, vocab): a fixed linear congruential sequence, so the test needs no RNG state.
std::vector<std::int64_t> some_ids(std::int64_t n, std::int64_t vocab) {
    std::vector<std::int64_t> ids;
    std::uint64_t x = 12345;
    for (std::int64_t i = 0; i < n; ++i) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        ids.push_back(static_cast<std::int64_t>((x >> 33) % static_cast<std::uint64_t>(vocab)));
    }
    return ids;
}

std::vector<std::int64_t> ids_of(const Tensor& t) { return t.to_vector<std::int64_t>(); }

bool same_batch(const TextBatch& a, const TextBatch& b) {
    return a.x.shape() == b.x.shape() && ids_of(a.x) == ids_of(b.x) && ids_of(a.y) == ids_of(b.y);
}

}  // namespace

TEST_SUITE("token_shard") {
TEST_CASE("atomic writer: pieces, a rewritten header, nothing left behind without commit") {
    ScratchDir dir("token-shard-writer");
    const std::string path = dir.file("out.bin");
    {
        AtomicFileWriter out(path, "test file");
        out.write("xxxxBODY", 8);
        out.rewrite_start("HEAD", 4);
        out.write("!", 1);
        CHECK(!fs::exists(path));  // nothing at `path` until commit
        out.commit();
    }
    CHECK(read_bytes(path) == "HEADBODY!");
    {
        AtomicFileWriter out(path, "test file");
        out.write("new", 3);
    }  // destroyed without commit: the old file stays, no temporary is left
    CHECK(read_bytes(path) == "HEADBODY!");
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
    AtomicFileWriter short_file(path, "test file");
    check_throws<IOError>([&] { short_file.rewrite_start("12345", 5); }, {"test file", "only 0 written"});
}

TEST_CASE("shard round trip: uint16 up to a vocabulary of 65,536, uint32 above") {
    ScratchDir dir("token-shard-roundtrip");
    for (const std::int64_t vocab : {std::int64_t{256}, std::int64_t{65536}, std::int64_t{65537}, std::int64_t{100000}}) {
        CAPTURE(vocab);
        std::vector<std::int64_t> ids = some_ids(1001, vocab);
        ids[500] = vocab - 1;  // the largest id fits
        const std::string path = dir.file("vocab" + std::to_string(vocab));  // (GCC 12 warns falsely on "v" + ...)
        write_token_shard(path, TokenSource(ids), vocab, 0xABCDEF);
        const std::uint32_t width = vocab <= 65536 ? 2 : 4;
        CHECK(fs::file_size(path) == kTokenShardHeaderBytes + 1001 * width);
        CHECK(read_bytes(path).substr(0, 8) == "TGTOKENS");

        const TokenShard shard = open_token_shard(path);
        CHECK(shard.info.bytes_per_token == width);
        CHECK(shard.info.count == 1001);
        CHECK(shard.info.vocab_size == vocab);
        CHECK(shard.info.max_id == vocab - 1);
        CHECK(shard.info.tokenizer_fingerprint == 0xABCDEF);
        CHECK(shard.tokens.storage() == (width == 2 ? TokenSource::Storage::UInt16 : TokenSource::Storage::UInt32));
        CHECK(shard.tokens.to_vector() == ids);
        CHECK(shard.tokens.slice(10, 20).to_vector() == std::vector<std::int64_t>(ids.begin() + 10, ids.begin() + 20));
    }
    // An empty shard is a valid file (a tiny corpus's validation split may be empty).
    write_token_shard(dir.file("empty.bin"), TokenSource(std::vector<std::int64_t>{}), 256, 0);
    CHECK(open_token_shard(dir.file("empty.bin")).tokens.size() == 0);
}

TEST_CASE("shard errors: missing, truncated, padded, foreign, another version, ids out of range") {
    ScratchDir dir("token-shard-errors");
    const std::string good = dir.file("good.bin");
    write_token_shard(good, TokenSource(some_ids(100, 300)), 300, 7);
    const std::string bytes = read_bytes(good);
    const std::string bad = dir.file("bad.bin");

    check_throws<IOError>([&] { open_token_shard(dir.file("missing.bin")); }, {"missing.bin", "cannot open"});

    write_bytes(bad, bytes.substr(0, bytes.size() - 1));
    check_throws<IOError>([&] { open_token_shard(bad); }, {"bad.bin", "100 tokens of 2 bytes", "truncated"});
    write_bytes(bad, bytes + "xy");
    check_throws<IOError>([&] { open_token_shard(bad); }, {"extra bytes at the end"});
    write_bytes(bad, bytes.substr(0, 20));
    check_throws<IOError>([&] { open_token_shard(bad); }, {"20 bytes, shorter than the 64-byte header"});

    std::string foreign = bytes;
    const std::int32_t llmc_magic = 20240520;  // llm.c's .bin header starts with this int32
    std::memcpy(foreign.data(), &llmc_magic, 4);
    write_bytes(bad, foreign);
    check_throws<IOError>([&] { open_token_shard(bad); }, {"not a tapegrad token shard", "\\x", "tg-gpt prepare"});

    std::string v2 = bytes;
    v2[8] = 2;
    write_bytes(bad, v2);
    check_throws<IOError>([&] { open_token_shard(bad); }, {"version 2", "reads version 1"});

    std::string width3 = bytes;
    width3[12] = 3;
    write_bytes(bad, width3);
    check_throws<IOError>([&] { open_token_shard(bad); }, {"3 bytes per token"});

    std::string wide_vocab = bytes;  // vocab 70,000 needs uint32 ids, but the file says 2 bytes
    const std::uint64_t v70k = 70000;
    std::memcpy(wide_vocab.data() + 24, &v70k, 8);
    write_bytes(bad, wide_vocab);
    check_throws<IOError>([&] { open_token_shard(bad); }, {"vocabulary size 70000 does not fit 2-byte tokens"});

    std::string big_max = bytes;  // the header's largest id outside the vocabulary
    const std::uint64_t max_id = 300;
    std::memcpy(big_max.data() + 32, &max_id, 8);
    write_bytes(bad, big_max);
    check_throws<IOError>([&] { open_token_shard(bad); }, {"largest token id 300", "vocabulary of 300"});

    // An id corrupted in the body (the header still says all is well): caught when its window is read.
    std::string corrupt = bytes;
    const std::uint16_t evil = 65535;
    std::memcpy(corrupt.data() + kTokenShardHeaderBytes + 2 * 42, &evil, 2);
    write_bytes(bad, corrupt);
    const TokenShard shard = open_token_shard(bad);
    std::vector<std::int64_t> window(10);
    shard.tokens.read(0, 10, window.data());  // windows without the bad id are fine
    check_throws<IndexError>([&] { shard.tokens.read(40, 10, window.data()); },
                             {"bad.bin", "token id 65535 at position 42", "vocabulary of 300"});
    check_throws<IndexError>([&] { shard.tokens.slice(40, 50).at(2); }, {"at position 42"});
    check_throws<IndexError>([&] { shard.tokens.read(95, 10, window.data()); }, {"[95, 105)", "100 ids"});

    // The writer refuses ids outside the vocabulary and leaves no file.
    check_throws<ValueError>([&] { write_token_shard(dir.file("w.bin"), TokenSource(std::vector<std::int64_t>{1, 300}), 300, 0); },
                             {"token id 300 at position 1", "[0, 300)"});
    check_throws<ValueError>([&] { write_token_shard(dir.file("w.bin"), TokenSource(std::vector<std::int64_t>{-1}), 300, 0); },
                             {"token id -1"});
    CHECK(!fs::exists(dir.file("w.bin")));
}

TEST_CASE("a shard is checked against the run's tokenizer: vocabulary size and fingerprint") {
    ScratchDir dir("token-shard-match");
    const Tokenizer byte = Tokenizer::byte_level();
    const Tokenizer chars = Tokenizer::character_level("abc");  // vocab 4
    const Tokenizer other_chars = Tokenizer::character_level("xyz");  // also 4, other characters
    write_token_shard(dir.file("c.bin"), TokenSource(chars.encode("abcab")), chars.vocab_size(),
                      tokenizer_fingerprint(chars));
    const TokenShardInfo info = open_token_shard(dir.file("c.bin")).info;
    check_shard_matches(info, chars);
    check_throws<ValueError>([&] { check_shard_matches(info, byte); }, {"vocabulary size 4", "(byte) has 256"});
    check_throws<ValueError>([&] { check_shard_matches(info, other_chars); }, {"fingerprint", "another tokenizer"});
    CHECK(tokenizer_fingerprint(chars) == fnv1a64(chars.to_json()));
    CHECK(fnv1a64("") == 14695981039346656037ULL);
    CHECK(fnv1a64("a") == 0xaf63dc4c8601ec8cULL);  // the published FNV-1a 64 test vector
}

TEST_CASE("the mapped loader gives exactly the batches of the in-memory path") {
    ScratchDir dir("token-shard-equivalence");
    const std::vector<std::int64_t> ids = some_ids(20000, 1000);
    write_token_shard(dir.file("all.bin"), TokenSource(ids), 1000, 0);
    const TokenShard shard = open_token_shard(dir.file("all.bin"));

    const TokenSourceSplit mapped = split_train_validation(shard.tokens, 0.1);
    const TokenSplit memory = split_train_validation(ids, 0.1);
    CHECK(mapped.train.to_vector() == memory.train);
    CHECK(mapped.validation.to_vector() == memory.validation);

    RandomWindows from_vector(std::make_shared<const std::vector<std::int64_t>>(memory.train), 4, 64, 9);
    BatchLoader from_file(RandomWindows(mapped.train, 4, 64, 9));
    for (int i = 0; i < 25; ++i) CHECK(same_batch(from_file.next(), from_vector.next()));

    const auto val_memory = evenly_spaced_batches(memory.validation, 3, 50, 4);
    const auto val_mapped = evenly_spaced_batches(mapped.validation, 3, 50, 4);
    REQUIRE(val_mapped.size() == val_memory.size());
    for (std::size_t i = 0; i < val_memory.size(); ++i) CHECK(same_batch(val_mapped[i], val_memory[i]));
}

TEST_CASE("resume from a mapped shard: a restored loader state replays the batches exactly") {
    ScratchDir dir("token-shard-resume");
    write_token_shard(dir.file("train.bin"), TokenSource(some_ids(8000, 50000)), 50000, 0);
    std::vector<TextBatch> reference;
    GeneratorState saved;
    {
        BatchLoader loader(RandomWindows(open_token_shard(dir.file("train.bin")).tokens, 2, 16, 5));
        for (int i = 0; i < 12; ++i) {
            if (i == 7) saved = loader.state();
            reference.push_back(loader.next());
        }
    }
    // A new process would reopen the file: the same windows follow from the saved state.
    BatchLoader resumed(RandomWindows(open_token_shard(dir.file("train.bin")).tokens, 2, 16, 5));
    resumed.set_state(saved);
    for (int i = 7; i < 12; ++i) CHECK(same_batch(resumed.next(), reference[static_cast<std::size_t>(i)]));
}

TEST_CASE("an error in the background loader reaches the caller of next()") {
    ScratchDir dir("token-shard-loader-error");
    std::vector<std::int64_t> ids(200, 1);
    write_token_shard(dir.file("t.bin"), TokenSource(ids), 256, 0);
    std::string bytes = read_bytes(dir.file("t.bin"));
    for (std::size_t i = kTokenShardHeaderBytes; i < bytes.size(); i += 2) bytes[i + 1] = 0x7F;  // every id >= 256
    write_bytes(dir.file("t.bin"), bytes);
    BatchLoader loader(RandomWindows(open_token_shard(dir.file("t.bin")).tokens, 2, 8, 0));
    check_throws<IndexError>([&] { loader.next(); }, {"t.bin", "outside the vocabulary of 256"});
}

TEST_CASE("mapped pages are released after release_every bytes, and read again correctly") {
    ScratchDir dir("token-shard-release");
    const std::vector<std::int64_t> ids = some_ids(100000, 60000);
    write_token_shard(dir.file("t.bin"), TokenSource(ids), 60000, 0);
    // A shard opened through a MappedFile with a tiny release budget: every read releases the pages.
    auto file = std::make_shared<const MappedFile>(dir.file("t.bin"), /*release_every=*/4096);
    const TokenSource tokens(file, kTokenShardHeaderBytes, TokenSource::Storage::UInt16, 100000, 60000);
    std::vector<std::int64_t> window(3000);
    for (std::int64_t start : {0, 50000, 97000, 0}) {
        tokens.read(start, 3000, window.data());
        CHECK(std::equal(window.begin(), window.end(), ids.begin() + start));
    }
    check_throws<IOError>([&] { MappedFile(dir.path.string()); }, {"not a regular file"});
}

TEST_CASE("bits per byte: total nats over the target bytes, in bits") {
    // Byte level: one byte per token, so bpb = L / ln 2.
    CHECK(bits_per_byte(std::log(2.0), 10, 10) == doctest::Approx(1.0));
    // Hand-checked: the 4 targets b, é, a, é decode to 1 + 2 + 1 + 2 = 6 bytes; a loss of 1.5 nats per token is
    // 6 nats in all, and 6 nats / (ln 2 · 6 bytes) = 1 / ln 2 = 1.442695 bits per byte.
    const Tokenizer tok = Tokenizer::character_level("abé");  // ids: 0 unknown (U+FFFD, 3 bytes), a, b, é (2 bytes)
    const std::vector<std::int64_t> lengths = token_byte_lengths(tok);
    CHECK(lengths == std::vector<std::int64_t>{3, 1, 1, 2});
    TextBatch batch{from_data(std::vector<std::int64_t>{1, 2, 3, 1}.data(), {2, 2}),
                    from_data(std::vector<std::int64_t>{2, 3, 1, 3}.data(), {2, 2})};  // targets: b é a é = 6 bytes
    CHECK(target_bytes({batch}, lengths) == 6);
    CHECK(bits_per_byte(1.5, 4, 6) == doctest::Approx(6.0 / (std::log(2.0) * 6.0)));
    CHECK(bits_per_byte(1.5, 4, 6) == doctest::Approx(1.442695).epsilon(1e-6));
    check_throws<ValueError>([] { bits_per_byte(1.0, 4, 0); }, {"bytes must be > 0"});
    TextBatch bad{batch.x, from_data(std::vector<std::int64_t>{9}.data(), {1, 1})};
    check_throws<IndexError>([&] { target_bytes({bad}, lengths); }, {"token id 9"});
}

}  // TEST_SUITE

namespace {

// Resident kB of the mappings of `path` in this process (/proc/self/smaps).
long resident_kb_of_mapping(const std::string& path) {
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    bool in_file = false;
    long kb = 0;
    while (std::getline(smaps, line)) {
        if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') != std::string::npos &&
            line.find(':') > line.find(' ')) {
            in_file = line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0;
        } else if (in_file && line.rfind("Rss:", 0) == 0) {
            kb += std::stol(line.substr(4));
        }
    }
    return kb;
}

}  // namespace

TEST_CASE("random windows of a large mapped shard keep only a few MB resident") {
    // A 64 MB shard, just written (so its pages sit in the page cache, where Linux may keep them as large
    // folios: one fault maps up to 2 MiB). 3,000 random windows of 257 ids touch pages all over it; the source
    // must hand them back as it goes (MappedFile::note_read) instead of keeping the whole file mapped.
    ScratchDir dir("token-shard-resident");
    const std::int64_t n = 32 << 20;
    {
        TokenShardWriter w(dir.file("big.bin"), 65536, 0);
        std::vector<std::int64_t> ids(1 << 20);
        for (std::int64_t start = 0; start < n; start += static_cast<std::int64_t>(ids.size())) {
            for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = (start + static_cast<std::int64_t>(i)) & 0xFFFF;
            w.append(ids);
        }
        w.commit();
    }
    const std::string path = std::filesystem::canonical(dir.file("big.bin")).string();
    std::uint64_t x = 88172645463325252ULL;  // xorshift64: positions all over the file
    const auto next_start = [&] {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        return static_cast<std::int64_t>(x % static_cast<std::uint64_t>(n - 257));
    };
    long kept = 0;
    {   // The control: the same reads through a mapping that never lets go (and proof the measure sees pages).
        const MappedFile file(path, /*release_every=*/0);
        long sum = 0;
        for (int i = 0; i < 3000; ++i) sum += static_cast<long>(file.data()[64 + 2 * next_start()]);
        CHECK(sum >= 0);
        kept = resident_kb_of_mapping(path);
    }
    x = 88172645463325252ULL;
    const TokenShard shard = open_token_shard(path);
    std::vector<std::int64_t> window(257);
    for (int i = 0; i < 3000; ++i) {
        const std::int64_t start = next_start();
        shard.tokens.read(start, 257, window.data());
        REQUIRE(window[0] == (start & 0xFFFF));
    }
    const long kb = resident_kb_of_mapping(path);
    INFO("resident: " << kb << " kB of the 64 MB shard (" << kept << " kB without releasing)");
    CHECK(kept >= 32 * 1024);  // 3,000 random faults map at least half of the file's pages
    CHECK(kb <= 16 * 1024);    // MappedFile's 8 MiB release budget plus the last reads' folios
}
