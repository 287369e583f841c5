#pragma once
// The course examples' one helper: print a claim and whether it holds. A false claim makes the program exit
// non-zero, and `meson test --suite course-docs` fails, so the pages cannot quote output the code does not give.

#include <iostream>
#include <string>

namespace course {

inline int failures = 0;

inline void expect(bool holds, const std::string& claim) {
    std::cout << (holds ? "  ok: " : "  FAILED: ") << claim << '\n';
    if (!holds) ++failures;
}

}  // namespace course
