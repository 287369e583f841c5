#pragma once
// Thread control. Every parallel kernel runs on oneTBB's pool; set_num_threads caps it for the whole process
// (a tbb::global_control under the hood), so `--threads 1` really means one core.

namespace tg {

void set_num_threads(int n);  // n >= 1; throws ValueError otherwise
int get_num_threads();        // the cap in force (the machine's core count by default)

}  // namespace tg
