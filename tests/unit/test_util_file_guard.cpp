// A memory-mapped file truncated under the process: the read that would raise SIGBUS reads
// zeros instead, and check_mapped_files() names the file; a file changed in place is named
// too; a file replaced by rename (the old inode stays mapped) is not an error.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "util/error.h"
#include "util/file.h"

namespace fs = std::filesystem;
using namespace lorafit;

namespace {

fs::path temp_file(const std::string& tag, size_t bytes, char fill) {
  const fs::path p = fs::temp_directory_path() / ("lorafit-guard-" + std::to_string(::getpid()) + "-" + tag);
  std::ofstream(p, std::ios::binary) << std::string(bytes, fill);
  return p;
}

std::string check_error() {
  try {
    check_mapped_files();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(FileGuard, TruncatedWhileMapped) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const fs::path p = temp_file("trunc", 4 * page, 'x');
  {
    MappedFile m(p);
    EXPECT_EQ(check_error(), "(no error)");
    EXPECT_EQ(m.data()[3 * page], 'x');
    fs::resize_file(p, page);  // what `truncate -s` or an overwriting download does
    volatile uint8_t v = m.data()[3 * page];  // SIGBUS without the guard
    EXPECT_EQ(v, 0);
    EXPECT_EQ(m.data()[0], 'x');  // the part still in the file is unchanged
    EXPECT_TRUE(m.faulted());
    EXPECT_EQ(check_error(), p.string() +
                                 ": the file was truncated (reading it past its new end faulted) while lorafit was "
                                 "reading it; stop whatever writes it, restore the file and start again (a training "
                                 "run resumes with --resume_from_checkpoint latest)");
  }
  EXPECT_EQ(check_error(), "(no error)");  // unmapped: no longer watched
  fs::remove(p);
}

TEST(FileGuard, ShrunkWithoutAFault) {
  const fs::path p = temp_file("shrunk", 10000, 'y');
  MappedFile m(p);
  fs::resize_file(p, 5000);  // nothing read past the end yet: found by the size check
  EXPECT_EQ(check_error(), p.string() +
                               ": the file was truncated or extended (10000 bytes, now 5000) while lorafit was reading "
                               "it; stop whatever writes it, restore the file and start again (a training run resumes "
                               "with --resume_from_checkpoint latest)");
  fs::remove(p);
}

TEST(FileGuard, ModifiedInPlaceAndReplacedByRename) {
  const fs::path p = temp_file("inplace", 100, 'a');
  {
    MappedFile m(p);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a later mtime
    {
      std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(10);
      f.put('b');
    }
    EXPECT_EQ(check_error(), p.string() +
                                 ": the file was modified in place while lorafit was reading it; stop whatever writes "
                                 "it, restore the file and start again (a training run resumes with "
                                 "--resume_from_checkpoint latest)");
  }
  {
    MappedFile m(p);
    const fs::path q = temp_file("inplace-new", 50, 'c');
    fs::rename(q, p);  // a new inode under the same name: our mapping still holds the old file
    EXPECT_EQ(check_error(), "(no error)");
    EXPECT_EQ(m.data()[10], 'b');
  }
  fs::remove(p);
}
