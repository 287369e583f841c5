// libFuzzer target: the IDX reader (nn/data/idx.h), plain or gzip-compressed, with the header checked first
// and the data inflated only up to the declared size.
#include "nn/data/idx.h"

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const std::vector<std::uint8_t> bytes(data, data + size);
        const tg::data::IdxArray a = tg::data::decode_idx(bytes, "fuzz", /*max_bytes=*/std::uint64_t{64} << 20);
        (void)a.to_tensor(tg::kFloat32).numel();
    } catch (const tg::Error&) {
    }
    return 0;
}
