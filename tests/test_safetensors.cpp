// safetensors (nn/serialization.cpp): round trips of every dtype and odd shapes, a file built byte by byte
// by hand, one malformed file per reader check (each must give its own message, never crash), and the
// atomicity of save.

#include "nn/serialization.h"

#include "core/ops.h"

#include <doctest/doctest.h>

#include "tests/test_util.h"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <unistd.h>
#include <vector>

using namespace tg;
using namespace tg::testing;

namespace {


// Checks that fn throws an IOError whose message contains `part`.
void check_io_error(const std::function<void()>& fn, const std::string& part) {
    std::string message = "(no exception)";
    bool io_error = false;
    try {
        fn();
    } catch (const IOError& e) {
        message = e.what();
        io_error = true;
    } catch (const Error& e) {
        message = std::string("(not an IOError) ") + e.what();
    }
    CHECK_MESSAGE(io_error, message);
    CHECK_MESSAGE(message.find(part) != std::string::npos, "expected '" << part << "' in: " << message);
}

// A safetensors file from a header string and data bytes: the exact bytes, nothing added.
std::vector<std::uint8_t> file_bytes(const std::string& header, const std::vector<std::uint8_t>& data,
                                     std::uint64_t claimed_length) {
    std::vector<std::uint8_t> bytes(8);
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::uint8_t>(claimed_length >> (8 * i));
    bytes.insert(bytes.end(), header.begin(), header.end());
    bytes.insert(bytes.end(), data.begin(), data.end());
    return bytes;
}
std::vector<std::uint8_t> file_bytes(const std::string& header, const std::vector<std::uint8_t>& data) {
    return file_bytes(header, data, header.size());
}

SafetensorsFile decode(const std::vector<std::uint8_t>& bytes) {
    return decode_safetensors(bytes.data(), bytes.size(), "test.safetensors");
}

// Decoding `header` + `data` must fail with a message starting with the origin and containing `part`.
void check_malformed(const std::string& header, const std::vector<std::uint8_t>& data, const std::string& part) {
    const auto bytes = file_bytes(header, data);
    check_io_error([&] { decode(bytes); }, "safetensors: test.safetensors: ");
    check_io_error([&] { decode(bytes); }, part);
}

// A fresh directory under /tmp, removed at the end of the test.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        path = std::filesystem::temp_directory_path() /
               ("tg-test-safetensors-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    static int& counter() {
        static int n = 0;
        return n;
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

std::vector<std::uint8_t> read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

template <typename T>
void check_same(const Tensor& got, const Tensor& want) {
    REQUIRE(got.dtype() == want.dtype());
    REQUIRE(got.shape() == want.shape());
    // (Empty tensors are skipped: is_contiguous() is currently false for an empty() tensor of shape [2, 0];
    // they hold no bytes either way.)
    if (want.numel() > 0) CHECK(got.is_contiguous());
    CHECK(got.to_vector<T>() == want.to_vector<T>());  // bit-exact: the format stores raw bytes
}

// The tensors of the round-trip tests: every dtype, a 0-d tensor, empty tensors, odd sizes and views.
NamedTensors sample_tensors() {
    Tensor f32 = from_vector<float>({1.5f, -2.25f, 3.0f, 1e-30f, -0.0f, 7.0f, 8.0f}, {7});
    Tensor f64 = from_vector<double>({0.1, 0.2, 0.3, -1e300, 5.0, 6.0}, {2, 3});
    Tensor i32 = from_vector<std::int32_t>({-2147483647 - 1, 0, 2147483647}, {3, 1});
    Tensor i64 = from_vector<std::int64_t>({INT64_MIN, -1, 42, INT64_MAX, 7}, {5});
    Tensor scalar = scalar_tensor(2.5, kFloat64);
    Tensor empty_f32 = zeros({0, 3}, kFloat32);
    Tensor empty_i64 = zeros({2, 0}, kInt64);
    // Non-contiguous inputs: a transpose, and a strided slice of a transposed matrix.
    Tensor base = from_vector<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4});
    Tensor transposed = base.t();                             // [4, 3], strides [1, 4]
    Tensor sliced = base.t().slice(0, 1, 4, 2);               // rows 1 and 3 of the transpose: [2, 3]
    Tensor expanded = from_vector<double>({1.0, 2.0}, {2, 1}).expand({2, 3});  // stride 0
    return {{"f32", f32},           {"f64", f64},           {"i32", i32},         {"i64", i64},
            {"scalar", scalar},     {"empty_f32", empty_f32}, {"empty_i64", empty_i64},
            {"transposed", transposed}, {"sliced", sliced}, {"expanded", expanded}};
}

void check_round_trip(const NamedTensors& want, const SafetensorsFile& got) {
    REQUIRE(got.tensors.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        CAPTURE(want[i].first);
        CHECK(got.tensors[i].first == want[i].first);  // order kept
        dispatch(want[i].second.dtype(), [&](auto tag) {
            using T = decltype(tag);
            check_same<T>(got.tensors[i].second, want[i].second);
        });
    }
}

}  // namespace

TEST_SUITE("safetensors") {

TEST_CASE("round trip in memory: every dtype, 0-d, empty, non-contiguous, metadata") {
    const NamedTensors tensors = sample_tensors();
    const std::map<std::string, std::string> metadata{{"format", "pt"}, {"step", "100"}, {"note", "üñí \"quoted\""}};
    const auto bytes = encode_safetensors(tensors, metadata);
    const SafetensorsFile file = decode(bytes);
    check_round_trip(tensors, file);
    CHECK(file.metadata == metadata);
    CHECK(file.get("scalar").item<double>() == 2.5);
    CHECK(file.get("scalar").dim() == 0);
    CHECK(file.contains("f64"));
    CHECK_FALSE(file.contains("nope"));
}

TEST_CASE("layout: header padded to 8, data gap-free and each tensor aligned to its element size") {
    const NamedTensors tensors = sample_tensors();
    const auto bytes = encode_safetensors(tensors);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<std::size_t>(i)];
    CHECK(n % 8 == 0);
    const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
    CHECK(header.front() == '{');
    CHECK(header.find("__metadata__") == std::string::npos);  // no metadata given, none written
    // Total data = sum of tensor sizes: no padding between tensors (decode checks the coverage too).
    std::size_t data = 0;
    for (const auto& [name, t] : tensors) data += static_cast<std::size_t>(t.numel()) * element_size(t.dtype());
    CHECK(bytes.size() == 8 + n + data);
    // The 8-byte tensors come first: f64 starts at 0, and f32 (4-byte) after all 8-byte ones.
    CHECK(header.find("\"f64\":{\"dtype\":\"F64\",\"shape\":[2,3],\"data_offsets\":[0,48]}") != std::string::npos);
    // Header order is the caller's order.
    CHECK(header.find("\"f32\"") < header.find("\"f64\""));
    CHECK(header.find("\"f64\"") < header.find("\"expanded\""));
}

TEST_CASE("golden bytes: a file built by hand parses as expected") {
    // The header (padded with spaces to a multiple of 8 bytes), then 16 + 4 bytes of data:
    //   "a": int32 [] = 7            at [16, 20)   -- listed first, stored second
    //   "b": float64 [2] = {1, -2}   at [0, 16)
    std::string header =
        R"({"__metadata__":{"k":"v"},"a":{"dtype":"I32","shape":[],"data_offsets":[16,20]},)"
        R"("b":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})";
    header.append((8 - header.size() % 8) % 8, ' ');
    const std::vector<std::uint8_t> data = {
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F,  // 1.0 as little-endian IEEE 754 double
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0,  // -2.0
        0x07, 0x00, 0x00, 0x00,                          // int32 7
    };
    const SafetensorsFile file = decode(file_bytes(header, data));
    REQUIRE(file.tensors.size() == 2);
    CHECK(file.tensors[0].first == "a");  // header order, not data order
    CHECK(file.tensors[1].first == "b");
    CHECK(file.metadata == std::map<std::string, std::string>{{"k", "v"}});
    const Tensor a = file.get("a");
    CHECK(a.dtype() == kInt32);
    CHECK(a.dim() == 0);
    CHECK(a.item<std::int32_t>() == 7);
    const Tensor b = file.get("b");
    CHECK(b.dtype() == kFloat64);
    CHECK(b.shape() == Shape{2});
    CHECK(b.to_vector<double>() == std::vector<double>{1.0, -2.0});
}

TEST_CASE("golden bytes: what encode writes for one small tensor") {
    const auto bytes = encode_safetensors({{"x", from_vector<std::int32_t>({1, 2}, {2})}}, {{"m", "1"}});
    std::string header = R"({"__metadata__":{"m":"1"},"x":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})";
    header.append((8 - header.size() % 8) % 8, ' ');
    const auto want = file_bytes(header, {1, 0, 0, 0, 2, 0, 0, 0});
    CHECK(bytes == want);
}

TEST_CASE("get names the missing tensor and lists the ones present") {
    const SafetensorsFile file = decode(encode_safetensors({{"w", ones({2})}, {"b", zeros({2})}}));
    check_io_error([&] { file.get("bias"); }, "safetensors: test.safetensors: no tensor named 'bias'; the file has 'w', 'b'");
    const SafetensorsFile none = decode(encode_safetensors({}));
    check_io_error([&] { none.get("w"); }, "no tensors");
}

TEST_CASE("malformed files: each check gives its own message") {
    const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    const std::vector<std::uint8_t> eight(8, 0);

    SUBCASE("shorter than the length field") {
        const std::vector<std::uint8_t> bytes = {1, 2, 3};
        check_io_error([&] { decode(bytes); }, "file is 3 bytes long, too short for the 8-byte header length");
    }
    SUBCASE("truncated in the header") {
        auto bytes = file_bytes("{" + ok_entry + "}", eight);
        bytes.resize(20);
        check_io_error([&] { decode(bytes); }, "runs past the end of the file (20 bytes: truncated?)");
    }
    SUBCASE("truncated in the data") {
        auto bytes = file_bytes("{" + ok_entry + "}", eight);
        bytes.resize(bytes.size() - 3);
        check_io_error([&] { decode(bytes); }, "run past the end of the 5-byte data buffer");
    }
    SUBCASE("huge header length") {
        const auto bytes = file_bytes("{}", {}, 0xFFFFFFFFFFFFFFF0ull);
        check_io_error([&] { decode(bytes); }, "is larger than the 100000000-byte limit");
    }
    SUBCASE("not JSON") {
        check_malformed(R"({"t": {"dtype": "F32",, }})", {}, "header is not valid JSON (at byte 23 of the 26-byte header)");
    }
    SUBCASE("a number that overflows a double") {
        // Found by fuzzing (tests/fuzz/corpus/attention_input/number-overflow): nlohmann reports it as
        // out_of_range 406, not as a parse_error, and it escaped the reader as a non-tg exception.
        check_malformed(R"({"t":{"dtype":"F32","shape":[1E342],"data_offsets":[0,8]}})", eight,
                        "header is not valid JSON (58-byte header): [json.exception.out_of_range.406] number overflow");
    }
    SUBCASE("empty header") { check_malformed("", {}, "header is not valid JSON"); }
    SUBCASE("invalid UTF-8") { check_malformed("{\"\xff\":1}", {}, "header is not valid JSON"); }
    SUBCASE("not an object") { check_malformed("[1, 2]", {}, "header is an array, not an object"); }
    SUBCASE("entry not an object") {
        check_malformed(R"({"t": 5})", {}, "tensor 't' is a number, not an object with dtype, shape and data_offsets");
    }
    SUBCASE("missing dtype") {
        check_malformed(R"({"t":{"shape":[2],"data_offsets":[0,8]}})", eight, "tensor 't' has no \"dtype\" field");
    }
    SUBCASE("missing data_offsets") {
        check_malformed(R"({"t":{"dtype":"F32","shape":[2]}})", eight, "tensor 't' has no \"data_offsets\" field");
    }
    SUBCASE("dtype not a string") {
        check_malformed(R"({"t":{"dtype":1,"shape":[2],"data_offsets":[0,8]}})", eight, "dtype is a number, not a string");
    }
    SUBCASE("shape not an array") {
        check_malformed(R"({"t":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", eight, "shape is a number, not an array");
    }
    SUBCASE("data_offsets of the wrong length") {
        check_malformed(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", eight,
                        "data_offsets must be an array [begin, end], not [0]");
    }
    SUBCASE("unknown dtype") {
        check_malformed(R"({"t":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", eight, "unknown dtype \"F33\"");
    }
    SUBCASE("real but unsupported dtypes") {
        check_malformed(R"({"t":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}})", eight,
                        "tensor 't' has unsupported dtype \"BF16\" (tapegrad reads F32, F64, I32 and I64");
        check_malformed(R"({"t":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", eight, "unsupported dtype \"F16\"");
    }
    SUBCASE("negative dimension") {
        check_malformed(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight, "shape[0] is negative: -2");
    }
    SUBCASE("non-integer dimension") {
        check_malformed(R"({"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", eight, "shape[0] is not an integer");
        check_malformed(R"({"t":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", eight, "shape[0] is a string");
    }
    SUBCASE("negative offset") {
        check_malformed(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", eight,
                        "data_offsets begin is negative");
    }
    SUBCASE("shape and size disagree") {
        check_malformed(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight,
                        "data_offsets bytes [0, 8) hold 8 bytes, but shape [3] of F32 needs 12");
    }
    SUBCASE("shape whose byte size overflows") {
        check_malformed(R"({"t":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", eight,
                        "is too large (its byte size overflows 64 bits)");
    }
    SUBCASE("begin after end") {
        check_malformed(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight,
                        "data_offsets begin 8 is after end 0");
    }
    SUBCASE("offsets beyond the data buffer") {
        check_malformed(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", eight,
                        "tensor 't': data_offsets bytes [4, 12) run past the end of the 8-byte data buffer");
    }
    SUBCASE("overlapping ranges") {
        check_malformed(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                        std::vector<std::uint8_t>(12, 0), "tensors 'a' (bytes [0, 8)) and 'b' (bytes [4, 12)) overlap");
    }
    SUBCASE("overlapping ranges listed out of order are still found") {
        check_malformed(R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
                        R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                        R"("c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                        std::vector<std::uint8_t>(12, 0), "tensors 'b' (bytes [4, 12)) and 'c' (bytes [8, 12)) overlap");
    }
    SUBCASE("bytes not covered by any tensor: trailing") {
        check_malformed("{" + ok_entry + "}", std::vector<std::uint8_t>(12, 0),
                        "data buffer of 12 bytes has 4 bytes not covered by any tensor");
    }
    SUBCASE("bytes not covered by any tensor: a gap") {
        check_malformed(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                        std::vector<std::uint8_t>(12, 0), "has 4 bytes not covered by any tensor");
    }
    SUBCASE("metadata not an object") {
        check_malformed(R"({"__metadata__":["x"]})", {}, "__metadata__ is an array, not an object of strings");
    }
    SUBCASE("metadata value not a string") {
        check_malformed(R"({"__metadata__":{"epoch":3}})", {}, "__metadata__ value of \"epoch\" is a number, not a string: 3");
    }
    SUBCASE("duplicate tensor name") {
        check_malformed("{" + ok_entry + "," + ok_entry + "}", std::vector<std::uint8_t>(8, 0),
                        "header has the key \"t\" twice in one object");
    }
    SUBCASE("duplicate field inside an entry") {
        check_malformed(R"({"t":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}})", eight,
                        "header has the key \"dtype\" twice");
    }
    SUBCASE("equal keys in different objects are fine") {
        const std::string header = R"({"__metadata__":{"t":"x"},)" + ok_entry + "}";
        CHECK(decode(file_bytes(header, eight)).tensors.size() == 1);
    }
}

TEST_CASE("writing refuses bad names") {
    CHECK(error_message([] { encode_safetensors({{"w", ones({1})}, {"w", ones({1})}}); }).find(
              "safetensors: duplicate tensor name 'w'") != std::string::npos);
    CHECK(error_message([] { encode_safetensors({{"", ones({1})}}); }).find("empty name") != std::string::npos);
    CHECK(error_message([] { encode_safetensors({{"__metadata__", ones({1})}}); }).find("reserved") != std::string::npos);
    CHECK(error_message([] { encode_safetensors({{"u", Tensor()}}); }).find("tensor 'u' is undefined") != std::string::npos);
    CHECK(error_message([] { encode_safetensors({{"bad\xff", ones({1})}}); }).find("not valid UTF-8") != std::string::npos);
}

TEST_CASE("files: save, load, replace, atomicity") {
    TempDir dir;
    const std::string path = dir.file("model.safetensors");
    const NamedTensors tensors = sample_tensors();

    SUBCASE("round trip through a file, and the file holds exactly encode's bytes") {
        save_safetensors(path, tensors, {{"epoch", "3"}});
        const SafetensorsFile file = load_safetensors(path);
        check_round_trip(tensors, file);
        CHECK(file.metadata.at("epoch") == "3");
        CHECK(file.origin == path);
        CHECK(read_all(path) == encode_safetensors(tensors, {{"epoch", "3"}}));
    }
    SUBCASE("an existing file is replaced whole, and no temporary file is left") {
        save_safetensors(path, tensors);
        save_safetensors(path, {{"only", ones({2}, kFloat64)}});
        const SafetensorsFile file = load_safetensors(path);
        REQUIRE(file.tensors.size() == 1);
        CHECK(file.get("only").to_vector<double>() == std::vector<double>{1.0, 1.0});
        CHECK(read_all(path) == encode_safetensors({{"only", ones({2}, kFloat64)}}));
        int entries = 0;
        for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path)) ++entries;
        CHECK(entries == 1);
    }
    SUBCASE("saving into a missing directory throws, names the path and errno, and leaves nothing") {
        const std::string bad = dir.file("no/such/dir/model.safetensors");
        check_io_error([&] { save_safetensors(bad, tensors); }, "safetensors: " + bad + ": cannot create temporary file");
        check_io_error([&] { save_safetensors(bad, tensors); }, "No such file or directory");
        CHECK_FALSE(std::filesystem::exists(dir.path / "no"));
        int entries = 0;
        for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path)) ++entries;
        CHECK(entries == 0);
    }
    SUBCASE("a failed save leaves the old file untouched") {
        save_safetensors(path, tensors);
        const auto before = read_all(path);
        CHECK_THROWS_AS(save_safetensors(path, {{"w", ones({1})}, {"w", ones({1})}}), ValueError);
        CHECK(read_all(path) == before);
    }
    SUBCASE("loading a missing file") {
        check_io_error([&] { load_safetensors(dir.file("missing.safetensors")); },
                       "safetensors: " + dir.file("missing.safetensors") + ": cannot open: No such file or directory");
    }
    SUBCASE("loading a directory") {
        check_io_error([&] { load_safetensors(dir.path.string()); }, "not a regular file");
    }
    SUBCASE("loading malformed files reports the same checks as decoding") {
        write_all(path, {1, 2});
        check_io_error([&] { load_safetensors(path); }, "safetensors: " + path + ": file is 2 bytes long");
        auto bytes = encode_safetensors(tensors);
        bytes.pop_back();  // truncated in the data
        write_all(path, bytes);
        check_io_error([&] { load_safetensors(path); }, "run past the end of the");
        bytes = encode_safetensors(tensors);
        bytes.resize(40);  // truncated in the header
        write_all(path, bytes);
        check_io_error([&] { load_safetensors(path); }, "runs past the end of the file (40 bytes: truncated?)");
    }
}

}  // TEST_SUITE
