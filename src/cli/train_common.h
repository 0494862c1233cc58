// What `lorafit train` and `lorafit demo` share: greedy generation for the before/after
// samples (the generate layer, which the train layer does not link), and the key table as
// help text.
#pragma once
#include <string>

#include "train/trainer.h"

namespace lorafit::cli {

// Greedy decoding with a KV cache, stopping at an eos id (not returned) or max_new_tokens.
GenerateFn greedy_generate_fn();
// train --eval_data: loads the eval set now (bad rows fail before training) and returns the
// hook that scores it with lorafit eval's scorers; null when eval_data is empty.
EvaluateFn benchmark_eval_fn(const TrainSettings& s);

// "  --key  help" lines for every setting, for `lorafit train --help`.
std::string settings_help();

// A shell word: bare when safe, else in single quotes ('it'\''s').
std::string shell_quote(const std::string& a);

// How to call this binary again in a printed hint: "lorafit" when it was found on PATH, else
// its absolute path, so the hint works as printed from any folder.
std::string self_command();

// This process's command line with --resume_from_checkpoint latest (replacing any value it
// had), shell-quoted: what an interrupted run prints to continue.
std::string resume_command();

// An interrupted run ends the command with exit status 128 + signal (throws ExitStatus).
void exit_if_interrupted(const TrainResult& r);

}  // namespace lorafit::cli
