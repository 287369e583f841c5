#pragma once
// Saving and loading tensors in the safetensors format (https://github.com/huggingface/safetensors), the
// format Hugging Face uses for model weights: simple, safe to read from an untrusted source (no code runs,
// unlike a Python pickle), and readable by PyTorch, JAX, MLX, candle, ...
//
// File layout:
//
//   bytes 0..8        N, the header length: an unsigned 64-bit little-endian integer
//   bytes 8..8+N      the header: UTF-8 JSON, possibly padded with trailing spaces
//   bytes 8+N..end    the data buffer: every tensor's elements, row-major, little-endian, back to back
//
// The header is one JSON object:
//
//   {"__metadata__": {"epoch": "3", ...},                      optional; string values only
//    "wte":  {"dtype": "F32", "shape": [50257, 768], "data_offsets": [0, 154389504]},
//    "step": {"dtype": "I64", "shape": [],           "data_offsets": [154389504, 154389512]}, ...}
//
// data_offsets [begin, end) count bytes from the start of the data buffer. tapegrad reads and writes the
// dtypes F32, F64, I32, I64 (float32, float64, int32, int64); other safetensors dtypes (F16, BF16, U8, ...)
// are refused with an IOError naming the dtype.
//
// Writing (save_safetensors, encode_safetensors):
//   - Tensors keep the caller's order in the header (and come back in that order from load_safetensors).
//   - The data buffer holds them contiguously with no gaps (the reference reader rejects gaps), 8-byte
//     dtypes first, then 4-byte ones, each group in the caller's order. The header is padded with spaces to
//     a multiple of 8 bytes, as the reference writer does, so the buffer starts 8-byte aligned and every
//     tensor starts aligned to its element size: a reader that maps the file can use it in place.
//   - Any tensor is accepted (non-contiguous views are written in logical order); names must be unique,
//     non-empty, valid UTF-8 and not "__metadata__".
//   - save_safetensors is atomic: it writes "<path>.tmp.<pid>", fsyncs it and renames it over `path`, so
//     a crash leaves the old file or the new one, never a torn one (core/file_io.h).
//
// Reading (load_safetensors, decode_safetensors) validates the whole header before touching any data and
// throws tg::IOError with a message starting "safetensors: <path>: " that says what is wrong: file missing,
// shorter than 8 bytes, header length beyond the file or above 100 MB, header not JSON (with the byte
// position), not an object, duplicate keys, a tensor entry missing dtype/shape/data_offsets or with the
// wrong JSON types, an unsupported dtype, a negative or non-integer dimension, a size that disagrees with
// the shape, begin > end, a range past the end of the buffer, overlapping ranges, metadata values that are
// not strings, or buffer bytes not covered by any tensor (the reference implementation's rule: a valid file
// has no gaps and no trailing bytes). Unknown extra fields inside a tensor entry are ignored, like the
// reference reader does.
//
// Example:
//
//   tg::save_safetensors("model.safetensors", {{"w", w}, {"b", b}}, {{"step", "100"}});
//   tg::SafetensorsFile f = tg::load_safetensors("model.safetensors");
//   Tensor w2 = f.get("w");                  // throws IOError listing the names present if "w" is missing
//   std::string step = f.metadata.at("step");

#include "core/tensor.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace tg {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;  // a list, not a map: it keeps order

struct SafetensorsFile {
    NamedTensors tensors;                         // in header order; each a fresh contiguous tensor
    std::map<std::string, std::string> metadata;  // the "__metadata__" object (empty if absent)
    std::string origin;                           // the path (or label) it was read from, for messages

    // The tensor called `name`; throws IOError naming it and listing the names the file does have.
    Tensor get(const std::string& name) const;
    bool contains(const std::string& name) const;
};

// Writes `tensors` (and string `metadata`) to `path` atomically. Throws IOError naming the path (and the
// errno text for file-system failures) or ValueError for bad names.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads a whole file; see the list of checks above.
SafetensorsFile load_safetensors(const std::string& path);

// The same in memory: the exact bytes save_safetensors writes, and a reader of a byte buffer.
// `origin_for_messages` stands for the path in error messages.
std::vector<std::uint8_t> encode_safetensors(const NamedTensors& tensors,
                                             const std::map<std::string, std::string>& metadata = {});
SafetensorsFile decode_safetensors(const std::uint8_t* data, std::size_t size, const std::string& origin_for_messages);

}  // namespace tg
