#include "serialization/onnx/OnnxRuntimeNode.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "framework/core/Error.h"

extern char** environ;

namespace anvil {
namespace {

namespace fs = std::filesystem;

// The runner node executes: one request per line on stdin, one answer per line on stdout.
//   request: run \t MODEL \t N \t (FILE \t TYPE \t DIMS){N} \t OUT_PREFIX
//   answer:  ok \t M \t (FILE \t TYPE \t DIMS){M}      or      error \t MESSAGE
// DIMS are comma-separated ("" for 0-d); tensors are raw little-endian files.
constexpr const char* kRunnerScript = R"JS('use strict';
const fs = require('fs');
const readline = require('readline');
let ort = null, loadError = null;
try { ort = require('onnxruntime-node'); } catch (e) { loadError = e; }
const clean = (s) => String(s).replace(/[\t\r\n]+/g, ' ');
const ARRAYS = { float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array };
let cached = null;
async function session(path) {
  const st = fs.statSync(path);
  const key = `${path}|${st.size}|${st.mtimeMs}`;
  if (!cached || cached.key !== key) {
    if (cached) { const old = cached.session; cached = null; await old.release(); }
    const s = await ort.InferenceSession.create(path,
        { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
    cached = { key, session: s };
  }
  return cached.session;
}
async function handle(f) {
  if (!ort) throw new Error('cannot load onnxruntime-node: ' + (loadError && loadError.message));
  if (f[0] !== 'run') throw new Error('unknown request ' + f[0]);
  const s = await session(f[1]);
  const n = Number(f[2]);
  if (n !== s.inputNames.length) throw new Error(`the model has ${s.inputNames.length} inputs, ${n} given`);
  const feeds = {};
  for (let i = 0; i < n; ++i) {
    const [file, type, dims] = f.slice(3 + 3 * i, 6 + 3 * i);
    const A = ARRAYS[type];
    if (!A) throw new Error('unsupported input type ' + type);
    const b = fs.readFileSync(file);
    const data = new A(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    feeds[s.inputNames[i]] = new ort.Tensor(type, data, dims === '' ? [] : dims.split(',').map(Number));
  }
  const prefix = f[3 + 3 * n];
  const results = await s.run(feeds);
  const out = ['ok', String(s.outputNames.length)];
  s.outputNames.forEach((name, i) => {
    const t = results[name];
    const file = `${prefix}${i}.bin`;
    fs.writeFileSync(file, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    out.push(file, t.type, t.dims.join(','));
  });
  return out.join('\t');
}
(async () => {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    let reply;
    try { reply = await handle(line.split('\t')); } catch (e) { reply = 'error\t' + clean(e && e.message ? e.message : e); }
    process.stdout.write(reply + '\n');
  }
})();
)JS";

std::string env_or(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::string find_on_path(const std::string& exe) {
  if (exe.find('/') != std::string::npos) return access(exe.c_str(), X_OK) == 0 ? exe : "";
  std::stringstream path(env_or("PATH", "/usr/local/bin:/usr/bin:/bin"));
  std::string dir;
  while (std::getline(path, dir, ':')) {
    if (dir.empty()) continue;
    const std::string p = dir + "/" + exe;
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// environ plus `extra` ("NAME=value", replacing same-named entries).
std::vector<std::string> make_env(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string s = *e;
    bool replaced = false;
    for (const auto& x : extra)
      if (s.compare(0, x.find('=') + 1, x, 0, x.find('=') + 1) == 0) replaced = true;
    if (!replaced) env.push_back(s);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

struct CommandResult {
  int exit_code = -1;  // -1: did not start or was killed
  std::string output;  // stdout and stderr together
};

// Runs argv with stdout and stderr captured; kills it after timeout_s seconds.
CommandResult run_command(std::vector<std::string> argv, const std::vector<std::string>& extra_env, int timeout_s) {
  CommandResult r;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    r.output = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  auto env = make_env(extra_env);
  auto cargv = c_strings(argv);
  auto cenv = c_strings(env);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    r.output = "cannot start " + argv[0] + ": " + std::strerror(rc);
    return r;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  char buf[4096];
  bool killed = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    const ssize_t got = read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    r.output.append(buf, static_cast<std::size_t>(got));
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (killed) {
    r.output += "\n(killed after " + std::to_string(timeout_s) + " s)";
    return r;
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string tail(const std::string& s, std::size_t n = 2000) { return s.size() <= n ? s : "..." + s.substr(s.size() - n); }

// node can load the package from `modules`: "" on success, else the reason.
std::string check_loads(const std::string& node, const std::string& modules) {
  auto r = run_command({node, "-e", "require('onnxruntime-node'); process.stdout.write('anvil-ort-ok')"},
                       {"NODE_PATH=" + modules}, 120);
  if (r.exit_code == 0 && r.output.find("anvil-ort-ok") != std::string::npos) return "";
  return "onnxruntime-node does not load from " + modules + ": " + tail(r.output);
}

const char* dtype_js(DType t) {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kF64: return "float64";
    case DType::kI32: return "int32";
    case DType::kI64: return "int64";
    default: return nullptr;
  }
}

DType dtype_from_js(const std::string& s) {
  if (s == "float32") return DType::kF32;
  if (s == "float64") return DType::kF64;
  if (s == "int32") return DType::kI32;
  if (s == "int64") return DType::kI64;
  if (s == "uint8" || s == "bool") return DType::kU8;
  ANVIL_THROW("onnxruntime returned an output of unsupported type '{}'", s);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

}  // namespace

std::string onnxruntime_node_cache_dir() {
  if (auto d = env_or("ANVIL_NPM_CACHE"); !d.empty()) return d;
  if (auto d = env_or("XDG_CACHE_HOME"); !d.empty()) return d + "/anvil/npm";
  if (auto d = env_or("HOME"); !d.empty()) return d + "/.cache/anvil/npm";
  return (fs::temp_directory_path() / "anvil-npm").string();
}

OnnxRuntimeNodeStatus find_onnxruntime_node(bool install) {
  OnnxRuntimeNodeStatus st;
  st.node = find_on_path(env_or("ANVIL_NODE", "node"));
  if (st.node.empty()) {
    st.reason = "node (Node.js) not found on PATH (apt-get install nodejs npm)";
    return st;
  }
  const std::string cache = onnxruntime_node_cache_dir();
  st.node_modules = cache + "/node_modules";
  const std::string marker = st.node_modules + "/onnxruntime-node/package.json";
  std::error_code ec;
  if (!fs::exists(marker, ec)) {
    const std::string npm = find_on_path("npm");
    if (!install) {
      st.reason = "onnxruntime-node is not installed in " + cache + " (run tools/onnx_install_ort.sh)";
      return st;
    }
    if (npm.empty()) {
      st.reason = "npm not found on PATH, and onnxruntime-node is not installed in " + cache;
      return st;
    }
    fs::create_directories(cache, ec);
    if (ec) {
      st.reason = "cannot create " + cache + ": " + ec.message();
      return st;
    }
    // One installer at a time (parallel test processes share the cache).
    const std::string lock_path = cache + "/.install.lock";
    const int lock = ::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
      st.reason = "cannot lock " + lock_path + ": " + std::strerror(errno);
      if (lock >= 0) close(lock);
      return st;
    }
    if (!fs::exists(marker, ec)) {
      auto r = run_command({npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--no-save",
                            "--loglevel=error", "--prefix", cache,
                            std::string("onnxruntime-node@") + kOnnxRuntimeNodeVersion},
                           {"npm_config_onnxruntime_node_install=skip"}, 600);
      if (r.exit_code != 0 || !fs::exists(marker, ec)) {
        st.reason = "npm install of onnxruntime-node into " + cache + " failed: " + tail(r.output);
        close(lock);
        return st;
      }
    }
    close(lock);
  }
  st.reason = check_loads(st.node, st.node_modules);
  st.available = st.reason.empty();
  return st;
}

struct OnnxRuntimeNode::Impl {
  pid_t pid = -1;
  int sock = -1;
  fs::path dir;
  std::string stderr_path;
  std::string buffer;
  std::uint64_t counter = 0;
  bool broken = false;

  std::string stderr_tail() const {
    std::ifstream in(stderr_path);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string s = ss.str();
    return s.empty() ? "" : " (node stderr: " + tail(s, 1500) + ")";
  }
  void send_all(const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      const ssize_t n = ::send(sock, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        broken = true;
        ANVIL_THROW("cannot send to the onnxruntime node process: {}{}", std::strerror(errno), stderr_tail());
      }
      off += static_cast<std::size_t>(n);
    }
  }
  std::string read_line(int timeout_s) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    for (;;) {
      if (auto nl = buffer.find('\n'); nl != std::string::npos) {
        std::string line = buffer.substr(0, nl);
        buffer.erase(0, nl + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        broken = true;
        ANVIL_THROW("no answer from the onnxruntime node process within {} s{}", timeout_s, stderr_tail());
      }
      pollfd p{sock, POLLIN, 0};
      const int n = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
      if (n < 0 && errno != EINTR) {
        broken = true;
        ANVIL_THROW("poll: {}", std::strerror(errno));
      }
      if (n <= 0) continue;
      char buf[4096];
      const ssize_t got = ::recv(sock, buf, sizeof buf, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        broken = true;
        ANVIL_THROW("the onnxruntime node process exited{}", stderr_tail());
      }
      buffer.append(buf, static_cast<std::size_t>(got));
    }
  }
};

OnnxRuntimeNode::OnnxRuntimeNode(const OnnxRuntimeNodeStatus& status) : impl_(std::make_unique<Impl>()) {
  ANVIL_CHECK(status.available, "onnxruntime-node is not available: {}", status.reason);
  std::string tmpl = (fs::temp_directory_path() / "anvil-ort-XXXXXX").string();
  ANVIL_CHECK(mkdtemp(tmpl.data()) != nullptr, "mkdtemp {}: {}", tmpl, std::strerror(errno));
  impl_->dir = tmpl;
  const std::string script = (impl_->dir / "runner.js").string();
  {
    std::ofstream out(script);
    out << kRunnerScript;
    ANVIL_CHECK(out.good(), "cannot write {}", script);
  }
  impl_->stderr_path = (impl_->dir / "stderr.txt").string();
  int sv[2];
  ANVIL_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: {}", std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, impl_->stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argv{status.node, script};
  auto env = make_env({"NODE_PATH=" + status.node_modules});
  auto cargv = c_strings(argv);
  auto cenv = c_strings(env);
  const int rc = posix_spawn(&impl_->pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  close(sv[1]);
  impl_->sock = sv[0];
  if (rc != 0) {
    impl_->pid = -1;
    ANVIL_THROW("cannot start {}: {}", status.node, std::strerror(rc));
  }
}

OnnxRuntimeNode::~OnnxRuntimeNode() {
  if (!impl_) return;
  if (impl_->sock >= 0) {
    ::shutdown(impl_->sock, SHUT_WR);  // node sees the end of its input and exits
    close(impl_->sock);
  }
  if (impl_->pid > 0) {
    int status = 0;
    bool done = false;
    for (int i = 0; i < 100 && !done; ++i) {  // up to ~5 s
      const pid_t w = waitpid(impl_->pid, &status, WNOHANG);
      done = w == impl_->pid || (w < 0 && errno != EINTR);
      if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!done) {
      kill(impl_->pid, SIGKILL);
      while (waitpid(impl_->pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  std::error_code ec;
  fs::remove_all(impl_->dir, ec);
}

std::vector<Tensor> OnnxRuntimeNode::run(const std::string& model_path, const std::vector<Tensor>& inputs,
                                         int timeout_s) {
  ANVIL_CHECK(!impl_->broken, "the onnxruntime node process failed earlier and cannot be used");
  ANVIL_CHECK(model_path.find_first_of("\t\n") == std::string::npos, "model path '{}' contains a tab or newline",
              model_path);
  const std::string abs_model = fs::absolute(model_path).string();
  const std::uint64_t id = impl_->counter++;
  std::string req = "run\t" + abs_model + "\t" + std::to_string(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    ANVIL_CHECK(t.defined() && t.device().is_cpu(), "input {} is undefined or not in host memory", i);
    const char* type = dtype_js(t.dtype());
    ANVIL_CHECK(type, "input {} has dtype {}; supported: float32, float64, int32, int64", i, dtype_name(t.dtype()));
    const std::string file = (impl_->dir / ("in" + std::to_string(id) + "_" + std::to_string(i) + ".bin")).string();
    {
      std::ofstream out(file, std::ios::binary);
      out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
      ANVIL_CHECK(out.good(), "cannot write {}", file);
    }
    std::string dims;
    for (auto d : t.shape().dims()) dims += (dims.empty() ? "" : ",") + std::to_string(d);
    req += "\t" + file + "\t" + type + "\t" + dims;
  }
  req += "\t" + (impl_->dir / ("out" + std::to_string(id) + "_")).string() + "\n";
  impl_->send_all(req);
  const std::string line = impl_->read_line(timeout_s);
  const auto f = split(line, '\t');
  if (f.empty() || f[0] != "ok")
    ANVIL_THROW("onnxruntime failed on {}: {}", model_path, f.size() > 1 ? f[1] : line);
  ANVIL_CHECK(f.size() >= 2, "malformed answer from the runner: '{}'", line);
  const std::size_t m = std::stoul(f[1]);
  ANVIL_CHECK(f.size() == 2 + 3 * m, "malformed answer from the runner: '{}'", line);
  std::vector<Tensor> outs;
  for (std::size_t i = 0; i < m; ++i) {
    const std::string& file = f[2 + 3 * i];
    std::vector<std::int64_t> dims;
    if (!f[4 + 3 * i].empty())
      for (const auto& d : split(f[4 + 3 * i], ',')) dims.push_back(std::stoll(d));
    Tensor t = Tensor::empty(Shape(dims), dtype_from_js(f[3 + 3 * i]));
    std::ifstream in(file, std::ios::binary);
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    ANVIL_CHECK(in.gcount() == static_cast<std::streamsize>(t.nbytes()), "output file {} is shorter than {}", file,
                t.desc());
    std::error_code ec;
    fs::remove(file, ec);
    outs.push_back(t);
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    std::error_code ec;
    fs::remove(impl_->dir / ("in" + std::to_string(id) + "_" + std::to_string(i) + ".bin"), ec);
  }
  return outs;
}

}  // namespace anvil
