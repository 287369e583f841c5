#pragma once
// tg::NotImplementedError: an exercise of the course (docs/course/) whose solution was taken out of a
// student copy of the repository (scripts/course.sh student). The message names the exercise and the
// chapter that explains it: "exercise ch6.layernorm_backward: see docs/course/06-softmax-layernorm-gelu.md".
// Only the student copy's stubs throw it; the library itself never does. (Kept out of core/error.h so that
// the stubs' one include does not touch a header every file depends on.)

#include "core/error.h"

namespace tg {

class NotImplementedError : public Error {
public:
    using Error::Error;
};

}  // namespace tg
