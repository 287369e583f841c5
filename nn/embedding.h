#pragma once
// nn::Embedding, like torch.nn.Embedding: a lookup table. Row v of weight [num_embeddings, embedding_dim]
// is the vector of token v; forward(ids) picks rows for integer ids of any shape -> ids.shape + [dim].
// The gradient adds each position's output gradient into the row it read (repeated ids sum).

#include "nn/module.h"

#include <cstdint>

namespace tg::nn {

class Embedding : public Module {
public:
    // weight ~ N(0, 1), as PyTorch initialises it (GPT-2 style models re-initialise with a smaller std).
    Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, DType dtype = kFloat32);

    std::string name() const override { return "Embedding"; }
    std::string extra_repr() const override;
    Tensor forward(const Tensor& ids) override;  // ids int32/int64 [...] -> [..., dim]

    std::int64_t num_embeddings, embedding_dim;
    Tensor weight;  // (num_embeddings, embedding_dim)
};

}  // namespace tg::nn
