// Data files linked into the binary at build time: the assembler's .incbin copies a file into
// .rodata (no multi-megabyte generated source to compile). Use at namespace scope in a .cpp
// whose CMake source properties make it depend on the file:
//   LF_INCBIN(my_data, "/abs/path/file.txt");   then   lf_incbin_view(my_data_begin, my_data_end)
#pragma once
#include <cstddef>
#include <string_view>

#define LF_INCBIN(sym, path)                                                                       \
  asm(".section .rodata\n.balign 16\n.global " #sym "_begin\n" #sym "_begin:\n.incbin \"" path    \
      "\"\n.global " #sym "_end\n" #sym "_end:\n.byte 0\n.previous\n");                           \
  extern "C" const char sym##_begin[], sym##_end[]

inline std::string_view lf_incbin_view(const char* begin, const char* end) {
  return {begin, static_cast<size_t>(end - begin)};
}
