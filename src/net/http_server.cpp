#include "net/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cctype>
#include <cerrno>
#include <filesystem>

#include "util/error.h"

namespace lorafit::net {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The numeric address and port of a socket's end, as httplib reports them in a Request.
bool endpoint(int fd, bool peer, std::string& addr, int& port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  auto* sa = reinterpret_cast<sockaddr*>(&ss);
  if ((peer ? getpeername(fd, sa, &len) : getsockname(fd, sa, &len)) != 0) return false;
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    port = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* in = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in->sin6_addr, buf, sizeof buf);
    port = ntohs(in->sin6_port);
  } else {
    return false;
  }
  addr = buf;
  return true;
}

}  // namespace

ClientWatch::ClientWatch(const httplib::Request& req) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = -1;
    try {
      fd = std::stoi(e.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    std::string la, ra;
    int lp = -1, rp = -1;
    if (endpoint(fd, false, la, lp) && lp == req.local_port && endpoint(fd, true, ra, rp) &&
        rp == req.remote_port && ra == req.remote_addr) {
      fd_ = fd;
      return;
    }
  }
}

bool ClientWatch::gone() const {
  if (fd_ < 0) return false;
  char c;
  const ssize_t n = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return false;  // the client sent more (a pipelined request): still there
  if (n == 0) return true;  // end of file: it closed the connection
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;  // reset
}

void configure(httplib::Server& server, const HttpLimits& limits) {
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const char*>(&yes), sizeof yes);
  });
  const size_t workers = limits.workers;
  server.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  server.set_read_timeout(limits.read_timeout_s, 0);
  server.set_write_timeout(limits.write_timeout_s, 0);
  server.set_keep_alive_timeout(limits.keep_alive_s);
}

// Host names are case-insensitive (RFC 4343): LOCALHOST is localhost.
bool is_loopback(const std::string& host) {
  const std::string h = lower(host);
  return h == "127.0.0.1" || h == "localhost" || h == "::1";
}

bool host_allowed(const std::string& bind_host, const std::string& host_header) {
  if (!is_loopback(bind_host) || host_header.empty()) return true;
  const std::string h = lower(host_header);
  const std::string name = h.starts_with("[") ? h.substr(0, h.find(']') + 1) : h.substr(0, h.rfind(':'));
  return name == "127.0.0.1" || name == "localhost" || name == "[::1]";
}

int bind(httplib::Server& server, const std::string& host, int port, const std::string& port_flag,
         const std::string& host_flag) {
  if (port < 0 || port > 65535)
    throw Error("{} {} is not a TCP port: use 1-65535 (or 0 for any free port)", port_flag, port);
  if (port == 0) {
    const int p = server.bind_to_any_port(host);
    if (p <= 0)
      throw Error("cannot listen on {}: the address is not available on this machine; choose another with {}", host,
                  host_flag);
    return p;
  }
  if (!server.bind_to_port(host, port))
    throw Error("cannot listen on {}:{}: port {} is in use (another server?) or the address is not available; "
                "stop the other program or choose a free port with {}",
                host, port, port, port_flag);
  return port;
}

std::string url(const std::string& host, int port) {
  std::string h = host;
  if (h == "0.0.0.0" || h == "::") h = "127.0.0.1";  // a browser-usable address for the local user
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return fmt::format("http://{}:{}/", h, port);
}

}  // namespace lorafit::net
