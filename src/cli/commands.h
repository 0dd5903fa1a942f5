// The CLI's subcommands. Each takes the arguments after its name and returns the exit
// status: 0 success, 1 a failure it reported, 2 a usage error. To add one, declare it
// here and add a row to the table in main.cpp.
#pragma once
#include <string>
#include <vector>

namespace nl::cli {

using CommandArgs = std::vector<std::string>;

int run_classify(const CommandArgs& args);
int run_bench(const CommandArgs& args);
int run_demo_model(const CommandArgs& args);
int run_train(const CommandArgs& args);
int run_evaluate(const CommandArgs& args);
int run_calibrate(const CommandArgs& args);
int run_bench_train(const CommandArgs& args);
int run_ensemble(const CommandArgs& args);
int run_inspect(const CommandArgs& args);
int run_bench_scan(const CommandArgs& args);
int run_export(const CommandArgs& args);

}  // namespace nl::cli
