// safetensors reading and writing; the format and the checks are described in nn/serialization.h.
//
// Reading never trusts the file: the header is parsed and every entry checked against the real size of the
// data buffer (with overflow-checked arithmetic) before a single tensor byte is copied, so a corrupt or
// hostile file produces an IOError, never an out-of-bounds read or a huge allocation.

#include "nn/serialization.h"
#include "nn/safetensors_read.h"

#include "core/file_io.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <set>
#include <sys/stat.h>

namespace tg {

// The data buffer holds elements in the machine's byte order, which the format fixes as little-endian.
static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; a big-endian port must byte-swap in encode/decode");

namespace {

// ordered_json keeps the header's keys in file order, which is how load_safetensors keeps tensor order.
using json = nlohmann::ordered_json;

constexpr std::uint64_t kLengthBytes = 8;               // the u64 header length at the start of the file
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's MAX_HEADER_SIZE

struct DTypeCode {
    const char* code;
    DType dtype;
};
constexpr DTypeCode kDTypeCodes[] = {{"F32", kFloat32}, {"F64", kFloat64}, {"I32", kInt32}, {"I64", kInt64}};

// safetensors dtypes that exist but that tapegrad has no type for; named separately in the error so a user
// knows the file is fine and only needs converting.
constexpr const char* kForeignDTypes[] = {"BOOL", "U8",   "I8",      "U16",     "I16",     "F16",    "BF16", "U32",
                                          "U64",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"};

const char* code_of(DType dtype) {
    for (const auto& c : kDTypeCodes)
        if (c.dtype == dtype) return c.code;
    return "?";  // unreachable: every DType has a code
}

[[noreturn]] void fail(const std::string& origin, const std::string& message) {
    throw IOError("safetensors: " + origin + ": " + message);
}

// A JSON value shown in an error message, cut short if long.
std::string show(const json& value) {
    std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    return text;
}

// "a number", "an array", ... for messages like "shape is a number, not an array".
std::string a_type(const json& value) {
    const std::string name = value.type_name();
    if (name == "null") return "null";
    return (name == "array" || name == "object" ? "an " : "a ") + name;
}

std::string range_text(std::uint64_t begin, std::uint64_t end) {
    return "bytes [" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

// How a tensor's elements are stored in the file when that differs from its tapegrad dtype: 16-bit floats,
// read only with SafetensorsReadOptions::widen_half_to_float32 and widened to float32 on load.
enum class Half { None, F16, BF16 };

// One tensor entry of the header, checked.
struct Entry {
    std::string name;
    std::string code;           // the dtype as the file spells it ("F32", "BF16", ...)
    DType dtype = kFloat32;     // the dtype of the loaded tensor
    Half half = Half::None;     // F16/BF16 in the file, widened to float32 (dtype) on load
    Shape shape;
    std::uint64_t begin = 0;  // [begin, end) within the data buffer
    std::uint64_t end = 0;
};

struct Header {
    std::vector<Entry> entries;  // in header order
    std::map<std::string, std::string> metadata;
};

std::uint64_t read_u64_le(const std::uint8_t* p) {
    std::uint64_t value = 0;
    for (int i = 7; i >= 0; --i) value = (value << 8) | p[i];
    return value;
}

void write_u64_le(std::uint8_t* p, std::uint64_t value) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(value >> (8 * i));
}

// N from the first 8 bytes, checked against the file size.
std::uint64_t check_header_length(const std::uint8_t* prefix, std::uint64_t file_size, const std::string& origin) {
    if (file_size < kLengthBytes) {
        fail(origin, "file is " + std::to_string(file_size) +
                         " bytes long, too short for the 8-byte header length (truncated or not a safetensors file)");
    }
    const std::uint64_t n = read_u64_le(prefix);
    if (n > kMaxHeaderBytes) {
        fail(origin, "header length " + std::to_string(n) + " is larger than the " + std::to_string(kMaxHeaderBytes) +
                         "-byte limit (corrupt, or not a safetensors file)");
    }
    if (n > file_size - kLengthBytes) {
        fail(origin, "header length " + std::to_string(n) + " runs past the end of the file (" +
                         std::to_string(file_size) + " bytes: truncated?)");
    }
    return n;
}

// A JSON value that must be a non-negative integer (a dimension or an offset); `what` names it for errors.
std::uint64_t as_count(const json& value, const std::string& what, const std::string& origin) {
    if (value.is_number_unsigned()) return value.get<std::uint64_t>();
    if (value.is_number_integer()) fail(origin, what + " is negative: " + show(value));
    if (value.is_number_float()) fail(origin, what + " is not an integer: " + show(value));
    fail(origin, what + " is " + a_type(value) + ", not an integer: " + show(value));
}

// The JSON header, parsed with duplicate keys detected. nlohmann::json silently keeps the last of two equal
// keys, while other readers may keep the first: a file that means different things to different readers is
// refused, so a parser callback records every key of every object as it is read.
json parse_json(const char* text, std::size_t size, const std::string& origin) {
    std::vector<std::set<std::string>> open_objects;  // the keys seen so far in each enclosing object
    std::string duplicate;
    json::parser_callback_t on_event = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::object_start) {
            open_objects.emplace_back();
        } else if (event == json::parse_event_t::object_end) {
            if (!open_objects.empty()) open_objects.pop_back();
        } else if (event == json::parse_event_t::key && !open_objects.empty()) {
            const auto& key = parsed.get_ref<const std::string&>();
            if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
        }
        return true;  // keep every value
    };
    json root;
    try {
        root = json::parse(text, text + size, on_event);
    } catch (const json::parse_error& e) {
        // e.byte is the 1-based position in the header where the parser gave up.
        fail(origin, "header is not valid JSON (at byte " + std::to_string(e.byte) + " of the " +
                         std::to_string(size) + "-byte header): " + e.what());
    } catch (const json::exception& e) {
        // The parser's other errors, e.g. out_of_range 406 for a number such as 1E342 that overflows a double.
        fail(origin, "header is not valid JSON (" + std::to_string(size) + "-byte header): " + e.what());
    }
    if (!duplicate.empty()) {
        fail(origin, "header has the key \"" + duplicate +
                         "\" twice in one object (readers disagree on which one wins, so the file is refused)");
    }
    return root;
}

Entry parse_entry(const std::string& name, const json& info, bool widen_half, const std::string& origin) {
    const std::string where = "tensor '" + name + "'";
    if (!info.is_object()) {
        fail(origin, where + " is " + a_type(info) +
                         ", not an object with dtype, shape and data_offsets: " + show(info));
    }
    for (const char* field : {"dtype", "shape", "data_offsets"})
        if (!info.contains(field)) fail(origin, where + " has no \"" + field + "\" field: " + show(info));

    Entry entry;
    entry.name = name;

    const json& dtype = info["dtype"];
    if (!dtype.is_string()) fail(origin, where + ": dtype is " + a_type(dtype) + ", not a string");
    const auto& code = dtype.get_ref<const std::string&>();
    const auto known = std::find_if(std::begin(kDTypeCodes), std::end(kDTypeCodes),
                                    [&](const DTypeCode& c) { return code == c.code; });
    entry.code = code;
    const bool half = code == "F16" || code == "BF16";
    if (half && widen_half) {
        entry.dtype = kFloat32;
        entry.half = code == "F16" ? Half::F16 : Half::BF16;
    } else if (known == std::end(kDTypeCodes)) {
        const bool foreign = std::find(std::begin(kForeignDTypes), std::end(kForeignDTypes), code) !=
                             std::end(kForeignDTypes);
        fail(origin, where + " has " + (foreign ? "unsupported" : "unknown") + " dtype \"" + code +
                         "\" (tapegrad reads F32, F64, I32 and I64" +
                         (foreign ? "; convert the file to one of those" : "") + ")");
    } else {
        entry.dtype = known->dtype;
    }

    const json& shape = info["shape"];
    if (!shape.is_array()) fail(origin, where + ": shape is " + a_type(shape) + ", not an array");
    // nbytes = prod(shape) * element size, with every product checked: a hostile header could otherwise
    // wrap around to a small size that passes the offset checks.
    std::uint64_t nbytes = entry.half != Half::None ? 2 : element_size(entry.dtype);  // bytes in the file
    for (std::size_t d = 0; d < shape.size(); ++d) {
        const std::uint64_t size = as_count(shape[d], where + ": shape[" + std::to_string(d) + "]", origin);
        if (size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
            __builtin_mul_overflow(nbytes, size, &nbytes)) {
            fail(origin, where + ": shape " + show(shape) + " is too large (its byte size overflows 64 bits)");
        }
        entry.shape.push_back(static_cast<std::int64_t>(size));
    }

    const json& offsets = info["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2) {
        fail(origin, where + ": data_offsets must be an array [begin, end], not " + show(offsets));
    }
    entry.begin = as_count(offsets[0], where + ": data_offsets begin", origin);
    entry.end = as_count(offsets[1], where + ": data_offsets end", origin);
    if (entry.begin > entry.end) {
        fail(origin, where + ": data_offsets begin " + std::to_string(entry.begin) + " is after end " +
                         std::to_string(entry.end));
    }
    if (entry.end - entry.begin != nbytes) {
        fail(origin, where + ": data_offsets " + range_text(entry.begin, entry.end) + " hold " +
                         std::to_string(entry.end - entry.begin) + " bytes, but shape " + to_string(entry.shape) +
                         " of " + code + " needs " + std::to_string(nbytes));
    }
    return entry;
}

// Every tensor's byte range must lie inside the data buffer, no two may overlap, and together they must
// cover it exactly (the reference reader's rule: no gaps, no trailing bytes).
void check_layout(const std::vector<Entry>& entries, std::uint64_t data_size, const std::string& origin) {
    for (const auto& e : entries) {
        if (e.end > data_size) {
            fail(origin, "tensor '" + e.name + "': data_offsets " + range_text(e.begin, e.end) +
                             " run past the end of the " + std::to_string(data_size) + "-byte data buffer (truncated?)");
        }
    }
    std::vector<const Entry*> by_begin;
    for (const auto& e : entries)
        if (e.end > e.begin) by_begin.push_back(&e);  // an empty tensor occupies no bytes and overlaps nothing
    std::sort(by_begin.begin(), by_begin.end(), [](const Entry* a, const Entry* b) {
        return std::pair(a->begin, a->end) < std::pair(b->begin, b->end);
    });
    std::uint64_t covered = 0;
    for (std::size_t i = 0; i < by_begin.size(); ++i) {
        // Sorted by begin and (by induction) pairwise disjoint so far, the only range that can overlap
        // by_begin[i] is its predecessor.
        if (i > 0 && by_begin[i]->begin < by_begin[i - 1]->end) {
            const Entry& a = *by_begin[i - 1];
            const Entry& b = *by_begin[i];
            fail(origin, "tensors '" + a.name + "' (" + range_text(a.begin, a.end) + ") and '" + b.name + "' (" +
                             range_text(b.begin, b.end) + ") overlap");
        }
        covered += by_begin[i]->end - by_begin[i]->begin;  // disjoint ranges inside the buffer: no overflow
    }
    if (covered != data_size) {
        fail(origin, "data buffer of " + std::to_string(data_size) + " bytes has " + std::to_string(data_size - covered) +
                         " bytes not covered by any tensor (gaps between tensors or trailing bytes)");
    }
}

Header parse_header(const char* text, std::size_t size, std::uint64_t data_size, bool widen_half,
                    const std::string& origin) {
    const json root = parse_json(text, size, origin);
    if (!root.is_object()) fail(origin, "header is " + a_type(root) + ", not an object");

    Header header;
    for (const auto& [key, value] : root.items()) {
        if (key == "__metadata__") {
            if (!value.is_object()) {
                fail(origin, "__metadata__ is " + a_type(value) + ", not an object of strings");
            }
            for (const auto& [k, v] : value.items()) {
                if (!v.is_string()) {
                    fail(origin, "__metadata__ value of \"" + k + "\" is " + a_type(v) +
                                     ", not a string: " + show(v));
                }
                header.metadata[k] = v.get<std::string>();
            }
            continue;
        }
        header.entries.push_back(parse_entry(key, value, widen_half, origin));
    }
    check_layout(header.entries, data_size, origin);
    return header;
}

// Names must be unique and usable as JSON keys; undefined tensors cannot be written.
void check_names(const NamedTensors& tensors, const std::string& prefix) {
    std::set<std::string> seen;
    for (const auto& [name, t] : tensors) {
        if (name.empty()) throw ValueError(prefix + "a tensor has an empty name");
        if (name == "__metadata__") throw ValueError(prefix + "\"__metadata__\" is reserved and cannot name a tensor");
        if (!seen.insert(name).second) throw ValueError(prefix + "duplicate tensor name '" + name + "'");
        if (!t.defined()) throw ValueError(prefix + "tensor '" + name + "' is undefined");
    }
}

std::vector<std::uint8_t> encode(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                                 const std::string& prefix) {
    check_names(tensors, prefix);

    // Data order: 8-byte dtypes first, then 4-byte ones (a stable sort keeps the caller's order within each
    // group). Packed back to back from an 8-aligned start, every tensor then starts at a multiple of its own
    // element size, with no padding gaps that strict readers would reject.
    std::vector<std::size_t> data_order(tensors.size());
    std::iota(data_order.begin(), data_order.end(), std::size_t{0});
    std::stable_sort(data_order.begin(), data_order.end(), [&](std::size_t a, std::size_t b) {
        return element_size(tensors[a].second.dtype()) > element_size(tensors[b].second.dtype());
    });
    std::vector<std::uint64_t> begin(tensors.size());
    std::uint64_t data_size = 0;
    for (std::size_t i : data_order) {
        begin[i] = data_size;
        data_size += static_cast<std::uint64_t>(tensors[i].second.numel()) * element_size(tensors[i].second.dtype());
    }

    // The header lists tensors in the caller's order.
    json header = json::object();
    if (!metadata.empty()) {
        json meta = json::object();
        for (const auto& [k, v] : metadata) meta[k] = v;
        header["__metadata__"] = std::move(meta);
    }
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const Tensor& t = tensors[i].second;
        const std::uint64_t nbytes = static_cast<std::uint64_t>(t.numel()) * element_size(t.dtype());
        header[tensors[i].first] = json{{"dtype", code_of(t.dtype())},
                                        {"shape", t.shape()},
                                        {"data_offsets", {begin[i], begin[i] + nbytes}}};
    }
    std::string text;
    try {
        text = header.dump();  // strict: throws on names or metadata that are not valid UTF-8
    } catch (const json::type_error& e) {
        throw ValueError(prefix + "a tensor name or metadata string is not valid UTF-8: " + e.what());
    }
    // Pad with spaces (JSON whitespace) so the data buffer starts 8-byte aligned, as the reference writer does.
    text.append((8 - text.size() % 8) % 8, ' ');

    std::vector<std::uint8_t> bytes(kLengthBytes + text.size() + data_size);
    write_u64_le(bytes.data(), text.size());
    std::memcpy(bytes.data() + kLengthBytes, text.data(), text.size());
    std::uint8_t* data = bytes.data() + kLengthBytes + text.size();
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        // A contiguous copy (or the tensor itself) lays the elements out row-major, as the format wants.
        const Tensor t = tensors[i].second.detach().contiguous();
        const std::size_t nbytes = static_cast<std::size_t>(t.numel()) * element_size(t.dtype());
        if (nbytes > 0) std::memcpy(data + begin[i], t.raw_data(), nbytes);
    }
    return bytes;
}

// IEEE 754 binary16 (1 sign, 5 exponent, 10 fraction bits) -> float32, exactly: every half value is a float.
float f16_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h >> 15) << 31;
    const std::uint32_t exponent = (h >> 10) & 0x1F, fraction = h & 0x3FF;
    if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (fraction << 13));  // inf, NaN
    if (exponent != 0) return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (fraction << 13));  // 127−15
    // Zero or subnormal: fraction · 2^−24, exact in float32.
    const float magnitude = static_cast<float>(fraction) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
}

// bfloat16 is the top half of a float32: shift it back into place.
float bf16_to_float(std::uint16_t h) { return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16); }

// A fresh tensor for `entry` whose stored bytes `fill(destination, nbytes)` writes; 16-bit floats are read into
// a scratch buffer and widened to float32.
template <typename Fill>
Tensor make_entry_tensor(const Entry& entry, Fill&& fill) {
    Tensor t = empty(entry.shape, entry.dtype);
    const std::uint64_t nbytes = entry.end - entry.begin;
    if (nbytes == 0) return t;
    if (entry.half == Half::None) {
        fill(t.raw_data(), static_cast<std::size_t>(nbytes));
        return t;
    }
    std::vector<std::uint16_t> stored(static_cast<std::size_t>(nbytes / 2));
    fill(stored.data(), static_cast<std::size_t>(nbytes));
    float* out = static_cast<float*>(t.raw_data());
    const bool f16 = entry.half == Half::F16;
    for (std::size_t i = 0; i < stored.size(); ++i) out[i] = f16 ? f16_to_float(stored[i]) : bf16_to_float(stored[i]);
    return t;
}

// Closes the FILE on every path out of load_safetensors.
struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

Tensor SafetensorsFile::get(const std::string& name) const {
    for (const auto& [n, t] : tensors)
        if (n == name) return t;
    std::string available;
    const std::size_t shown = std::min<std::size_t>(tensors.size(), 20);
    for (std::size_t i = 0; i < shown; ++i) available += (i ? ", '" : "'") + tensors[i].first + "'";
    if (tensors.size() > shown) available += ", ... (" + std::to_string(tensors.size() - shown) + " more)";
    throw IOError("safetensors: " + origin + ": no tensor named '" + name + "'; the file has " +
                  (tensors.empty() ? std::string("no tensors") : available));
}

bool SafetensorsFile::contains(const std::string& name) const {
    return std::any_of(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; });
}

std::vector<std::uint8_t> encode_safetensors(const NamedTensors& tensors,
                                             const std::map<std::string, std::string>& metadata) {
    return encode(tensors, metadata, "safetensors: ");
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
    const std::vector<std::uint8_t> bytes = encode(tensors, metadata, "safetensors: " + path + ": ");
    write_file_atomically(path, bytes.data(), bytes.size(), "safetensors");
}

SafetensorsFile decode_safetensors(const std::uint8_t* data, std::size_t size, const std::string& origin) {
    return decode_safetensors(data, size, origin, SafetensorsReadOptions{});
}

SafetensorsFile decode_safetensors(const std::uint8_t* data, std::size_t size, const std::string& origin,
                                   const SafetensorsReadOptions& options) {
    const std::uint64_t n = check_header_length(data, size, origin);
    const std::uint64_t data_size = size - kLengthBytes - n;
    const Header header = parse_header(reinterpret_cast<const char*>(data + kLengthBytes), n, data_size,
                                       options.widen_half_to_float32, origin);

    SafetensorsFile file;
    file.origin = origin;
    file.metadata = header.metadata;
    const std::uint8_t* buffer = data + kLengthBytes + n;
    for (const auto& entry : header.entries) {
        file.tensors.emplace_back(entry.name, make_entry_tensor(entry, [&](void* dst, std::size_t nbytes) {
                                      std::memcpy(dst, buffer + entry.begin, nbytes);
                                  }));
    }
    return file;
}

namespace {

// An open safetensors file whose header has been read and validated; tensors are read on demand.
class OpenFile {
public:
    OpenFile(const std::string& path, bool widen_half) : path_(path) {
        file_.reset(std::fopen(path.c_str(), "rb"));
        if (!file_) {
            const int error = errno;
            fail(path, std::string("cannot open: ") + std::strerror(error));
        }
        struct stat info {};
        if (::fstat(::fileno(file_.get()), &info) != 0) {
            const int error = errno;
            fail(path, std::string("cannot stat: ") + std::strerror(error));
        }
        if (!S_ISREG(info.st_mode)) fail(path, "not a regular file");
        const auto file_size = static_cast<std::uint64_t>(info.st_size);

        std::uint8_t prefix[kLengthBytes] = {};
        if (file_size >= kLengthBytes) read_exactly(prefix, kLengthBytes, "the header length");
        header_bytes_ = check_header_length(prefix, file_size, path);
        std::string text(header_bytes_, '\0');
        read_exactly(text.data(), header_bytes_, "the header");
        const std::uint64_t data_size = file_size - kLengthBytes - header_bytes_;
        header = parse_header(text.data(), text.size(), data_size, widen_half, path);
    }

    // A fresh tensor holding `entry`'s elements, read straight into its own storage: loading a checkpoint
    // needs no second copy of it in memory.
    Tensor read(const Entry& entry) {
        return make_entry_tensor(entry, [&](void* dst, std::size_t nbytes) {
            const auto position = static_cast<off_t>(kLengthBytes + header_bytes_ + entry.begin);
            if (::fseeko(file_.get(), position, SEEK_SET) != 0) {
                const int error = errno;
                fail(path_, "cannot seek to tensor '" + entry.name + "': " + std::strerror(error));
            }
            read_exactly(dst, nbytes, "tensor '" + entry.name + "'");
        });
    }

    Header header;

private:
    void read_exactly(void* dst, std::size_t count, const std::string& what) {
        if (std::fread(dst, 1, count, file_.get()) != count) {
            const int error = errno;
            fail(path_, "cannot read " + what + (std::ferror(file_.get()) ? std::string(": ") + std::strerror(error)
                                                                         : std::string(": unexpected end of file")));
        }
    }

    std::string path_;
    std::unique_ptr<std::FILE, FileCloser> file_;
    std::uint64_t header_bytes_ = 0;
};

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) { return load_safetensors(path, SafetensorsReadOptions{}); }

SafetensorsFile load_safetensors(const std::string& path, const SafetensorsReadOptions& options) {
    OpenFile f(path, options.widen_half_to_float32);
    SafetensorsFile file;
    file.origin = path;
    file.metadata = f.header.metadata;
    for (const auto& entry : f.header.entries) file.tensors.emplace_back(entry.name, f.read(entry));
    return file;
}

SafetensorsHeader read_safetensors_header(const std::string& path, const SafetensorsReadOptions& options) {
    const OpenFile f(path, options.widen_half_to_float32);
    SafetensorsHeader header;
    header.origin = path;
    header.metadata = f.header.metadata;
    for (const auto& entry : f.header.entries) header.tensors.push_back({entry.name, entry.code, entry.shape});
    return header;
}

}  // namespace tg
