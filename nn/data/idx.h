#pragma once
// The IDX file format of MNIST and Fashion-MNIST (LeCun et al.), read with full validation.
//
// An IDX file is a header followed by the array, all big-endian:
//
//   bytes 0-1   0x00 0x00                      magic: always zero
//   byte  2     element type code              0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
//                                              0x0D float32, 0x0E float64
//   byte  3     number of dimensions n (>= 1)
//   n × 4 bytes the size of each dimension     (uint32, big-endian)
//   then        the elements, row-major         (product of the sizes × element size bytes, nothing after)
//
// Fashion-MNIST ships them gzip-compressed (train-images-idx3-ubyte.gz, ...); read_idx recognises the gzip
// magic 1f 8b and inflates with zlib, checking the gzip CRC and length. Every problem — a missing file,
// a truncated or corrupt gzip stream, a bad magic, an unknown type code, zero dimensions, a size that does
// not match the header — throws tg::IOError naming the file and what is wrong.
//
// Bounded memory, whatever the file says: the header is read first, and the data is then read (or inflated)
// only up to the size the header declares, in chunks, so a file that is shorter than its header claims costs
// what it holds, and a "decompression bomb" (a small .gz that inflates to gigabytes) is stopped one byte past
// the declared size ("trailing data"). A header that declares more than max_bytes of data (default
// kMaxIdxBytes = 1 GiB; Fashion-MNIST's largest file holds 47 MB) is refused before anything is read.

#include "core/tensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace tg::data {

enum class IdxType : std::uint8_t {
    UInt8 = 0x08,
    Int8 = 0x09,
    Int16 = 0x0B,
    Int32 = 0x0C,
    Float32 = 0x0D,
    Float64 = 0x0E,
};
std::string to_string(IdxType type);     // "uint8", ...
std::int64_t element_size(IdxType type);  // bytes per element

// The array of one IDX file: its type, its shape, and its elements converted to host byte order.
struct IdxArray {
    IdxType type = IdxType::UInt8;
    Shape shape;
    std::vector<std::uint8_t> data;  // numel(shape) × element_size(type) bytes, host byte order
    std::string origin;              // the file it came from, for messages

    // The elements as a tensor of `dtype` (values converted, e.g. uint8 pixels 0..255 -> float32 0..255).
    Tensor to_tensor(DType dtype = kFloat32) const;
};

inline constexpr std::uint64_t kMaxIdxBytes = std::uint64_t{1} << 30;

// Reads an IDX file, gzip-compressed or not. Throws IOError as described above.
IdxArray read_idx(const std::string& path, std::uint64_t max_bytes = kMaxIdxBytes);
// The same for the bytes of a file already in memory (gzip-compressed or not); `origin` names them in messages.
IdxArray decode_idx(const std::vector<std::uint8_t>& bytes, const std::string& origin,
                    std::uint64_t max_bytes = kMaxIdxBytes);

// Inflates a whole gzip (or zlib) stream of at most max_bytes. Throws IOError naming `origin` for a corrupt
// or truncated stream, bytes after its end, or more than max_bytes of output (stopped there).
std::vector<std::uint8_t> gunzip(const std::vector<std::uint8_t>& compressed, const std::string& origin,
                                 std::uint64_t max_bytes = kMaxIdxBytes);

// An image classification set in MNIST layout.
struct ImageDataset {
    Tensor images;  // (N, H, W) float32 in [0, 1]
    Tensor labels;  // (N) int64
};

// Loads "<dir>/<split>-images-idx3-ubyte[.gz]" and "<dir>/<split>-labels-idx1-ubyte[.gz]" (split "train" or
// "t10k"), checking that the images are uint8 (N, H, W), the labels uint8 (N) with the same N, and every label
// below num_classes. An empty set (0 images, or images of 0 pixels) is an IOError too: nothing trained or
// measured on it would mean anything.
ImageDataset load_mnist(const std::string& dir, const std::string& split, std::int64_t num_classes = 10);

// The folder of the Debian package dataset-fashion-mnist.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

}  // namespace tg::data
