// nn::Embedding: out[..., :] = weight[ids[...], :].

#include "nn/embedding.h"

#include "core/ops.h"
#include "nn/init.h"

#include <string>

namespace tg::nn {

Embedding::Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, DType dtype)
    : num_embeddings(num_embeddings), embedding_dim(embedding_dim) {
    if (num_embeddings < 0 || embedding_dim < 0) {
        throw ValueError("Embedding: num_embeddings and embedding_dim must be >= 0, got " +
                         std::to_string(num_embeddings) + " and " + std::to_string(embedding_dim));
    }
    weight = register_parameter("weight", empty({num_embeddings, embedding_dim}, dtype));
    init::normal_(weight, 0.0, 1.0);
}

std::string Embedding::extra_repr() const {
    return std::to_string(num_embeddings) + ", " + std::to_string(embedding_dim);
}

Tensor Embedding::forward(const Tensor& ids) { return embedding(ids, weight); }

}  // namespace tg::nn
