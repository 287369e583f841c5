// IDX reader: gzip inflate (zlib), header validation, big-endian to host conversion.

#include "nn/data/idx.h"

#include "core/error.h"

#include <zlib.h>

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

std::vector<std::uint8_t> read_whole_file(const std::string& path, const std::string& what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IOError(what + ": cannot open " + path + ": " + std::strerror(errno));
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw IOError(what + ": error while reading " + path);
    return bytes;
}

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

std::vector<std::uint8_t> gunzip(const std::vector<std::uint8_t>& compressed, const std::string& origin) {
    z_stream zs{};
    // windowBits 15 + 32: zlib detects a gzip or zlib header by itself and checks the trailer (CRC-32, length).
    if (inflateInit2(&zs, 15 + 32) != Z_OK) throw IOError("gunzip: " + origin + ": cannot initialise zlib");
    std::vector<std::uint8_t> out(std::max<std::size_t>(compressed.size() * 4, 1 << 16));
    zs.next_in = const_cast<Bytef*>(compressed.data());
    zs.avail_in = static_cast<uInt>(compressed.size());
    std::size_t produced = 0;
    int status = Z_OK;
    while (true) {
        if (produced == out.size()) out.resize(out.size() * 2);
        zs.next_out = out.data() + produced;
        zs.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size() - produced, std::numeric_limits<uInt>::max()));
        const uInt before = zs.avail_out;
        status = inflate(&zs, Z_NO_FLUSH);
        produced += before - zs.avail_out;
        if (status == Z_STREAM_END) break;
        if (status == Z_OK) continue;
        // Z_BUF_ERROR with a full output buffer means "need more room": loop and grow it. With room left, no
        // progress is possible because the input ran out before the end of the stream: the file is truncated.
        if (status == Z_BUF_ERROR && zs.avail_out == 0) continue;
        std::string reason = status == Z_BUF_ERROR ? "the gzip stream is truncated (unexpected end of data)"
                                                   : std::string("the gzip stream is corrupt (") +
                                                         (zs.msg ? zs.msg : "zlib error " + std::to_string(status)) + ")";
        inflateEnd(&zs);
        throw IOError("gunzip: " + origin + ": " + reason + " after " + std::to_string(produced) +
                      " decompressed bytes");
    }
    const std::size_t trailing = zs.avail_in;
    inflateEnd(&zs);
    if (trailing != 0) {
        throw IOError("gunzip: " + origin + ": " + std::to_string(trailing) + " unexpected bytes after the gzip stream");
    }
    out.resize(produced);
    return out;
}

IdxArray decode_idx(const std::vector<std::uint8_t>& bytes, const std::string& origin) {
    const std::string where = "read_idx: " + origin + ": ";
    if (bytes.size() < 4) {
        throw IOError(where + "file is " + std::to_string(bytes.size()) + " bytes, shorter than the 4-byte IDX magic");
    }
    if (bytes[0] != 0 || bytes[1] != 0) {
        std::ostringstream os;
        os << where << "bad magic: the first two bytes must be 00 00, got " << std::hex << int(bytes[0]) << " "
           << int(bytes[1]) << " (not an IDX file)";
        throw IOError(os.str());
    }
    if (!known_type(bytes[2])) {
        std::ostringstream os;
        os << where << "unknown element type code 0x" << std::hex << int(bytes[2])
           << " (expected 0x08 uint8, 0x09 int8, 0x0b int16, 0x0c int32, 0x0d float32 or 0x0e float64)";
        throw IOError(os.str());
    }
    IdxArray a;
    a.type = static_cast<IdxType>(bytes[2]);
    a.origin = origin;
    const std::size_t ndim = bytes[3];
    if (ndim == 0) throw IOError(where + "the header declares 0 dimensions");
    const std::size_t header = 4 + 4 * ndim;
    if (bytes.size() < header) {
        throw IOError(where + "truncated header: " + std::to_string(ndim) + " dimensions need " +
                      std::to_string(header) + " bytes, the file has " + std::to_string(bytes.size()));
    }
    // The expected size, computed with an overflow check (a corrupt header can claim 2^32 per dimension).
    std::uint64_t count = 1;
    for (std::size_t d = 0; d < ndim; ++d) {
        const std::uint32_t size = read_be32(bytes.data() + 4 + 4 * d);
        a.shape.push_back(static_cast<std::int64_t>(size));
        if (size != 0 && count > (std::uint64_t{1} << 40) / size) {
            throw IOError(where + "dimensions " + tg::to_string(a.shape) + "... are implausibly large (corrupt header?)");
        }
        count *= size;
    }
    const std::uint64_t expected = header + count * element_size(a.type);
    if (bytes.size() != expected) {
        throw IOError(where + "size mismatch: the header declares " + to_string(a.type) + " " + tg::to_string(a.shape) +
                      " = " + std::to_string(expected) + " bytes with the header, the file has " +
                      std::to_string(bytes.size()) + (bytes.size() < expected ? " (truncated)" : " (trailing data)"));
    }
    a.data.assign(bytes.begin() + header, bytes.end());
    big_endian_to_host(a.data, element_size(a.type));
    return a;
}

IdxArray read_idx(const std::string& path) {
    std::vector<std::uint8_t> bytes = read_whole_file(path, "read_idx");
    const bool gzipped = bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
    if (gzipped) bytes = gunzip(bytes, path);
    return decode_idx(bytes, path);
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
