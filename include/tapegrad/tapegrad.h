#pragma once
// tapegrad: one include for the whole library.
//
//   #include <tapegrad/tapegrad.h>
//   g++ -O2 app.cpp $(pkg-config --cflags --libs tapegrad)

#include "core/dtype.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/shape.h"
#include "core/storage.h"
#include "core/tensor.h"
#include "core/threading.h"

#include "autograd/function.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/graph.h"
#include "autograd/node.h"

#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/attention_monitor.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/functional.h"
#include "nn/init.h"
#include "nn/layernorm.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/models/gpt.h"
#include "nn/models/gpt_attention.h"
#include "nn/models/gpt_block.h"
#include "nn/models/gpt_mlp.h"
#include "nn/models/gpt_sample.h"
#include "nn/models/rope.h"
#include "nn/module.h"
#include "nn/module_list.h"
#include "nn/multihead_attention.h"
#include "nn/optim.h"
#include "nn/optim/schedule.h"
#include "nn/sequential.h"
#include "nn/serialization.h"
