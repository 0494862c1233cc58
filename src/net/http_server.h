// What every lorafit HTTP server shares (the dashboard, `lorafit serve`): cpp-httplib set up
// so that idle sockets cannot starve real requests, a DNS-rebinding guard for loopback binds,
// binding with a one-line error that names the flag to change, and the URL to print.
#pragma once
#include <httplib.h>

#include <string>

namespace lorafit::net {

struct HttpLimits {
  size_t workers = 64;           // threads; each open connection holds one until it is idle-closed
  time_t read_timeout_s = 2;     // a request's headers/body must arrive within this
  time_t write_timeout_s = 5;
  time_t keep_alive_s = 2;       // idle keep-alive connections are closed after this
};

// Only SO_REUSEADDR (httplib's default SO_REUSEPORT would let a second server bind the same
// port silently and steal half the requests), a pool of `workers` threads, short timeouts.
void configure(httplib::Server& server, const HttpLimits& limits);

// The Host header check of a loopback bind: true when `bind_host` is not loopback, the header
// is absent, or it names 127.0.0.1 / localhost / [::1] (any port). Case-insensitive.
bool host_allowed(const std::string& bind_host, const std::string& host_header);
bool is_loopback(const std::string& host);

// Binds host:port (port 0: any free port) and returns the bound port. Throws lorafit::Error
// naming port_flag/host_flag when the port is not a TCP port, is in use, or the address is
// not available.
int bind(httplib::Server& server, const std::string& host, int port, const std::string& port_flag,
         const std::string& host_flag);

// The client of one request, to notice that it went away while its answer is computed
// (httplib 0.11 does not say). Made in the handler's thread; the request's socket stays open
// (and its fd ours) until the handler and its content provider return.
class ClientWatch {
 public:
  explicit ClientWatch(const httplib::Request& req);  // finds the socket by its two addresses
  // True once the client has closed or reset the connection (a peek reads end-of-file or an
  // error). Never blocks. False when the socket could not be found.
  bool gone() const;

 private:
  int fd_ = -1;
};

// "http://127.0.0.1:7860/" (0.0.0.0 and :: shown as 127.0.0.1, IPv6 in brackets).
std::string url(const std::string& host, int port);

}  // namespace lorafit::net
