// tests/redis/redis_server.cpp — see redis_server.hpp.
#include "redis_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <stdexcept>
#include <thread>
#include <utility>

namespace ipckit::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kStartTimeout = 10s;
constexpr auto kClusterTimeout = 20s;
constexpr auto kCommandTimeout = 30s;
// Redis Cluster's bus listens on port + 10000, which must stay below 65536.
constexpr int kMaxClusterPort = 55535;

std::string find_binary(const std::string& name) {
  if (const char* path = std::getenv("PATH")) {
    std::string_view rest = path;
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      const std::string dir(rest.substr(0, colon));
      rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
      if (dir.empty()) continue;
      const std::string candidate = dir + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  const std::string fallback = "/usr/bin/" + name;
  return ::access(fallback.c_str(), X_OK) == 0 ? fallback : std::string{};
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Whether `port` can be bound on 127.0.0.1 right now (0: any port; its
// number in *bound).
bool can_bind(int port, int* bound = nullptr) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (s.get() < 0) return false;
  // As redis-server does: a port left in TIME_WAIT by an earlier run is free.
  const int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = loopback(port);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return false;
  socklen_t len = sizeof addr;
  if (::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  if (bound) *bound = ntohs(addr.sin_port);
  return true;
}

// A port the kernel just handed out (bind to port 0); for a cluster node, one
// whose bus port is free too. Another program may take it before
// redis-server binds it: start() then retries with another.
int free_port(bool cluster) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    int port = 0;
    if (!can_bind(0, &port)) continue;
    if (!cluster) return port;
    if (port <= kMaxClusterPort && can_bind(port + 10000)) return port;
  }
  throw std::runtime_error("RedisServer: found no free loopback port (is the ephemeral port range exhausted?)");
}

// Where the RESP value starting at buf[pos] ends, npos while incomplete.
std::size_t resp_end(const std::string& buf, std::size_t pos) {
  if (pos >= buf.size()) return std::string::npos;
  const auto eol = buf.find("\r\n", pos);
  if (eol == std::string::npos) return std::string::npos;
  const char type = buf[pos];
  const auto after_line = eol + 2;
  if (type == '+' || type == '-' || type == ':') return after_line;
  const long n = std::strtol(buf.c_str() + pos + 1, nullptr, 10);
  if (type == '$') {
    if (n < 0) return after_line;
    const auto end = after_line + static_cast<std::size_t>(n) + 2;
    return end <= buf.size() ? end : std::string::npos;
  }
  if (type == '*') {
    auto at = after_line;
    for (long i = 0; i < n; ++i) {
      at = resp_end(buf, at);
      if (at == std::string::npos) return at;
    }
    return at;
  }
  throw std::runtime_error("RedisServer: unexpected RESP reply type '" + std::string(1, type) + "'");
}

std::string encode(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

std::string describe(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
  return out.size() > 80 ? out.substr(0, 80) + "..." : out;
}

// One round trip on a fresh connection; throws on any failure.
std::string round_trip(int port, const std::vector<std::string>& args, Clock::duration timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string where = "redis-server on 127.0.0.1:" + std::to_string(port);
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (s.get() < 0) throw std::runtime_error("RedisServer: socket(): " + std::string(std::strerror(errno)));
  sockaddr_in addr = loopback(port);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error(where + ": cannot connect (" + std::strerror(errno) + "); is it running?");
  }
  const std::string request = encode(args);
  for (std::size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(s.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(where + ": send: " + std::strerror(errno));
    sent += static_cast<std::size_t>(n);
  }
  std::string reply;
  char chunk[4096];
  while (true) {
    const auto end = resp_end(reply, 0);
    if (end != std::string::npos) return reply.substr(0, end);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw std::runtime_error(where + ": no reply to '" + describe(args) + "' in time");
    pollfd p{s.get(), POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    const ssize_t n = ::recv(s.get(), chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(where + ": connection closed before the reply to '" + describe(args) + "'");
    reply.append(chunk, static_cast<std::size_t>(n));
  }
}

bool answers_ping(int port) {
  try {
    return round_trip(port, {"PING"}, 1s) == "+PONG\r\n";
  } catch (const std::runtime_error&) {
    return false;
  }
}

std::string tail_of(const std::string& path, int lines) {
  std::ifstream f(path);
  std::vector<std::string> all;
  for (std::string line; std::getline(f, line);) all.push_back(line);
  std::string out;
  const auto first = all.size() > static_cast<std::size_t>(lines) ? all.size() - lines : 0;
  for (auto i = first; i < all.size(); ++i) out += all[i] + "\n";
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// fork + exec argv with stdout/stderr appended to `output`; the child dies
// with the thread that started it (PR_SET_PDEATHSIG), so a crashed or killed
// test leaves no server behind.
pid_t spawn(const std::vector<std::string>& argv, const std::string& output) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  Fd out(::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (out.get() < 0) throw std::runtime_error("RedisServer: cannot open " + output + ": " + std::strerror(errno));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("RedisServer: fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    // Only async-signal-safe calls from here on (the test may have threads).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out.get(), 1);
    ::dup2(out.get(), 2);
    ::close_range(3, ~0U, 0);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  return pid;
}

// waitpid with a deadline; true when reaped.
bool reap_until(pid_t pid, Clock::time_point deadline, int* status = nullptr) {
  while (true) {
    int st = 0;
    const pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      if (status) *status = st;
      return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

enum class Launch { ready, exited, timed_out };

}  // namespace

bool RedisServer::available() { return !find_binary("redis-server").empty(); }

RedisServer RedisServer::start(RedisServerOptions options) {
  if (!available()) {
    throw std::runtime_error(
        "RedisServer: redis-server not found on PATH nor in /usr/bin (scripts/setup.sh installs it)");
  }
  RedisServer s;
  s.options_ = std::move(options);
  s.owner_ = ::getpid();
  char tmpl[] = "/tmp/ipckit-redis.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    throw std::runtime_error("RedisServer: mkdtemp in /tmp: " + std::string(std::strerror(errno)));
  }
  s.dir_ = tmpl;
  // A port found free may be taken before redis-server binds it: then the
  // server exits at once, and another port is tried.
  for (int attempt = 0; attempt < 10; ++attempt) {
    s.port_ = free_port(s.options_.cluster);
    if (s.launch(Clock::now() + kStartTimeout)) return s;
    const auto log = read_file(s.dir_ + "/redis.log") + read_file(s.dir_ + "/stdout.log");
    if (log.find("Address already in use") == std::string::npos) break;
    std::filesystem::remove(s.dir_ + "/redis.log");
    std::filesystem::remove(s.dir_ + "/stdout.log");
  }
  throw std::runtime_error("RedisServer: redis-server on 127.0.0.1:" + std::to_string(s.port_) + " (dir " + s.dir_ +
                           ") did not start; its log:\n" + s.log_tail());
}

bool RedisServer::launch(Clock::time_point deadline) {
  const auto yes_no = [](bool b) { return std::string(b ? "yes" : "no"); };
  std::vector<std::string> argv = {find_binary("redis-server"), "--bind", "127.0.0.1", "--port", std::to_string(port_),
                                   "--dir", dir_, "--logfile", dir_ + "/redis.log", "--daemonize", "no", "--save", "",
                                   "--appendonly", yes_no(options_.aof),
                                   // Tests poke the server with DEBUG SLEEP and the like.
                                   "--enable-debug-command", "local"};
  if (options_.aof) argv.insert(argv.end(), {"--appendfsync", "always"});
  if (options_.cluster) {
    argv.insert(argv.end(),
                {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"});
  }
  argv.insert(argv.end(), options_.args.begin(), options_.args.end());
  pid_ = spawn(argv, dir_ + "/stdout.log");
  while (true) {
    if (reap_until(pid_, Clock::now())) {
      pid_ = -1;
      return false;
    }
    if (answers_ping(port_)) return true;
    if (Clock::now() >= deadline) {
      kill();
      throw std::runtime_error("RedisServer: redis-server on 127.0.0.1:" + std::to_string(port_) + " (dir " + dir_ +
                               ") did not answer PING within " + std::to_string(kStartTimeout.count()) +
                               " s; its log:\n" + log_tail());
    }
    std::this_thread::sleep_for(10ms);
  }
}

RedisServer::RedisServer(RedisServer&& o) noexcept
    : options_(std::move(o.options_)),
      dir_(std::exchange(o.dir_, {})),
      port_(std::exchange(o.port_, 0)),
      pid_(std::exchange(o.pid_, -1)),
      owner_(std::exchange(o.owner_, -1)) {}

RedisServer& RedisServer::operator=(RedisServer&& o) noexcept {
  if (this != &o) {
    this->~RedisServer();
    new (this) RedisServer(std::move(o));
  }
  return *this;
}

RedisServer::~RedisServer() {
  if (owner_ != ::getpid()) return;
  kill();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string RedisServer::url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

void RedisServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  reap_until(pid_, Clock::time_point::max());
  pid_ = -1;
}

void RedisServer::reap(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return;
  if (!reap_until(pid_, Clock::now() + grace)) kill();
  pid_ = -1;
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);  // a stopped server handles neither SHUTDOWN nor SIGTERM
  bool asked = false;
  if (!options_.aof) {
    // SHUTDOWN closes the connection instead of replying: any outcome but an
    // error reply means it was received.
    try {
      asked = round_trip(port_, {"SHUTDOWN", "NOSAVE"}, 2s).rfind("-", 0) != 0;
    } catch (const std::runtime_error& e) {
      asked = std::string_view(e.what()).find("connection closed") != std::string_view::npos;
    }
  }
  // With appendonly, SIGTERM makes redis-server flush and fsync the AOF before exiting.
  if (!asked) ::kill(pid_, SIGTERM);
  reap(10s);
}

void RedisServer::restart() {
  stop();
  const auto deadline = Clock::now() + kStartTimeout;
  // The same port: another process may hold it briefly (a client's ephemeral
  // port); retry until the deadline.
  while (!launch(deadline)) {
    if (Clock::now() >= deadline) {
      throw std::runtime_error("RedisServer: redis-server did not restart on 127.0.0.1:" + std::to_string(port_) +
                               " (dir " + dir_ + "); its log:\n" + log_tail());
    }
    std::this_thread::sleep_for(50ms);
  }
}

void RedisServer::sigstop() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void RedisServer::sigcont() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

void RedisServer::pause_for(std::chrono::milliseconds how_long) {
  sigstop();
  std::this_thread::sleep_for(how_long);
  sigcont();
}

std::string RedisServer::command(std::initializer_list<std::string_view> args) const {
  return command(std::vector<std::string>(args.begin(), args.end()));
}

std::string RedisServer::command(const std::vector<std::string>& args) const {
  return round_trip(port_, args, kCommandTimeout);
}

std::string RedisServer::log_tail(int lines) const {
  return tail_of(dir_ + "/stdout.log", lines) + tail_of(dir_ + "/redis.log", lines);
}

// --- RedisCluster -------------------------------------------------------------

RedisCluster RedisCluster::start(int nodes) {
  if (nodes < 1) throw std::invalid_argument("RedisCluster: needs at least one node");
  RedisCluster c;
  for (int i = 0; i < nodes; ++i) c.nodes_.push_back(RedisServer::start({.cluster = true}));
  c.create();
  const auto deadline = Clock::now() + kClusterTimeout;
  while (!c.ok()) {
    if (Clock::now() >= deadline) {
      std::string info;
      for (auto& n : c.nodes_) info += n.url() + ":\n" + n.command({"CLUSTER", "INFO"}) + "\n";
      throw std::runtime_error("RedisCluster: the cluster did not reach cluster_state:ok within 20 s:\n" + info);
    }
    std::this_thread::sleep_for(20ms);
  }
  return c;
}

void RedisCluster::create() {
  const std::string cli = find_binary("redis-cli");
  // redis-cli refuses fewer than 3 masters; the RESP path handles any count.
  if (!cli.empty() && nodes_.size() >= 3) {
    std::vector<std::string> argv = {cli, "--cluster", "create"};
    for (auto& n : nodes_) argv.push_back("127.0.0.1:" + std::to_string(n.port()));
    argv.insert(argv.end(), {"--cluster-replicas", "0", "--cluster-yes"});
    const std::string log = nodes_.front().dir() + "/cluster-create.log";
    const pid_t pid = spawn(argv, log);
    int status = 0;
    if (!reap_until(pid, Clock::now() + kClusterTimeout, &status)) {
      ::kill(pid, SIGKILL);
      reap_until(pid, Clock::time_point::max());
      throw std::runtime_error("RedisCluster: redis-cli --cluster create did not finish in 20 s:\n" + tail_of(log, 30));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error("RedisCluster: redis-cli --cluster create failed:\n" + tail_of(log, 30));
    }
    return;
  }
  // The slots split evenly; distinct config epochs so that no node has to
  // resolve an epoch collision; every node meets the first.
  const std::size_t n = nodes_.size();
  for (std::size_t i = 0; i < n; ++i) {
    const auto lo = 16384 * i / n, hi = 16384 * (i + 1) / n - 1;
    for (const auto& reply : {nodes_[i].command({"CLUSTER", "ADDSLOTSRANGE", std::to_string(lo), std::to_string(hi)}),
                              nodes_[i].command({"CLUSTER", "SET-CONFIG-EPOCH", std::to_string(i + 1)})}) {
      if (reply != "+OK\r\n") throw std::runtime_error("RedisCluster: " + nodes_[i].url() + " replied " + reply);
    }
  }
  for (std::size_t i = 1; i < n; ++i) {
    const auto reply = nodes_[0].command({"CLUSTER", "MEET", "127.0.0.1", std::to_string(nodes_[i].port())});
    if (reply != "+OK\r\n") throw std::runtime_error("RedisCluster: CLUSTER MEET replied " + reply);
  }
}

bool RedisCluster::ok() const {
  for (const auto& n : nodes_) {
    try {
      // ok needs every slot covered in this node's view; the node count
      // makes sure no node was left out of the cluster.
      const auto info = n.command({"CLUSTER", "INFO"});
      if (info.find("cluster_state:ok") == std::string::npos ||
          info.find("cluster_known_nodes:" + std::to_string(nodes_.size()) + "\r\n") == std::string::npos) {
        return false;
      }
    } catch (const std::runtime_error&) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> RedisCluster::urls() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) out.push_back(n.url());
  return out;
}

}  // namespace ipckit::testing
