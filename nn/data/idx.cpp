// IDX reader: gzip inflate (zlib), header validation, big-endian to host conversion.

#include "nn/data/idx.h"

#include "core/error.h"
#include "nn/data/byte_source.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace tg::data {

namespace {

std::uint32_t read_be32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

bool known_type(std::uint8_t code) {
    switch (code) {
        case 0x08: case 0x09: case 0x0B: case 0x0C: case 0x0D: case 0x0E: return true;
        default: return false;
    }
}

// Converts n elements of `size` bytes from big-endian to host order, in place.
void big_endian_to_host(std::vector<std::uint8_t>& data, std::int64_t size) {
    if (size == 1 || std::endian::native == std::endian::big) return;
    for (std::size_t i = 0; i + size <= data.size(); i += size) std::reverse(data.begin() + i, data.begin() + i + size);
}

template <typename T>
void convert(const IdxArray& a, Tensor& out) {
    const std::int64_t n = numel(a.shape);
    const auto write = [&](auto* dst) {
        using D = std::remove_pointer_t<decltype(dst)>;
        for (std::int64_t i = 0; i < n; ++i) {
            T value;
            std::memcpy(&value, a.data.data() + i * sizeof(T), sizeof(T));
            dst[i] = static_cast<D>(value);
        }
    };
    switch (out.dtype()) {
        case DType::Float32: write(out.data<float>()); break;
        case DType::Float64: write(out.data<double>()); break;
        case DType::Int32: write(out.data<std::int32_t>()); break;
        case DType::Int64: write(out.data<std::int64_t>()); break;
    }
}

}  // namespace

std::string to_string(IdxType type) {
    switch (type) {
        case IdxType::UInt8: return "uint8";
        case IdxType::Int8: return "int8";
        case IdxType::Int16: return "int16";
        case IdxType::Int32: return "int32";
        case IdxType::Float32: return "float32";
        case IdxType::Float64: return "float64";
    }
    return "unknown";
}

std::int64_t element_size(IdxType type) {
    switch (type) {
        case IdxType::UInt8: case IdxType::Int8: return 1;
        case IdxType::Int16: return 2;
        case IdxType::Int32: case IdxType::Float32: return 4;
        case IdxType::Float64: return 8;
    }
    return 1;
}

std::vector<std::uint8_t> gunzip(const std::vector<std::uint8_t>& compressed, const std::string& origin,
                                 std::uint64_t max_bytes) {
    MemorySource input(compressed.data(), compressed.size());
    GzipSource stream(input, origin);
    std::vector<std::uint8_t> out;
    // Grow by doubling, never past max_bytes + 1: one byte more than allowed is enough to know it is too much.
    while (true) {
        const std::size_t have = out.size();
        const std::size_t want = static_cast<std::size_t>(
            std::min<std::uint64_t>(std::max<std::size_t>(2 * have, 1 << 16), max_bytes + 1));
        if (want == have) break;
        out.resize(want);
        const std::size_t got = read_fully(stream, out.data() + have, want - have);
        out.resize(have + got);
        if (got < want - have) return out;  // the end of the stream
    }
    throw IOError("gunzip: " + origin + ": the stream inflates to more than the limit of " + std::to_string(max_bytes) +
                  " bytes (stopped there)");
}

namespace {

// Reads one IDX array from `source`: the header first, then exactly the data it declares (see idx.h).
IdxArray read_idx_from(ByteSource& source, const std::string& origin, std::uint64_t max_bytes) {
    const std::string where = "read_idx: " + origin + ": ";
    std::uint8_t magic[4] = {};
    const std::size_t got_magic = read_fully(source, magic, 4);
    if (got_magic < 4) {
        throw IOError(where + "file is " + std::to_string(got_magic) + " bytes, shorter than the 4-byte IDX magic");
    }
    if (magic[0] != 0 || magic[1] != 0) {
        std::ostringstream os;
        os << where << "bad magic: the first two bytes must be 00 00, got " << std::hex << int(magic[0]) << " "
           << int(magic[1]) << " (not an IDX file)";
        throw IOError(os.str());
    }
    if (!known_type(magic[2])) {
        std::ostringstream os;
        os << where << "unknown element type code 0x" << std::hex << int(magic[2])
           << " (expected 0x08 uint8, 0x09 int8, 0x0b int16, 0x0c int32, 0x0d float32 or 0x0e float64)";
        throw IOError(os.str());
    }
    IdxArray a;
    a.type = static_cast<IdxType>(magic[2]);
    a.origin = origin;
    const std::size_t ndim = magic[3];
    if (ndim == 0) throw IOError(where + "the header declares 0 dimensions");
    const std::size_t header = 4 + 4 * ndim;
    std::uint8_t dims[4 * 255];
    const std::size_t got_dims = read_fully(source, dims, 4 * ndim);
    if (got_dims < 4 * ndim) {
        throw IOError(where + "truncated header: " + std::to_string(ndim) + " dimensions need " +
                      std::to_string(header) + " bytes, the file has " + std::to_string(4 + got_dims));
    }
    // The expected size, computed with an overflow check (a corrupt header can claim 2^32 per dimension).
    std::uint64_t count = 1;
    for (std::size_t d = 0; d < ndim; ++d) {
        const std::uint32_t size = read_be32(dims + 4 * d);
        a.shape.push_back(static_cast<std::int64_t>(size));
        if (size != 0 && count > (std::uint64_t{1} << 40) / size) {
            throw IOError(where + "dimensions " + tg::to_string(a.shape) + "... are implausibly large (corrupt header?)");
        }
        count *= size;
    }
    const std::uint64_t data_bytes = count * static_cast<std::uint64_t>(element_size(a.type));
    const std::uint64_t expected = header + data_bytes;
    const auto mismatch = [&](const std::string& has, bool truncated) {
        return IOError(where + "size mismatch: the header declares " + to_string(a.type) + " " +
                       tg::to_string(a.shape) + " = " + std::to_string(expected) + " bytes with the header, the file " +
                       has + (truncated ? " (truncated)" : " (trailing data)"));
    };
    // A plain file tells its size up front: compare before reading a single data byte.
    const std::int64_t size = source.known_size();
    if (size >= 0 && static_cast<std::uint64_t>(size) != expected) {
        throw mismatch("has " + std::to_string(size) + " bytes", static_cast<std::uint64_t>(size) < expected);
    }
    if (data_bytes > max_bytes) {
        throw IOError(where + "the header declares " + to_string(a.type) + " " + tg::to_string(a.shape) + " = " +
                      std::to_string(data_bytes) + " bytes of data, above the limit of " + std::to_string(max_bytes) +
                      " bytes (read_idx's max_bytes)");
    }
    // Read in chunks of at most 64 MiB, so a stream that ends early has cost only what it held.
    constexpr std::uint64_t kChunk = std::uint64_t{64} << 20;
    while (a.data.size() < data_bytes) {
        const std::size_t have = a.data.size();
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(data_bytes - have, kChunk));
        a.data.resize(have + want);
        const std::size_t got = read_fully(source, a.data.data() + have, want);
        if (got < want) throw mismatch("ends after " + std::to_string(header + have + got) + " bytes", true);
    }
    std::uint8_t extra = 0;
    if (read_fully(source, &extra, 1) != 0) throw mismatch("goes on after that", false);
    big_endian_to_host(a.data, element_size(a.type));
    return a;
}

bool is_gzip(const std::uint8_t* bytes, std::size_t size) { return size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b; }

}  // namespace

IdxArray decode_idx(const std::vector<std::uint8_t>& bytes, const std::string& origin, std::uint64_t max_bytes) {
    MemorySource memory(bytes.data(), bytes.size());
    if (!is_gzip(bytes.data(), bytes.size())) return read_idx_from(memory, origin, max_bytes);
    GzipSource inflated(memory, origin);
    return read_idx_from(inflated, origin, max_bytes);
}

IdxArray read_idx(const std::string& path, std::uint64_t max_bytes) {
    std::uint8_t magic[2] = {};
    bool gzipped = false;
    {
        FileSource probe(path, "read_idx");
        gzipped = is_gzip(magic, read_fully(probe, magic, 2));
    }
    FileSource file(path, "read_idx");
    if (!gzipped) return read_idx_from(file, path, max_bytes);
    GzipSource inflated(file, path);
    return read_idx_from(inflated, path, max_bytes);
}

Tensor IdxArray::to_tensor(DType dtype) const {
    Tensor out = empty(shape, dtype);
    switch (type) {
        case IdxType::UInt8: convert<std::uint8_t>(*this, out); break;
        case IdxType::Int8: convert<std::int8_t>(*this, out); break;
        case IdxType::Int16: convert<std::int16_t>(*this, out); break;
        case IdxType::Int32: convert<std::int32_t>(*this, out); break;
        case IdxType::Float32: convert<float>(*this, out); break;
        case IdxType::Float64: convert<double>(*this, out); break;
    }
    return out;
}

ImageDataset load_mnist(const std::string& dir, const std::string& split, std::int64_t num_classes) {
    // Prefer the gzip files (what the Debian package ships), fall back to uncompressed ones.
    const auto find = [&](const std::string& stem) {
        const std::string base = (std::filesystem::path(dir) / (split + stem)).string();
        if (std::filesystem::exists(base + ".gz")) return base + ".gz";
        if (std::filesystem::exists(base)) return base;
        throw IOError("load_mnist: neither " + base + ".gz nor " + base +
                      " exists (Debian: apt-get install dataset-fashion-mnist)");
    };
    const std::string image_path = find("-images-idx3-ubyte");
    const std::string label_path = find("-labels-idx1-ubyte");
    const IdxArray images = read_idx(image_path);
    const IdxArray labels = read_idx(label_path);
    if (images.type != IdxType::UInt8 || images.shape.size() != 3) {
        throw IOError("load_mnist: " + image_path + ": expected uint8 images (N, H, W), got " + to_string(images.type) +
                      " " + tg::to_string(images.shape));
    }
    if (labels.type != IdxType::UInt8 || labels.shape.size() != 1) {
        throw IOError("load_mnist: " + label_path + ": expected uint8 labels (N), got " + to_string(labels.type) + " " +
                      tg::to_string(labels.shape));
    }
    if (images.shape[0] == 0 || images.shape[1] == 0 || images.shape[2] == 0) {
        throw IOError("load_mnist: " + image_path + ": the " + split + " split is empty (" +
                      tg::to_string(images.shape) + " images): nothing to train or measure on");
    }
    if (labels.shape[0] != images.shape[0]) {
        throw IOError("load_mnist: " + image_path + " holds " + std::to_string(images.shape[0]) + " images but " +
                      label_path + " holds " + std::to_string(labels.shape[0]) + " labels");
    }
    for (std::size_t i = 0; i < labels.data.size(); ++i) {
        if (labels.data[i] >= num_classes) {
            throw IOError("load_mnist: " + label_path + ": label " + std::to_string(labels.data[i]) + " at index " +
                          std::to_string(i) + " is not below num_classes = " + std::to_string(num_classes));
        }
    }
    ImageDataset set;
    set.images = images.to_tensor(kFloat32);
    float* p = set.images.data<float>();
    for (std::int64_t i = 0, n = set.images.numel(); i < n; ++i) p[i] *= 1.0f / 255.0f;
    set.labels = labels.to_tensor(kInt64);
    return set;
}

}  // namespace tg::data
