// The dashboard page's files (web/*), embedded at build time by cmake/embed.cmake.
#pragma once
#include <cstddef>
#include <span>

namespace lorafit::track {

struct WebFile {
  const char* name;  // file name inside web/, e.g. "index.html"
  const unsigned char* data;
  size_t size;
};

std::span<const WebFile> web_files();

}  // namespace lorafit::track
