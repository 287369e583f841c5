// tg-gpt plot: the loss curves of several training runs on one picture, to compare them (for example the same
// run with exact and with approximate attention):
//
//   tg-gpt plot --runs runs/exact runs/approx --labels exact,approx --out compare.png [--metric val_loss]
//               [--x-label TEXT] [--y-label TEXT] [--log-y]
//
// Each run directory holds the loss.csv that `tg-gpt train` writes ("step,train_loss,val_loss,val_bpb", the last
// two empty on steps without an evaluation; runs of older versions lack val_bpb). Compare runs with different
// tokenizers by --metric val_bpb: nats per token depend on what a token is, bits per byte do not. The file is checked line by line before anything is drawn; the PNG is
// written atomically. --x-label, --y-label and --log-y draw other quantities from derived files of the same
// format (scripts/long_context_report.sh: CPU seconds in the first column, gradient errors spanning decades).

#include "commands.h"
#include "loss_plot.h"

#include "core/file_io.h"
#include <tapegrad/tapegrad.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tg_gpt {

namespace {

// One number of loss.csv, all of the field consumed ("2.25x" is an error, not 2.25).
double parse_number(const std::string& field, const std::string& where) {
    const char* begin = field.c_str();
    char* end = nullptr;
    errno = 0;
    const double value = std::strtod(begin, &end);
    if (field.empty() || end != begin + field.size() || errno == ERANGE || !std::isfinite(value)) {
        throw tg::ValueError("tg-gpt plot: " + where + ": '" + field + "' is not a finite number");
    }
    return value;
}

// The (step, metric) points of dir/loss.csv; metric is "train_loss" (every step), "val_loss" or "val_bpb"
// (evaluations).
std::vector<std::pair<double, double>> read_curve(const std::string& dir, const std::string& metric) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(dir)) throw tg::IOError("tg-gpt plot: " + dir + ": no such directory");
    const std::string path = (fs::path(dir) / "loss.csv").string();
    std::ifstream in(path);
    if (!in) throw tg::IOError("tg-gpt plot: " + path + ": no such file (is " + dir + " a `tg-gpt train --out` directory?)");

    std::string line;
    const std::vector<std::string> columns = {"step", "train_loss", "val_loss", "val_bpb"};
    std::size_t n_columns = 0;  // 4, or 3 in the loss.csv of runs from before bits per byte
    if (std::getline(in, line) && line == "step,train_loss,val_loss,val_bpb") n_columns = 4;
    if (line == "step,train_loss,val_loss") n_columns = 3;
    if (n_columns == 0) {
        throw tg::ValueError("tg-gpt plot: " + path + ": the first line is '" + line +
                             "', expected the header 'step,train_loss,val_loss,val_bpb'");
    }
    const auto column = static_cast<std::size_t>(std::find(columns.begin(), columns.end(), metric) - columns.begin());
    if (column >= n_columns) {
        throw tg::ValueError("tg-gpt plot: " + path + " has no " + metric + " column (a run of an older tg-gpt)");
    }
    std::vector<std::pair<double, double>> points;
    double previous_step = -1;
    for (int number = 2; std::getline(in, line); ++number) {
        if (line.empty()) continue;
        const std::string where = path + " line " + std::to_string(number);
        std::vector<std::string> fields;
        std::stringstream row(line);
        for (std::string field; std::getline(row, field, ',');) fields.push_back(field);
        if (!line.empty() && line.back() == ',') fields.emplace_back();  // an empty last field (no evaluation)
        if (fields.size() != n_columns) {
            throw tg::ValueError("tg-gpt plot: " + where + ": " + std::to_string(fields.size()) + " fields, expected " +
                                 std::to_string(n_columns) + " (as the header)");
        }
        const double step = parse_number(fields[0], where);
        if (step <= previous_step) throw tg::ValueError("tg-gpt plot: " + where + ": the steps do not increase");
        previous_step = step;
        const std::string& value = fields[column];
        if (value.empty()) continue;  // val_loss, val_bpb: no evaluation on this step
        points.emplace_back(step, parse_number(value, where));
    }
    if (points.empty()) throw tg::ValueError("tg-gpt plot: " + path + " has no " + metric + " values");
    return points;
}

// "runs/exact/" -> "exact": the default label of a run.
std::string run_name(const std::string& dir) {
    std::filesystem::path p(dir);
    if (p.filename().empty()) p = p.parent_path();
    return p.filename().string();
}

}  // namespace

int run_plot(const PlotArgs& args) {
    if (args.runs.empty()) throw tg::ValueError("tg-gpt plot: --runs needs at least one run directory");
    if (!args.labels.empty() && args.labels.size() != args.runs.size()) {
        throw tg::ValueError("tg-gpt plot: " + std::to_string(args.labels.size()) + " labels for " +
                             std::to_string(args.runs.size()) + " runs; give one label per run");
    }
    std::vector<Curve> curves;
    for (std::size_t i = 0; i < args.runs.size(); ++i) {
        curves.push_back({args.labels.empty() ? run_name(args.runs[i]) : args.labels[i], read_curve(args.runs[i], args.metric)});
    }
    if (args.log_y) {
        for (const Curve& c : curves) {
            for (const auto& point : c.points) {
                if (point.second <= 0) {
                    char value[64];
                    std::snprintf(value, sizeof(value), "%g at %g", point.second, point.first);
                    throw tg::ValueError("tg-gpt plot: --log-y needs positive values; " + c.label + " has " + value);
                }
            }
        }
    }
    const std::string y_label = !args.y_label.empty()              ? args.y_label
                                : args.metric == "val_bpb"      ? "validation loss (bits/byte)"
                                : args.metric == "train_loss" ? "train loss (nats/token)"
                                                              : "validation loss (nats/token)";
    const Axes axes{args.x_label, y_label, args.log_y};
    const std::vector<std::uint8_t> png = encode_png(render_curves_plot(curves, axes, args.width, args.height));
    tg::write_file_atomically(args.out, png.data(), png.size(), "tg-gpt plot");
    for (const Curve& c : curves) {
        std::fprintf(stderr, "%s: %zu points, last %s %.4f at step %.0f\n", c.label.c_str(), c.points.size(),
                     args.metric.c_str(), c.points.back().second, c.points.back().first);
    }
    std::fprintf(stderr, "wrote %s (%zu bytes)\n", args.out.c_str(), png.size());
    return 0;
}

}  // namespace tg_gpt
