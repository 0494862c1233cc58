// libFuzzer target: the dashboard's HTTP request handling — cpp-httplib's request parser and
// lorafit's routes, Host check and parameters (`id`, `max_points`, paths under the runs
// folder) — through a real socket to a DashboardServer on 127.0.0.1 over a small runs folder.
// The input is the raw request bytes; the server must answer or close, and keep serving the
// next input (a server that died or hung fails the next connect/read, which traps).
// The OpenAI-compatible server's request bodies have their own target (fuzz_serve_request.cpp).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

#include "fuzz_common.h"
#include "track/dashboard.h"

using namespace lorafit;

namespace {

track::DashboardServer& server() {
  static std::unique_ptr<track::DashboardServer> s = [] {
    const auto runs = std::filesystem::temp_directory_path() / ("lorafit-fuzz-runs-" + std::to_string(::getpid()));
    const auto run = runs / "run1";
    std::filesystem::create_directories(run / "checkpoint-1");
    std::ofstream(run / "status.json") << R"({"status": "finished", "start_time": 1.0, "total_steps": 2})";
    std::ofstream(run / "metrics.jsonl") << "{\"step\": 1, \"loss\": 2.5}\n{\"step\": 2, \"loss\": 2.0}\n";
    std::ofstream(run / "system.jsonl") << "{\"time\": 1.0, \"cpu_percent\": 50}\n";
    std::ofstream(run / "samples.jsonl") << "{\"step\": 0, \"prompt\": \"q\", \"answer\": \"a\"}\n";
    std::ofstream(run / "config.yaml") << "learning_rate: 0.0001\n";
    track::DashboardOptions o;
    o.runs_dir = runs;
    o.port = 0;
    auto srv = std::make_unique<track::DashboardServer>(o);
    srv->start();
    return srv;
  }();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int port = server().port();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) std::abort();
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // No TIME_WAIT for this side's port: hundreds of thousands of inputs would exhaust the
  // ephemeral ports (connect fails with EADDRNOTAVAIL, which is no bug of the server's).
  const linger no_linger{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &no_linger, sizeof no_linger);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {  // the server died
    std::fprintf(stderr, "fuzz: connect to the dashboard failed: %s\n", std::strerror(errno));
    __builtin_trap();
  }
  for (size_t off = 0; off < size;) {
    const ssize_t n = ::send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early on a bad request: fine
    off += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  // Read the answer until the server closes; 5 s without a byte is a hang.
  char buf[65536];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, 5000);
    if (r == 0) {
      std::fprintf(stderr, "fuzz: the dashboard sent nothing for 5 s (a hang)\n");
      __builtin_trap();
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
  }
  ::close(fd);
  return 0;
}
