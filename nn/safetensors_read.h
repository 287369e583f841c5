#pragma once
// Reading safetensors files with options: 16-bit floats widened to float32, and headers read alone.
// nn/serialization.h describes the format and every check; the plain load_safetensors(path) there is this
// reader with the default options.
//
// Hugging Face checkpoints are often stored in F16 or BF16. With widen_half_to_float32 those tensors are
// accepted and loaded as float32 — exactly, since every 16-bit float value is also a float32 value:
//
//   F16  (IEEE binary16: 1 sign, 5 exponent, 10 fraction bits): normal numbers re-biased (exponent 15 -> 127),
//        subnormals = fraction · 2^−24, infinities and NaNs kept
//   BF16 (the top 16 bits of a float32): shifted back into place
//
// read_safetensors_header validates the header against the file's real size exactly as a full load does but
// reads no tensor data: a caller can check names and shapes before it allocates a large model.
//
//   SafetensorsHeader h = read_safetensors_header("model.safetensors", {.widen_half_to_float32 = true});
//   for (const auto& t : h.tensors) ... t.name, t.dtype ("BF16"), t.shape ...
//   SafetensorsFile f = load_safetensors("model.safetensors", {.widen_half_to_float32 = true});  // all float32

#include "nn/serialization.h"

namespace tg {

struct SafetensorsReadOptions {
    bool widen_half_to_float32 = false;  // accept F16 and BF16 tensors, loaded as float32
};

// One tensor as the header describes it, without its data.
struct SafetensorsTensorInfo {
    std::string name;
    std::string dtype;  // as the file spells it: "F32", "BF16", ...
    Shape shape;
};
struct SafetensorsHeader {
    std::vector<SafetensorsTensorInfo> tensors;  // in header order
    std::map<std::string, std::string> metadata;
    std::string origin;  // the path, for messages
};

// load_safetensors / decode_safetensors (nn/serialization.h) with options.
SafetensorsFile load_safetensors(const std::string& path, const SafetensorsReadOptions& options);
SafetensorsFile decode_safetensors(const std::uint8_t* data, std::size_t size, const std::string& origin_for_messages,
                                   const SafetensorsReadOptions& options);

// The validated header alone (every check of a full load); no tensor data is read.
SafetensorsHeader read_safetensors_header(const std::string& path, const SafetensorsReadOptions& options = {});

}  // namespace tg
