#pragma once
// Errors: every user mistake throws a tg::Error (or a subclass) whose message names the op and every shape
// involved, e.g. "matmul: cannot multiply [2, 3] by [4, 5]: inner dimensions 3 and 4 differ".
// Internal invariants use assert; library code never calls exit or abort.

#include <stdexcept>
#include <string>

namespace tg {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

class ShapeError : public Error {
public:
    using Error::Error;
};

class DTypeError : public Error {
public:
    using Error::Error;
};

class IndexError : public Error {
public:
    using Error::Error;
};

class ValueError : public Error {
public:
    using Error::Error;
};

// The memory for a tensor could not be allocated (the request is named with its size).
class OutOfMemoryError : public Error {
public:
    using Error::Error;
};

// Errors from files we read (safetensors, checkpoints, data sets): bad header, truncated data, ...
class IOError : public Error {
public:
    using Error::Error;
};

}  // namespace tg
