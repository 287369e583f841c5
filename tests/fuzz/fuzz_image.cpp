// libFuzzer target: image decoding (nn/data/image.h, stb_image) with the size read from the header and checked
// before decoding. The limit is 4 megapixels here (not the default 16.8) so that a legal image of the limit's
// size fits in the fuzzer's 512 MB memory cap with stb's own buffers.
#include "nn/data/image.h"

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const std::vector<std::uint8_t> bytes(data, data + size);
        const tg::Tensor image = tg::data::decode_image(bytes, "fuzz", static_cast<int>(size % 5), std::int64_t{1} << 22);
        (void)image.numel();
    } catch (const tg::Error&) {
    }
    return 0;
}
