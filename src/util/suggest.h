// "Did you mean" for flags, settings, subcommands and module names: a suggestion is made only
// when it is close to what was typed (a typo, a prefix or a part of the name, or the initials
// of its words as in lr → learning_rate), never the nearest of unrelated names.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace lorafit {

// Edits (insert, delete, replace, swap of neighbours) that turn a into b.
size_t edit_distance(std::string_view a, std::string_view b);

// kebab-case → snake_case ("max-new-tokens" → "max_new_tokens"): every flag and setting has a
// snake_case name as in Hugging Face, and the kebab-case spelling is accepted as an alias.
std::string snake_case(std::string_view name);

// The names of `candidates` close to `typed` (compared in snake_case), best first, at most
// `max_n`; empty when none is close.
std::vector<std::string> close_names(std::string_view typed, const std::vector<std::string>& candidates,
                                     size_t max_n = 3);

// "; did you mean --a or --b?" (each name with `prefix`), or "" when nothing is close.
// quoted: "\"lora_r\"" (for YAML keys) instead of lora_r.
std::string did_you_mean(std::string_view typed, const std::vector<std::string>& candidates,
                         std::string_view prefix = "", bool quoted = false);

}  // namespace lorafit
