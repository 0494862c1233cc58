// Bad --config YAML files get lorafit's one-line messages with the file and line, never
// yaml-cpp's "yaml-cpp: error at line 19, column 8: bad conversion"; deep nesting (generated
// here) stops at yaml-cpp's depth guard with a message, not a stack overflow.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "train/train_config.h"
#include "util/error.h"

using namespace lorafit;
namespace fs = std::filesystem;

namespace {

struct YamlFile {
  fs::path path = fs::temp_directory_path() / ("lorafit-yaml-" + std::to_string(::getpid()) + ".yaml");
  explicit YamlFile(const std::string& text) { std::ofstream(path) << text; }
  ~YamlFile() { fs::remove(path); }
  std::string error() const {
    try {
      TrainSettings s;
      apply_yaml_file(s, path);
    } catch (const Error& e) {
      return e.what();
    }
    return "(accepted)";
  }
};

}  // namespace

TEST(TrainYamlBad, MappingAsAKey) {
  YamlFile f("learning_rate: 1e-3\n? {a: 1}\n: 2\n");
  EXPECT_EQ(f.error(), f.path.string() + ":2: a setting name must be plain text, not a list or mapping; write `key: value`");
}

TEST(TrainYamlBad, NestedListItem) {
  YamlFile f("learning_rate: 1e-3\nlora_target:\n  - q_proj\n  - [k_proj, v_proj]\n");
  EXPECT_EQ(f.error(), f.path.string() +
                           ":4: lora_target: each list item must be a plain value (text, number, true/false), not a list");
}

TEST(TrainYamlBad, MappingValue) {
  YamlFile f("learning_rate:\n  a: 1\n");
  EXPECT_EQ(f.error(), f.path.string() + ":1: learning_rate must be a scalar or a list");
}

TEST(TrainYamlBad, InvalidSyntaxNamesTheLine) {
  YamlFile f("learning_rate: 1e-3\nlora_r: [8\n");
  const std::string e = f.error();
  EXPECT_EQ(e.rfind(f.path.string() + ":3: not valid YAML (", 0), 0u) << e;
  EXPECT_EQ(e.find("yaml-cpp:"), std::string::npos) << e;
}

TEST(TrainYamlBad, DeepNestingStopsAtTheDepthGuard) {
  std::string deep = "lora_target: ";
  for (int i = 0; i < 100000; ++i) deep += "[";
  YamlFile f(deep + "\n");
  // yaml-cpp marks where it stopped: the end of input, line 2 (the file ends with a newline).
  EXPECT_EQ(f.error(), f.path.string() +
                           ":2: not valid YAML (nested deeper than yaml-cpp's limit of 2000 levels); write one "
                           "`key: value` per line");
}

// Found by fuzz_yaml (fuzz/regressions/yaml/newline-in-escape): yaml-cpp's reason quotes the
// bad escape character itself, here a raw control character; the message stays one line.
TEST(TrainYamlBad, ControlCharacterInTheReasonStaysOneLine) {
  YamlFile f("learning_rate: 1e-3\nsystem: \"a\\\x10\"\n");
  EXPECT_EQ(f.error(), f.path.string() +
                           ":2: not valid YAML (unknown escape character: <U+0010>); write one `key: value` per line");
}

// Found by fuzz_yaml (fuzz/regressions/yaml/newline-in-unknown-key): an unknown key holding a
// newline (a quoted YAML key) is quoted in the message, which stays one line.
TEST(TrainYamlBad, UnknownKeyWithANewlineStaysOneLine) {
  YamlFile f("learning_rate: 1e-3\n\"cutoff_le\\n\": 8\n");
  const std::string e = f.error();
  EXPECT_EQ(e.rfind(f.path.string() + ":2: unknown setting \"cutoff_le<U+000A>\"", 0), 0u) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}
