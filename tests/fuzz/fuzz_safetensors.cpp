// libFuzzer target: the safetensors reader (nn/serialization.h) on arbitrary bytes. Any input must give a
// SafetensorsFile or a tg::Error; a crash, a sanitizer report, a leak or more than -rss_limit_mb is a bug.
#include "nn/serialization.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const tg::SafetensorsFile file = tg::decode_safetensors(data, size, "fuzz");
        for (const auto& [name, t] : file.tensors) (void)t.numel();
    } catch (const tg::Error&) {
    }
    return 0;
}
